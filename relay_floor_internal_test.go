package outbox

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// scriptedHorizon is a dialect.Horizon whose answers the test sets.
type scriptedHorizon struct {
	maxID    int64
	settled  bool  // the previous mark settled
	deferred int64 // 0: none
	err      error
}

func (h *scriptedHorizon) Settle(context.Context, *sql.DB, dialect.SettleMark) (dialect.SettleMark, bool, error) {
	if h.err != nil {
		return dialect.SettleMark{}, false, h.err
	}
	// Marks that wait for transactions cannot be built outside package
	// dialect: each mark here is settled when taken (the dialect's
	// conformance suite checks the waiting).
	return dialect.SettleMark{MaxID: h.maxID}, h.settled, nil
}

func (h *scriptedHorizon) LowestDeferred(context.Context, *sql.DB, []int) (int64, bool, error) {
	return h.deferred, h.deferred > 0, nil
}

func rows(ids ...int64) []dialect.Row {
	out := make([]dialect.Row, len(ids))
	for i, id := range ids {
		out[i].RowID = id
	}
	return out
}

// The floor is the lowest of what a read proves, kept per shard set: it
// never passes the settled horizon, the first row returned, a row in
// flight or a deferred row, it never goes down, and a set that gains a
// shard starts again from 0.
func TestReadFloorBounds(t *testing.T) {
	ctx := context.Background()
	h := &scriptedHorizon{maxID: 100000, settled: true}
	f := &readFloor{hz: h, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	step := func(shards []int, exclude []int64, recs []dialect.Row, want int64) {
		t.Helper()
		f.markAt = time.Time{} // take a new mark at every read
		f.start(ctx, shards)
		f.wait()
		at := f.start(ctx, shards)
		f.raise(ctx, shards, at, exclude, recs)
		if f.floor != want {
			t.Fatalf("floor %d, want %d (shards %v, exclude %v, %d rows, settled %d)", f.floor, want, shards, exclude, len(recs), at.settled)
		}
	}
	step([]int{0, 1}, nil, nil, 100000)                  // empty read: up to the settled horizon
	h.maxID = 200000                                     // ids up to 200000 handed out
	step([]int{0, 1}, nil, rows(150000, 151000), 149999) // the first row returned bounds it
	step([]int{0, 1}, []int64{170000}, rows(180000), 169999)
	h.deferred = 160000
	step([]int{0, 1}, nil, nil, 169999) // never goes down
	h.deferred = 190000
	step([]int{0, 1}, nil, nil, 189999)
	h.deferred = 0
	step([]int{0, 1}, nil, nil, 200000)
	h.err = errors.New("connection refused")
	h.maxID = 300000
	step([]int{0, 1}, nil, nil, 200000) // no new mark: the horizon stays
	h.err = nil
	step([]int{0}, nil, nil, 300000) // a subset keeps the floor, and raises it
	h.maxID = 400000
	step([]int{0}, nil, rows(300100), 300000)  // 99 ids: not worth a query
	step([]int{0, 1}, nil, rows(50000), 49999) // regained shard 1: from 0 again, a row at 50000
	step([]int{0, 1, 2}, nil, rows(20000), 19999)

	h.maxID = 500000
	step([]int{0, 1, 2}, nil, nil, 500000)
	// TRUNCATE ... RESTART IDENTITY: new rows take low ids again.
	h.maxID = 10
	stale := f.start(ctx, []int{0, 1, 2}) // a read begun before the reset was seen
	step([]int{0, 1, 2}, nil, rows(5), 0)
	f.raise(ctx, []int{0, 1, 2}, stale, nil, nil)
	if f.floor != 0 {
		t.Fatalf("a read begun before the sequence went back raised the floor to %d", f.floor)
	}

	h.err = dialect.ErrNoHorizon
	step([]int{0, 1, 2}, nil, rows(30000), 0)
	if f.hz != nil {
		t.Fatal("the floor still asks a dialect that has no horizon")
	}
}
