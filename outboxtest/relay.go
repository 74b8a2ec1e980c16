package outboxtest

import (
	"context"
	"database/sql"
	"log/slog"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
)

// StartRelay runs a Relay on db publishing to pub, with cfg, until the test
// ends; then it stops the relay and fails tb if Run returned an error. Give
// the relay a pool of its own (a second sql.Open of the same database), as
// a relay process would have. Without cfg.Logger, the relay logs warnings
// and errors to the test's output. It fails tb if cfg is invalid.
func StartRelay(tb testing.TB, db *sql.DB, pub outbox.Publisher, cfg outbox.RelayConfig) *outbox.Relay {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	relay, err := outbox.NewRelay(db, pub, cfg)
	if err != nil {
		tb.Fatalf("outboxtest: StartRelay: %v", err)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("outboxtest: relay.Run: %v", err)
		}
	})
	return relay
}

// WaitDrained waits until the outbox table of db is empty and returns what
// pub published by then. A relay deletes a row after its record was
// published, so every message committed before the call is then among the
// records, and a message that should not exist (of a rolled-back
// transaction) is either among them too or still pending: the test sees
// it. It fails tb if rows are still pending after timeout.
func WaitDrained(tb TB, db *sql.DB, pub *FakePublisher, timeout time.Duration) []outbox.Record {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var pending int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + dialect.TableMessages).Scan(&pending); err != nil {
			tb.Fatalf("outboxtest: WaitDrained: %v", err)
			return nil
		}
		recs := pub.Published()
		if pending == 0 {
			return recs
		}
		if time.Now().After(deadline) {
			tb.Fatalf("outboxtest: after %s, %d published and %d still pending in %s", timeout, len(recs), pending, dialect.TableMessages)
			return recs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RequireOnlyPublished fails tb unless recs is exactly one record that
// matches want (as RequireEnqueued matches a message: want.ID against the
// record's MessageID) and pub saw no breach of the Publisher contract. It
// returns the record.
func RequireOnlyPublished(tb TB, pub *FakePublisher, recs []outbox.Record, want Want) outbox.Record {
	tb.Helper()
	msgs := make([]outbox.Message, len(recs))
	for i, r := range recs {
		msgs[i] = outbox.Message{ID: r.MessageID, Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
	}
	if len(recs) != 1 || !want.match(&msgs[0]) {
		tb.Fatalf("outboxtest: expected exactly one published record matching %s, published %d:%s", want, len(recs), List(msgs))
		return outbox.Record{}
	}
	if v := pub.Violations(); len(v) > 0 {
		tb.Fatalf("outboxtest: publisher contract violations: %v", v)
	}
	return recs[0]
}
