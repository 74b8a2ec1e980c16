package dialecttest

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// lateCommitters checks that no relay statement waits on a row it did not
// ask for: an application transaction that inserted outbox rows and stays
// open (a slow request, a remote call inside the transaction) must not
// stall the relay's reads, acks, retries, dead letters or lease rounds,
// whatever the table's statistics say. The statistics are taken on the
// empty table first, as they usually are for an outbox, which is what
// makes a planner scan a small table instead of using its primary key.
//
// On a single-writer database (SQLite) the open transaction holds the only
// write lock, so the relay's writes wait for it by design; there the test
// only checks that they go through as soon as it ends and that reads never
// wait.
func (s suite) lateCommitters(t *testing.T, db *sql.DB) {
	for _, commit := range []bool{true, false} {
		name := "Commits"
		if !commit {
			name = "RollsBack"
		}
		t.Run(name, func(t *testing.T) { s.lateCommitter(t, s.Open(t), commit) })
	}
}

// lateHold is how long the late transaction stays open: long enough that a
// statement waiting on it is seen, short enough for the suite.
const lateHold = 4 * time.Second

// lateBudget is the longest a relay statement may take while the late
// transaction is open. It has nothing to wait for: a few milliseconds.
const lateBudget = time.Second

func (s suite) lateCommitter(t *testing.T, db *sql.DB, commit bool) {
	ctx := ctxT(t)
	single := s.Dialect.Name() == dialect.NameSQLite
	analyzeEmpty(t, db, s.Dialect.Name())
	var early []dialect.InsertRow
	for i := range 12 {
		early = append(early, onShard(fmt.Sprintf("early-%02d", i), fmt.Sprintf("k%d", i%4), i%2))
	}
	s.insert(t, db, early...)
	before := s.read(t, db, allShards(), 100)

	// The late transaction: its rows get ids before the rows committed
	// after it.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	late := []dialect.InsertRow{onShard("late-1", "k1", 1), onShard("late-2", "k9", 0)}
	if err := s.Dialect.Insert(ctx, tx, late); err != nil {
		t.Fatal(err)
	}
	opened := time.Now()
	if !single {
		s.insert(t, db, onShard("after-1", "k2", 0), onShard("after-2", "k3", 1))
	}
	ends := make(chan struct{})
	go func() {
		defer close(ends)
		time.Sleep(time.Until(opened.Add(lateHold)))
		if commit {
			tx.Commit()
		} else {
			tx.Rollback()
		}
	}()

	// Reads never wait, on any database, and do not see the open rows.
	start := time.Now()
	recs := s.read(t, db, allShards(), 100)
	s.within(t, "ReadBatch", start, lateBudget)
	for _, r := range recs {
		if r.MessageID == "late-1" || r.MessageID == "late-2" {
			t.Fatalf("ReadBatch returned %s, a row of a transaction still open", r.MessageID)
		}
	}
	if !single && len(recs) != len(before)+2 {
		t.Fatalf("ReadBatch returned %d rows while the late transaction was open, want %d: %v", len(recs), len(before)+2, ids(recs))
	}

	budget := lateBudget
	if single {
		// The relay's writes wait for the one write lock: until the late
		// transaction ends, and then a moment.
		budget = time.Until(opened.Add(lateHold)) + lateBudget
	}
	s.relayWritesDoNotWait(t, db, recs, budget)
	<-ends

	// Once it ends, its rows are read (committed) or never seen (rolled
	// back).
	after := s.read(t, db, allShards(), 100)
	var got []string
	for _, r := range after {
		got = append(got, r.MessageID)
	}
	want := []string(nil)
	if commit {
		want = []string{"late-1", "late-2"}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("after the late transaction ended, pending %v, want %v", got, want)
	}
}

// relayWritesDoNotWait runs every writing relay statement on rows of recs,
// each within budget: acks, a retry, a dead letter and a lease round.
func (s suite) relayWritesDoNotWait(t *testing.T, db *sql.DB, recs []dialect.Row, budget time.Duration) {
	ctx := ctxT(t)
	if len(recs) < 6 {
		t.Fatalf("need 6 committed rows, have %d", len(recs))
	}
	step := func(what string, fn func(context.Context) error) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, budget+10*time.Second)
		defer cancel()
		start := time.Now()
		if err := fn(sctx); err != nil {
			t.Fatalf("%s: %v (after %s)", what, err, time.Since(start).Round(time.Millisecond))
		}
		s.within(t, what, start, budget)
	}
	step("Ack", func(ctx context.Context) error {
		n, err := s.Dialect.Ack(ctx, db, []int64{recs[0].RowID, recs[1].RowID, recs[len(recs)-1].RowID})
		if err == nil && n != 3 {
			err = fmt.Errorf("deleted %d rows, want 3", n)
		}
		return err
	})
	step("Retry", func(ctx context.Context) error {
		return s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: recs[2].RowID, Delay: time.Hour, Err: "later"}})
	})
	step("DeadLetter", func(ctx context.Context) error {
		return s.Dialect.DeadLetter(ctx, db, []dialect.Failure{{RowID: recs[3].RowID, Err: "poison"}})
	})
	step("Heartbeat", func(ctx context.Context) error {
		_, err := s.Dialect.Heartbeat(ctx, db, "late-relay", time.Minute)
		return err
	})
	var held []dialect.Lease
	step("Acquire", func(ctx context.Context) (err error) {
		held, err = s.Dialect.Acquire(ctx, db, "late-relay", numShards, time.Minute)
		return err
	})
	step("Renew", func(ctx context.Context) error {
		got, err := s.Dialect.Renew(ctx, db, "late-relay", held, time.Minute)
		if err == nil && len(got) != len(held) {
			err = fmt.Errorf("renewed %d of %d leases", len(got), len(held))
		}
		return err
	})
	step("Release", func(ctx context.Context) error { return s.Dialect.Release(ctx, db, "late-relay", held) })
	rest := make([]int64, 0, len(recs))
	for _, r := range recs[4 : len(recs)-1] {
		rest = append(rest, r.RowID)
	}
	step("Ack (the rest)", func(ctx context.Context) error {
		_, err := s.Dialect.Ack(ctx, db, rest)
		return err
	})
}

// within fails t when the statement that started at start took longer than
// budget: it waited on something.
func (s suite) within(t *testing.T, what string, start time.Time, budget time.Duration) {
	t.Helper()
	if took := time.Since(start); took > budget {
		t.Errorf("%s took %s with a late transaction open (budget %s): it waited on rows it did not ask for",
			what, took.Round(time.Millisecond), budget)
	}
}

// analyzeEmpty takes the planner statistics of the empty outbox table.
func analyzeEmpty(t *testing.T, db *sql.DB, name dialect.Name) {
	t.Helper()
	var q string
	switch name {
	case dialect.NamePostgres:
		q = "ANALYZE " + dialect.TableMessages
	case dialect.NameMySQL:
		q = "ANALYZE TABLE " + dialect.TableMessages
	case dialect.NameSQLite:
		q = "ANALYZE"
	default:
		return // a dialect this suite does not know: its own statistics
	}
	rows, err := db.QueryContext(ctxT(t), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	rows.Close()
}
