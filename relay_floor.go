package outbox

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// settleEvery is the shortest time between two settle marks: each one reads
// the lock table (pg_locks takes every lock-manager partition lock, so it
// must stay rare), and a floor that trails the newest ids by a few hundred
// milliseconds of traffic costs a read almost nothing.
const settleEvery = 100 * time.Millisecond

// readFloor is where the relay's reads start: an id at or below which its
// shards hold no live row, so that a read does not walk the dead rows (and
// dead index entries) that acknowledged messages leave behind until vacuum
// or purge removes them, which a snapshot held open anywhere prevents.
//
// The floor rests on one invariant: no live row of the shard set has an id
// at or below it, now or later. Later holds because new rows take ids above
// the settled horizon (every id at or below it was committed or given up
// before the read that used it), and a row, once gone, never comes back
// (a replayed dead letter is a new row). A read R that started above from
// may raise the floor to the lowest of:
//   - the settled horizon taken before R: a transaction still open may hold
//     a lower id, and commit it after R (a late committer);
//   - the first row R returned, less one: R returns the lowest available
//     rows above from, so none lies between;
//   - the lowest id R left out because it is in flight (published, not yet
//     settled), less one;
//   - the lowest row of the shards that was ever deferred (delayed at
//     enqueue, or scheduled for a retry), less one, read after R: R passed
//     the rows not available yet, and the later rows of a key that waits
//     for a retry, which all lie above the row it waits on.
//
// The invariant is about rows, not owners: it holds for every subset of the
// shard set, whoever owns it later. A shard set that gains a shard starts
// again from 0 (its previous owner may have left live rows anywhere); one
// that only loses shards keeps its floor. The floor is shared by the worker
// and the goroutine that reads ahead, one read at a time.
type readFloor struct {
	hz  dialect.Horizon // nil: reads start at the lowest id (set to nil under mu)
	db  *sql.DB
	log *slog.Logger

	mu       sync.Mutex
	shards   []int // the shard set floor is for
	floor    int64
	settled  int64 // every id up to it is committed or will never be
	mark     dialect.SettleMark
	markAt   time.Time // when the last mark was asked for
	settling bool      // a mark is being taken
	gen      int       // grows when the id sequence went back: reads begun before prove nothing
	wg       sync.WaitGroup
}

// wait waits for the settle mark being taken, if any.
func (f *readFloor) wait() {
	if f != nil {
		f.wg.Wait()
	}
}

func newReadFloor(d dialect.Dialect, db *sql.DB, log *slog.Logger) *readFloor {
	hz, _ := d.(dialect.Horizon)
	return &readFloor{hz: hz, db: db, log: log}
}

// floorRead is what a read starts from: its floor, the settled horizon,
// and the generation of both.
type floorRead struct {
	from, settled int64
	gen           int
}

// start returns where a read of shards starts (ids above from) and the
// settled horizon to bound what the read may prove. When the last mark is
// old enough it takes a new one in the background, until work ends: the
// read does not wait for the lock table, and uses the horizon of the marks
// taken before it.
func (f *readFloor) start(work context.Context, shards []int) floorRead {
	if f == nil {
		return floorRead{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hz == nil {
		return floorRead{}
	}
	if !subset(shards, f.shards) {
		f.shards = slices.Clone(shards)
		f.floor = 0
	}
	if !f.settling && time.Since(f.markAt) >= settleEvery {
		f.settling = true
		f.markAt = time.Now()
		f.wg.Add(1)
		go f.advanceHorizon(work, f.hz, f.mark)
	}
	return floorRead{from: f.floor, settled: f.settled, gen: f.gen}
}

// settleTimeout bounds a settle mark's query.
const settleTimeout = 5 * time.Second

// advanceHorizon takes a new settle mark after prev: prev's ids are settled
// when its transactions have ended, the new one's at once when it has none
// to wait for.
func (f *readFloor) advanceHorizon(ctx context.Context, hz dialect.Horizon, prev dialect.SettleMark) {
	defer f.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	next, prevSettled, err := hz.Settle(ctx, f.db, prev)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settling = false
	switch {
	case errors.Is(err, dialect.ErrNoHorizon):
		f.log.Info("reads start at the lowest id of the outbox (each read walks the rows vacuum has not removed yet)", "reason", err)
		f.hz = nil
		f.floor, f.settled = 0, 0
		return
	case err != nil:
		if ctx.Err() == nil {
			f.log.Debug("reading the settled outbox ids failed; keeping the floor", "err", err)
		}
		return
	case f.hz == nil:
		return
	case next.MaxID < prev.MaxID || next.MaxID < f.settled:
		// The sequence went back: TRUNCATE ... RESTART IDENTITY, a setval,
		// a restore, a failover to a standby that had not seen the last
		// ids. New rows may take ids the floor has passed: start again.
		f.log.Warn("the outbox's id sequence went back; reads start at the lowest id again",
			"was", max(prev.MaxID, f.settled), "now", next.MaxID)
		f.floor, f.settled, f.mark = 0, 0, dialect.SettleMark{}
		f.gen++
		return
	}
	if prevSettled {
		f.settled = max(f.settled, prev.MaxID)
	}
	if next.Settled() {
		f.settled = max(f.settled, next.MaxID)
	}
	f.mark = next
}

// raiseStep is the least a read must be able to raise the floor by for
// the relay to look up the lowest deferred row (a query) and raise it: a
// read that starts a few ids low walks a few dead rows at most, and an
// idle relay woken for one message publishes it without the query.
const raiseStep = 256

// raise records what a read of shards that started above from, with the
// horizon settled, leaving out exclude, proved by returning recs (in id
// order).
func (f *readFloor) raise(ctx context.Context, shards []int, at floorRead, exclude []int64, recs []dialect.Row) {
	if f == nil {
		return
	}
	f.mu.Lock()
	hz := f.hz
	f.mu.Unlock()
	if hz == nil {
		return
	}
	from, c := at.from, at.settled
	if len(exclude) > 0 {
		c = min(c, slices.Min(exclude)-1)
	}
	if len(recs) > 0 {
		c = min(c, recs[0].RowID-1)
	}
	if c < from+raiseStep {
		return
	}
	d, ok, err := hz.LowestDeferred(ctx, f.db, shards)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Debug("reading the lowest deferred row failed; keeping the floor", "err", err)
		}
		return
	}
	if ok {
		c = min(c, d-1)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.hz == nil || f.gen != at.gen:
	case subset(f.shards, shards):
		f.floor = max(f.floor, c)
	case subset(shards, f.shards):
		// The floor holds for the larger set, so for shards too.
		f.shards = slices.Clone(shards)
		f.floor = max(f.floor, c)
	}
}

// subset reports whether every shard of a (sorted) is in b (sorted).
func subset(a, b []int) bool {
	for _, s := range a {
		if _, ok := slices.BinarySearch(b, s); !ok {
			return false
		}
	}
	return true
}
