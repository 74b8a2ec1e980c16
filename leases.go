package outbox

import (
	"sort"
	"sync"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// leaseBook is the relay's record of the shards it leases: the one piece of
// state that its two goroutines share. The lease keeper (keepLeases) writes
// what the database granted; the worker (work) marks the shards of the
// batches it has not settled yet and reads which shards it may publish.
//
// The hand-over rules live in its methods:
//   - A lease is valid for publishing while more than a margin (one
//     RenewInterval) is left before its local deadline, and while it is not
//     surplus (valid). The deadline is conservative: the time before the
//     request that granted or renewed it, plus the lease duration.
//   - Shards above the fair share are handed back from the highest down
//     (handBack), except the shards in use by a batch not settled yet: their
//     new owner could read a key before this relay records that the key
//     waits for a retry. Those become surplus: the worker stops reading them
//     at once, and asks for another round (requestRound) once the batch is
//     settled, which hands them back.
//   - Any change of the set (a lease lost, handed back or sought) wakes an
//     idle worker (signalChanged), so it reads new shards without waiting
//     for its poll interval.
type leaseBook struct {
	changed chan struct{} // keeper -> worker: the set changed
	kick    chan struct{} // worker -> keeper: run a round now

	mu      sync.Mutex
	held    map[int]heldLease
	inUse   map[int]bool // shards of the batches not settled yet
	surplus map[int]bool // held, above the fair share, in use: hand back after the batch
}

type heldLease struct {
	fence    int64
	deadline time.Time // local, conservative: request start + LeaseDuration
}

func newLeaseBook() *leaseBook {
	return &leaseBook{
		changed: make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		held:    map[int]heldLease{},
		inUse:   map[int]bool{},
		surplus: map[int]bool{},
	}
}

// leases returns the held leases in shard order.
func (b *leaseBook) leases() []dialect.Lease {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.leasesLocked()
}

func (b *leaseBook) leasesLocked() []dialect.Lease {
	out := make([]dialect.Lease, 0, len(b.held))
	for s, h := range b.held {
		out = append(out, dialect.Lease{Shard: s, Fence: h.fence})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Shard < out[j].Shard })
	return out
}

// count returns how many shards are held.
func (b *leaseBook) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held)
}

// renewed records the outcome of a renewal: the leases in got are held
// until deadline, every other lease is lost. It returns how many were lost.
func (b *leaseBook) renewed(got []dialect.Lease, deadline time.Time) (lost int) {
	keep := make(map[int]bool, len(got))
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range got {
		keep[l.Shard] = true
		b.held[l.Shard] = heldLease{fence: l.Fence, deadline: deadline}
	}
	for s := range b.held {
		if !keep[s] {
			delete(b.held, s)
			lost++
		}
	}
	return lost
}

// handBack takes the shards above share out of the book, highest first, and
// returns them for release. Shards in use stay held and become surplus (they
// count as handed back: the next round after their batch releases them).
// Surplus marks of the round before are cleared first.
func (b *leaseBook) handBack(share int) []dialect.Lease {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.surplus)
	n := len(b.held) - share
	if n <= 0 {
		return nil
	}
	var out []dialect.Lease
	all := b.leasesLocked()
	for i := len(all) - 1; i >= 0 && n > 0; i, n = i-1, n-1 {
		s := all[i].Shard
		if b.inUse[s] {
			b.surplus[s] = true
			continue
		}
		out = append(out, all[i])
		delete(b.held, s)
	}
	return out
}

// missing returns how many more shards the relay needs for share.
func (b *leaseBook) missing(share int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(share-len(b.held), 0)
}

// acquired records new leases, held until deadline.
func (b *leaseBook) acquired(got []dialect.Lease, deadline time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range got {
		b.held[l.Shard] = heldLease{fence: l.Fence, deadline: deadline}
	}
}

// valid returns the shards the worker may read and publish at now: held,
// with more than margin left, and not surplus.
func (b *leaseBook) valid(now time.Time, margin time.Duration) map[int]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[int]bool, len(b.held))
	for s, h := range b.held {
		if h.deadline.Sub(now) > margin && !b.surplus[s] {
			out[s] = true
		}
	}
	return out
}

// use marks shards as the shards of the batches not settled yet, replacing
// the previous marks; nil clears them.
func (b *leaseBook) use(shards []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.inUse)
	for _, s := range shards {
		b.inUse[s] = true
	}
}

// takeAll empties the book and returns what it held, for the release at
// shutdown.
func (b *leaseBook) takeAll() []dialect.Lease {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.leasesLocked()
	clear(b.held)
	return out
}

// signalChanged wakes the worker if it waits (never blocks).
func (b *leaseBook) signalChanged() {
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// requestRound asks the keeper for a round now when surplus shards wait to
// be handed back (never blocks).
func (b *leaseBook) requestRound() {
	b.mu.Lock()
	n := len(b.surplus)
	b.mu.Unlock()
	if n == 0 {
		return
	}
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// fairShare is ceil(shards / live relays), with at least one relay (this one).
func fairShare(shards, live int) int {
	live = max(live, 1)
	return (shards + live - 1) / live
}
