package dialecttest

import (
	"database/sql"
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
