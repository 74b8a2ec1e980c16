package outbox

import (
	"context"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// aheadRead is a batch read while the one before it is published.
type aheadRead struct {
	done   chan struct{}
	recs   []dialect.Row
	shards []int
	err    error
	// drop holds the keys of the batches left out of the read that did not
	// get all their records through; set once they are published, before
	// wait.
	drop map[keyID]bool
}

// readAhead starts reading the batch after cur, from the shards valid now,
// leaving out the rows of cur and of older (whose outcome may not be
// recorded yet), which are not deleted.
func (r *Relay) readAhead(work context.Context, curShards []int, cur []dialect.Row, older *settling) *aheadRead {
	valid := r.validShards(time.Now())
	if len(valid) == 0 {
		return nil
	}
	a := &aheadRead{done: make(chan struct{}), shards: sortedShards(valid)}
	// The keeper must not hand back a shard of any batch not settled yet:
	// its new owner could read a key before this relay records that the
	// key waits for a retry.
	inUse := append(append([]int(nil), curShards...), a.shards...)
	exclude := rowIDs(cur)
	if older != nil {
		inUse = append(inUse, older.shards...)
		exclude = append(exclude, older.ids...)
	}
	r.leases.use(inUse)
	read := r.reader(a.shards, exclude)
	go func() {
		defer close(a.done)
		a.recs, a.err = read(work)
	}()
	return a
}

// wait returns the records read ahead, without those of the dropped keys,
// the shards they were read from, and whether the read was a full batch
// (before the drop: a backlog). A failed read gives nothing: the caller
// reads again.
func (a *aheadRead) wait(r *Relay) ([]dialect.Row, []int, bool) {
	<-a.done
	if a.err != nil {
		return nil, nil, false
	}
	full := r.full(a.recs)
	if len(a.drop) == 0 {
		return a.recs, a.shards, full
	}
	kept := a.recs[:0]
	for _, rec := range a.recs {
		if rec.Key != nil && a.drop[keyID{rec.Shard, string(rec.Key)}] {
			continue
		}
		kept = append(kept, rec)
	}
	return kept, a.shards, full
}

// readErr is the error of a finished read, nil on a nil aheadRead.
func (a *aheadRead) readErr() error {
	if a == nil {
		return nil
	}
	return a.err
}

// discard waits for the read and forgets it. It is a no-op on nil.
func (a *aheadRead) discard() {
	if a != nil {
		<-a.done
	}
}

// settling is a published batch whose outcome is being recorded. It keeps
// the ids and shards of its records, not their payloads.
type settling struct {
	ids     []int64
	shards  []int
	held    map[keyID]bool // keys that did not get all their records through
	done    chan struct{}
	unacked []int64
}

// settleAsync records out on another goroutine.
func (r *Relay) settleAsync(work context.Context, recs []dialect.Row, held map[keyID]bool, out batchOutcome) *settling {
	s := &settling{ids: rowIDs(recs), held: held, done: make(chan struct{})}
	seen := map[int]bool{}
	for i := range recs {
		if !seen[recs[i].Shard] {
			seen[recs[i].Shard] = true
			s.shards = append(s.shards, recs[i].Shard)
		}
	}
	go func() {
		defer close(s.done)
		s.unacked = r.settle(work, out)
	}()
	return s
}

// wait waits until the outcome is recorded and returns the ids it could not
// delete.
func (s *settling) wait() []int64 {
	<-s.done
	return s.unacked
}
