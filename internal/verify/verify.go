// Package verify checks deliveries against what was committed: the ledger
// behind the demo, the relay tests and the fault-injection suite.
//
// Writers record each message as committed (with its key and its sequence
// number within the key) or rolled back; a consumer observes every record
// it reads. The summary counts what the guarantees forbid (lost messages,
// rolled-back messages delivered, reordered first deliveries) and what they
// allow (duplicates).
package verify

import (
	"fmt"
	"sync"
)

type entry struct {
	key string
	seq int
}

// Ledger is safe for concurrent use.
type Ledger struct {
	mu         sync.Mutex
	committed  map[string]entry
	rolledBack map[string]bool
	seen       map[string]bool
	last       map[string]int // key -> highest seq first-delivered
	s          Summary
}

// Summary is the outcome of a run.
type Summary struct {
	Committed           int // messages committed by writers
	RolledBack          int // messages rolled back by writers
	Published           int // distinct committed messages delivered
	Lost                int // committed messages never delivered
	RolledBackPublished int // rolled-back messages delivered (must be 0)
	OrderViolations     int // first deliveries out of key order (must be 0)
	Duplicates          int // deliveries after the first (allowed)
	Unknown             int // delivered ids no writer recorded (must be 0)
}

// OK reports whether every must-be-zero figure is zero.
func (s Summary) OK() bool {
	return s.Lost == 0 && s.RolledBackPublished == 0 && s.OrderViolations == 0 && s.Unknown == 0
}

func (s Summary) String() string {
	return fmt.Sprintf("committed=%d published=%d lost=%d rolled_back_published=%d order_violations=%d duplicates=%d",
		s.Committed, s.Published, s.Lost, s.RolledBackPublished, s.OrderViolations, s.Duplicates)
}

// New returns an empty ledger.
func New() *Ledger {
	return &Ledger{committed: map[string]entry{}, rolledBack: map[string]bool{}, seen: map[string]bool{}, last: map[string]int{}}
}

// Committed records that message id, the seq-th message of key (counting
// from 1 in commit order), committed. Record it before the commit returns to
// the writer, or before the consumer can see it; the ledger only compares.
func (l *Ledger) Committed(id, key string, seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.committed[id] = entry{key, seq}
}

// RolledBack records that message id was rolled back.
func (l *Ledger) RolledBack(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rolledBack[id] = true
}

// Observe records a delivery of message id. Deliveries of one key must be
// observed in the order the broker holds them (one partition, in offset
// order).
func (l *Ledger) Observe(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observe(id)
}

// observe is Observe with l.mu held.
func (l *Ledger) observe(id string) {
	if l.rolledBack[id] {
		l.s.RolledBackPublished++
		return
	}
	if l.seen[id] {
		l.s.Duplicates++
		return
	}
	e, ok := l.committed[id]
	if !ok {
		l.s.Unknown++
		return
	}
	l.seen[id] = true
	l.s.Published++
	if e.seq <= l.last[e.key] {
		l.s.OrderViolations++
	} else {
		l.last[e.key] = e.seq
	}
}

// Published returns how many distinct committed messages were delivered.
func (l *Ledger) Published() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Published
}

// Summary returns the figures so far; Lost counts committed messages not
// delivered yet.
func (l *Ledger) Summary() Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.s
	s.Committed = len(l.committed)
	s.RolledBack = len(l.rolledBack)
	s.Lost = s.Committed - s.Published
	return s
}

// Check returns the summary of the deliveries ids (in the order the broker
// holds them) against what was recorded as committed and rolled back, as
// Observe and Summary would give on a fresh ledger. The ledger is not
// changed, so a test may check the records a fake publisher holds as often
// as it likes.
func (l *Ledger) Check(ids []string) Summary {
	l.mu.Lock()
	fresh := &Ledger{committed: l.committed, rolledBack: l.rolledBack, seen: map[string]bool{}, last: map[string]int{}}
	defer l.mu.Unlock()
	for _, id := range ids {
		fresh.observe(id)
	}
	s := fresh.s
	s.Committed = len(l.committed)
	s.RolledBack = len(l.rolledBack)
	s.Lost = s.Committed - s.Published
	return s
}
