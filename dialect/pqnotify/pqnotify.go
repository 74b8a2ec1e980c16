// Package pqnotify wakes a relay the moment outbox rows commit on
// PostgreSQL, with lib/pq's LISTEN support, so an idle relay needs no busy
// polling to publish within milliseconds.
//
// The migrations install a statement-level trigger that runs
// pg_notify('outbox_messages', <schema>) in the inserting transaction:
// PostgreSQL delivers it at commit and drops it on rollback. A Listener
// listens on that channel, keeps only the notifications of its own schema,
// and also wakes after every reconnection, when notifications may have been
// missed. Use it as RelayConfig.Wake:
//
//	l, err := pqnotify.New(ctx, dsn, logger)
//	...
//	defer l.Close()
//	cfg.Wake = l.Wake()
package pqnotify

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/lib/pq"

	"github.com/outboxrelay/outbox/dialect"
)

// Listener turns outbox notifications into wake-ups.
type Listener struct {
	l      *pq.Listener
	schema string
	wake   chan struct{}
	done   chan struct{}
}

// New connects to the PostgreSQL database at dsn (a lib/pq DSN or URL; the
// same the relay uses, so that its search_path picks the same schema) and
// listens on dialect.NotifyChannel. The listener reconnects on its own.
func New(ctx context.Context, dsn string, log *slog.Logger) (*Listener, error) {
	if log == nil {
		log = slog.Default()
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("pqnotify: %w", err)
	}
	var schema string
	err = db.QueryRowContext(ctx, "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)", dialect.TableMessages).Scan(&schema)
	db.Close()
	if err != nil {
		return nil, fmt.Errorf("pqnotify: finding the schema of %s (are the migrations applied?): %w", dialect.TableMessages, err)
	}
	n := &Listener{schema: schema, wake: make(chan struct{}, 1), done: make(chan struct{})}
	n.l = pq.NewListener(dsn, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventDisconnected:
			log.Warn("pqnotify: connection lost; relay falls back to polling until it is back", "err", err)
		case pq.ListenerEventReconnected:
			log.Info("pqnotify: reconnected")
			n.signal()
		}
	})
	// Listen blocks until it is connected; honour ctx meanwhile.
	listened := make(chan error, 1)
	go func() { listened <- n.l.Listen(dialect.NotifyChannel) }()
	select {
	case err := <-listened:
		if err != nil {
			n.l.Close()
			return nil, fmt.Errorf("pqnotify: LISTEN %s: %w", dialect.NotifyChannel, err)
		}
	case <-ctx.Done():
		n.l.Close()
		return nil, ctx.Err()
	}
	go n.loop()
	return n, nil
}

func (n *Listener) loop() {
	defer close(n.done)
	for note := range n.l.NotificationChannel() {
		// nil after a reconnection: notifications may have been missed.
		if note == nil || note.Extra == n.schema || note.Extra == "" {
			n.signal()
		}
	}
}

func (n *Listener) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Wake returns the channel that receives a value when outbox rows of this
// schema may have committed. Many commits fold into one wake-up.
func (n *Listener) Wake() <-chan struct{} { return n.wake }

// Close stops listening.
func (n *Listener) Close() error {
	err := n.l.Close()
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
	}
	return err
}
