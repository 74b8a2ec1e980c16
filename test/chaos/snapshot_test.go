//go:build unix

package chaos

import (
	"context"
	"sync"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// snapshotHolder keeps a transaction with a snapshot open on a connection
// of its own for the whole run, as a long report or an idle-in-transaction
// session does: vacuum (PostgreSQL) and purge (InnoDB) keep every row
// deleted after it, so the relays read among dead rows, and on PostgreSQL
// above their read floor, while late committers, kills and rebalances go
// on. A killed connection (the connection-kill fault reaches it on MySQL)
// is replaced by a new snapshot at once. SQLite has nothing to hold back.
type snapshotHolder struct {
	h      *harness
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu       sync.Mutex
	held     time.Duration // in total
	reopened int
}

func startSnapshotHolder(h *harness) *snapshotHolder {
	ctx, cancel := context.WithCancel(context.Background())
	s := &snapshotHolder{h: h, cancel: cancel}
	if h.name == "sqlite" {
		return s
	}
	s.done.Go(func() {
		for ctx.Err() == nil {
			since, err := s.hold(ctx)
			s.mu.Lock()
			s.held += since
			if ctx.Err() == nil {
				s.reopened++
			}
			s.mu.Unlock()
			if ctx.Err() == nil {
				h.logf("the held snapshot ended after %.1fs (%v); holding a new one", since.Seconds(), err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	})
	return s
}

// hold opens the transaction and keeps it until ctx ends or the connection
// fails, and returns how long it held it.
func (s *snapshotHolder) hold(ctx context.Context) (time.Duration, error) {
	conn, err := s.h.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	begin := []string{"BEGIN ISOLATION LEVEL REPEATABLE READ", "SELECT COUNT(*) FROM " + dialect.TableMessages}
	if s.h.name == "mysql" {
		begin[0] = "START TRANSACTION WITH CONSISTENT SNAPSHOT"
	}
	for _, q := range begin {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Since(start), nil
		case <-tick.C:
			// Inside the transaction: fails when the connection was killed.
			if _, err := conn.ExecContext(ctx, "SELECT 1"); err != nil && ctx.Err() == nil {
				return time.Since(start), err
			}
		}
	}
}

// stop ends the transaction and reports how long a snapshot was held and
// how often it had to be taken again.
func (s *snapshotHolder) stop() (held time.Duration, reopened int) {
	s.cancel()
	s.done.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held, s.reopened
}
