package dialecttest

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// abandonedStatementStops checks that a relay statement whose context ends
// stops on the server too. The statement waits on a row another
// transaction locks (a row it did ask for: the previous owner of a shard
// recording its last outcome, say); the relay gives up after 300 ms; then
// the server must run nothing of it any more, and once the lock is gone the
// row must still be there: a statement that ran on would have deleted it
// (or counted an attempt) behind the relay's back, seconds later.
func (s suite) abandonedStatementStops(t *testing.T, db *sql.DB) {
	steps := []struct {
		name string
		run  func(ctx context.Context, id int64) error
	}{
		{"Ack", func(ctx context.Context, id int64) error {
			_, err := s.Dialect.Ack(ctx, db, []int64{id})
			return err
		}},
		{"Retry", func(ctx context.Context, id int64) error {
			return s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: id, Delay: time.Second, Err: "x"}})
		}},
		{"DeadLetter", func(ctx context.Context, id int64) error {
			return s.Dialect.DeadLetter(ctx, db, []dialect.Failure{{RowID: id, Err: "x"}})
		}},
	}
	for i, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			ctx := ctxT(t)
			id := string(rune('a' + i))
			s.insert(t, db, msg("abandon-"+id, "k"+id, "v"))
			var row dialect.Row
			for _, r := range s.read(t, db, allShards(), 100) {
				if r.MessageID == "abandon-"+id {
					row = r
				}
			}
			locker, unlock := s.lockRow(t, db, row.RowID)
			sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			start := time.Now()
			err := step.run(sctx, row.RowID)
			cancel()
			took := time.Since(start)
			if err == nil {
				t.Fatalf("%s of a row locked by another transaction succeeded", step.name)
			}
			if took > 3*time.Second {
				t.Errorf("%s returned %s after its context ended (300 ms)", step.name, took.Round(time.Millisecond))
			}
			if n := s.runningOnServer(t, db, locker); n > 0 {
				t.Errorf("%d statements of the outbox still run on the server after the relay gave up", n)
			}
			unlock()
			time.Sleep(300 * time.Millisecond) // a statement still waiting would run now
			var attempts int
			got := false
			for _, r := range s.read(t, db, allShards(), 100) {
				if r.RowID == row.RowID {
					got, attempts = true, r.Attempts
				}
			}
			var dead int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+dialect.TableDeadLetters).Scan(&dead); err != nil {
				t.Fatal(err)
			}
			if !got || attempts != 0 || dead != 0 {
				t.Fatalf("after the lock was released: pending %v, attempts %d, dead letters %d; want the row untouched: "+
					"the abandoned %s ran on on the server", got, attempts, dead, step.name)
			}
			// And it is the relay's again.
			if _, err := s.Dialect.Ack(ctx, db, []int64{row.RowID}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// lockRow locks the row id in another transaction until unlock: a row lock
// where the database has them, the write lock on SQLite. locker is the
// server's id of the locking session (PostgreSQL's backend pid, MySQL's
// connection id; 0 on SQLite).
func (s suite) lockRow(t *testing.T, db *sql.DB, id int64) (locker int64, unlock func()) {
	t.Helper()
	ctx := ctxT(t)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := "UPDATE " + dialect.TableMessages + " SET attempts = attempts WHERE id = "
	if _, err := tx.ExecContext(ctx, q+strconv.FormatInt(id, 10)); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	switch s.Dialect.Name() {
	case dialect.NamePostgres:
		err = tx.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&locker)
	case dialect.NameMySQL:
		err = tx.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&locker)
	}
	if err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	done := false
	t.Cleanup(func() {
		if !done {
			tx.Rollback()
		}
	})
	return locker, func() {
		done = true
		if err := tx.Commit(); err != nil && !errors.Is(err, sql.ErrTxDone) {
			t.Fatal(err)
		}
	}
}

// runningOnServer counts the statements that still wait on the lock of
// the session locker, a little after the relay gave up: none should. SQLite
// has no server: 0.
func (s suite) runningOnServer(t *testing.T, db *sql.DB, locker int64) int {
	t.Helper()
	var q string
	switch s.Dialect.Name() {
	case dialect.NamePostgres:
		q = "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND $1 = ANY(pg_blocking_pids(pid))"
	case dialect.NameMySQL:
		// This session's database is the test's own: any statement on it
		// but this one and the idle locker is the relay's.
		q = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND ID <> ?" +
			" AND DB = DATABASE() AND COMMAND <> 'Sleep'"
	default:
		return 0
	}
	var n int
	// Give the server a moment to notice a cancel request or a time limit.
	for range 10 {
		if err := db.QueryRowContext(ctxT(t), q, locker).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n
}
