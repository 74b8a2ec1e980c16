package dialecttest

import (
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

func (s suite) retryHoldsBackItsKeyOnly(t *testing.T, db *sql.DB) {
	// One shard, three keys: a1 fails and waits; a2 (same key) must wait
	// behind it, b1 (other key) flows. A delayed c1 that never failed holds
	// back nothing: c2 flows.
	c1 := onShard("c1", "c", 2)
	c1.Delay = time.Hour
	s.insert(t, db, onShard("a1", "a", 2), onShard("b1", "b", 2), onShard("a2", "a", 2), c1, onShard("c2", "c", 2))
	recs := s.read(t, db, []int{2}, 10)
	if got := ids(recs); !slices.Equal(got, []string{"a1", "b1", "a2", "c2"}) {
		t.Fatalf("first read %v, want [a1 b1 a2 c2]", got)
	}
	ctx := ctxT(t)
	if err := s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: recs[0].RowID, Delay: time.Hour, Err: "broker said no"}}); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.read(t, db, []int{2}, 10)); !slices.Equal(got, []string{"b1", "c2"}) {
		t.Fatalf("after a1 failed, read %v, want [b1 c2]: a2 must wait behind a1, other keys flow", got)
	}
}

func (s suite) retryBecomesAvailable(t *testing.T, db *sql.DB) {
	s.insert(t, db, onShard("a1", "a", 5), onShard("a2", "a", 5))
	recs := s.read(t, db, []int{5}, 10)
	ctx := ctxT(t)
	if err := s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: recs[0].RowID, Delay: 300 * time.Millisecond, Err: "x"}}); err != nil {
		t.Fatal(err)
	}
	if got := s.read(t, db, []int{5}, 10); len(got) != 0 {
		t.Fatalf("read %v while a1 waits, want nothing", ids(got))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.read(t, db, []int{5}, 10)
		if len(got) == 2 {
			if got[0].MessageID != "a1" || got[0].Attempts != 1 || got[1].MessageID != "a2" || got[1].Attempts != 0 {
				t.Fatalf("after backoff read %v with attempts %d,%d; want [a1 a2] with 1,0", ids(got), got[0].Attempts, got[1].Attempts)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retried message never became available: read %v", ids(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
