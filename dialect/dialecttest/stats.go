package dialecttest

import (
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

func (s suite) stats(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	st, err := s.Dialect.Stats(ctx, db)
	if err != nil || st != (dialect.Stats{}) {
		t.Fatalf("empty Stats = %+v, %v", st, err)
	}
	delayed := onShard("d", "d", 0)
	delayed.Delay = time.Hour
	s.insert(t, db, onShard("a", "a", 0), onShard("b", "b", 0), delayed)
	time.Sleep(50 * time.Millisecond)
	recs := s.read(t, db, []int{0}, 10)
	if err := s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: recs[0].RowID, Delay: time.Hour, Err: "x"}}); err != nil {
		t.Fatal(err)
	}
	st, err = s.Dialect.Stats(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 3 || st.Retrying != 1 || st.Delayed != 2 || st.DeadLetters != 0 {
		t.Fatalf("Stats = %+v; want Pending 3, Retrying 1, Delayed 2", st)
	}
	if st.OldestAge < 10*time.Millisecond || st.OldestAge > time.Minute {
		t.Fatalf("Stats.OldestAge = %v, want between 10ms and 1m", st.OldestAge)
	}
}

// backlogPastDelayedRows: ReadBacklog's oldest due age is that of the
// oldest message whose time has come, however many delayed rows come
// before it in id order (more than its window of 10,000), and never that
// of a delayed row. A dialect without backlog queries (dialect.ErrNoBacklog)
// skips it.
func (s suite) backlogPastDelayedRows(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	const delayed = 10_500
	rows := make([]dialect.InsertRow, 0, 500)
	for i := range delayed {
		r := msg(fmt.Sprintf("delayed-%d", i), "", "v")
		r.Delay = time.Hour
		rows = append(rows, r)
		if len(rows) == cap(rows) || i == delayed-1 {
			s.insert(t, db, rows...)
			rows = rows[:0]
		}
	}
	const gap, age = 2 * time.Second, 100 * time.Millisecond
	time.Sleep(gap) // the delayed rows are older than the due one by this
	s.insert(t, db, msg("due", "", "v"))
	time.Sleep(age)
	b, err := dialect.ReadBacklog(ctx, s.Dialect, db, 0)
	if errors.Is(err, dialect.ErrNoBacklog) {
		t.Skip("the dialect has no backlog queries")
	}
	if err != nil {
		t.Fatal(err)
	}
	if b.Pending != delayed+1 {
		t.Errorf("Pending = %d, want %d", b.Pending, delayed+1)
	}
	// The due row's age: at least age; below age+gap, the age of the
	// delayed rows (a delayed row reported as the oldest due would be older).
	if b.OldestDueAge < age || b.OldestDueAge >= age+gap {
		t.Errorf("OldestDueAge = %s, want the due row's age, between %s and %s", b.OldestDueAge, age, age+gap)
	}
}
