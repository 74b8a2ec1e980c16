//go:build unix

package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// The timeline of a run: when each message committed (the writer's clock,
// after Commit returned), when each record reached the broker (the record's
// timestamp, which the relay's producer stamps when it builds the request
// that carries it; relays and writers share this machine's clock), and when
// each fault began and ended. From it the run's liveness figures: the
// longest gap in deliveries while messages waited, the time from each
// fault's end until everything committed before it was delivered, and the
// duplicates each fault caused.

// faultWindow is one injected fault.
type faultWindow struct {
	kind       string
	start, end time.Time
	// cut is how many relay processes the fault cut off in the middle of
	// their work (a SIGKILL or SIGSTOP: one; a database connection kill:
	// every relay then running); each may leave one batch to be sent again.
	cut int
}

// crash reports whether the fault stops a relay without letting it hand
// back its shards, so that they wait for the lease to expire.
func (f faultWindow) crash() bool { return f.kind == kindKill || f.kind == kindStop }

// outage reports whether the fault stops deliveries of every relay.
func (f faultWindow) outage() bool { return f.kind == kindBroker || f.kind == kindProduce }

// delivery is one record read back: its message id and broker timestamp.
type delivery struct {
	id string
	at time.Time
}

// limits are the bounds the timeline is held to.
type limits struct {
	gap      time.Duration // longest gap in deliveries away from faults
	recovery time.Duration // from a fault's end to the delivery of all committed before it
	lease    time.Duration // added to recovery after a crash or freeze
	outage   time.Duration // added to recovery after the broker was down or failing
	batch    int           // the relays' batch size: duplicates allowed per cut relay
}

// faultRecovery is how one fault was recovered from.
type faultRecovery struct {
	f faultWindow
	// recovery runs from the fault's end until every message committed
	// before it was delivered; allowed is the fault's bound, extended to
	// the bounds of the faults that began before it had recovered.
	recovery, allowed time.Duration
	alone             bool // no other fault overlapped its recovery window
	duplicates        int  // repeated deliveries after it began and before the next fault began
}

// episode is a run of faults close enough that one's recovery is not over
// when the next begins: the duplicates of its crashes may show up after
// any of them.
type episode struct {
	faults     []faultWindow
	start, end time.Time
	allowed    time.Duration // recovery bound: the largest of its faults'
	duplicates int           // repeated deliveries from start until the next episode
	dupAllowed int
}

func (e *episode) kinds() string {
	var ks []string
	for _, f := range e.faults {
		ks = append(ks, f.kind)
	}
	return strings.Join(ks, "+")
}

// timelineReport is what analyze found.
type timelineReport struct {
	episodes []*episode
	faults   []faultRecovery
	// longestGap is the longest time between two consecutive first
	// deliveries while a committed message waited; quietGap the longest
	// of those that overlap no fault and no recovery window.
	longestGap, quietGap time.Duration
	quietGapAt           time.Time
	// quietDelay is the longest commit-to-delivery time of a message
	// committed and delivered away from every fault and recovery window.
	quietDelay   time.Duration
	quietDelayAt time.Time // that message's commit
	quietMsgs    int       // messages of that kind
	outside      int       // duplicates before the first fault
	violations   []string
}

// faultBound is how long recovery from f may take.
func faultBound(f faultWindow, l limits) time.Duration {
	switch {
	case f.crash():
		return l.recovery + l.lease
	case f.outage():
		return l.recovery + l.outage
	}
	return l.recovery
}

// allowedRecovery is the bound of fs[i], extended while other faults
// overlap its recovery: until the end of their own bounds.
func allowedRecovery(fs []faultWindow, i int, l limits) time.Duration {
	f := fs[i]
	deadline := f.end.Add(faultBound(f, l))
	for changed := true; changed; {
		changed = false
		for j, g := range fs {
			if j == i || g.start.After(deadline) || g.end.Before(f.start) {
				continue
			}
			if d := g.end.Add(faultBound(g, l)); d.After(deadline) {
				deadline, changed = d, true
			}
		}
	}
	return deadline.Sub(f.end)
}

// analyze computes the run's liveness figures. commits holds the commit
// time of every committed message whose commit the writers saw succeed;
// deliveries every record read back (any order). Messages never delivered
// are left out: the ledger check counts them as lost.
func analyze(commits map[string]time.Time, deliveries []delivery, faults []faultWindow, l limits) timelineReport {
	var r timelineReport
	first := map[string]time.Time{}
	var dups []time.Time
	sort.Slice(deliveries, func(i, j int) bool { return deliveries[i].at.Before(deliveries[j].at) })
	for _, d := range deliveries {
		if _, seen := first[d.id]; seen {
			dups = append(dups, d.at)
			continue
		}
		first[d.id] = d.at
	}

	// Messages by commit time, with the latest first delivery of any
	// message committed up to each one.
	type msg struct{ commit, delivered time.Time }
	var msgs []msg
	for id, c := range commits {
		if d, ok := first[id]; ok {
			msgs = append(msgs, msg{c, d})
		}
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].commit.Before(msgs[j].commit) })
	latest := make([]time.Time, len(msgs))
	for i, m := range msgs {
		latest[i] = m.delivered
		if i > 0 && latest[i-1].After(m.delivered) {
			latest[i] = latest[i-1]
		}
	}
	// deliveredBy is when every message committed at or before t had
	// been delivered (the zero time if none was committed).
	deliveredBy := func(t time.Time) time.Time {
		n := sort.Search(len(msgs), func(i int) bool { return msgs[i].commit.After(t) })
		if n == 0 {
			return time.Time{}
		}
		return latest[n-1]
	}

	r.episodes = episodes(faults, l)
	fs := normalized(faults)
	for i, f := range fs {
		fr := faultRecovery{f: f, allowed: allowedRecovery(fs, i, l)}
		fr.alone = fr.allowed == faultBound(f, l)
		if by := deliveredBy(f.end); by.After(f.end) {
			fr.recovery = by.Sub(f.end)
		}
		if fr.recovery > fr.allowed {
			r.violations = append(r.violations, fmt.Sprintf("recovery from %s (%s-%s) took %s, bound %s",
				f.kind, f.start.Format("15:04:05.0"), f.end.Format("15:04:05.0"), fr.recovery.Round(10*time.Millisecond), fr.allowed.Round(10*time.Millisecond)))
		}
		r.faults = append(r.faults, fr)
	}

	// inFaults reports whether [a, b] overlaps a fault or its recovery window.
	inFaults := func(a, b time.Time) bool {
		for _, e := range r.episodes {
			if !b.Before(e.start) && !a.After(e.end.Add(e.allowed)) {
				return true
			}
		}
		return false
	}
	// A gap: no first delivery between two consecutive ones, a and b,
	// while a message committed before b waited until b or later; it
	// counts from a, or from that commit if later.
	byDelivery := slices.Clone(msgs)
	sort.Slice(byDelivery, func(i, j int) bool { return byDelivery[i].delivered.Before(byDelivery[j].delivered) })
	earliest := make([]time.Time, len(byDelivery)) // earliest commit of byDelivery[i:]
	for i := len(byDelivery) - 1; i >= 0; i-- {
		earliest[i] = byDelivery[i].commit
		if i+1 < len(byDelivery) && earliest[i+1].Before(earliest[i]) {
			earliest[i] = earliest[i+1]
		}
	}
	for i := 1; i < len(byDelivery); i++ {
		a, b := byDelivery[i-1].delivered, byDelivery[i].delivered
		if !earliest[i].Before(b) {
			continue
		}
		if earliest[i].After(a) {
			a = earliest[i]
		}
		gap := b.Sub(a)
		r.longestGap = max(r.longestGap, gap)
		if !inFaults(a, b) && gap > r.quietGap {
			r.quietGap, r.quietGapAt = gap, a
		}
	}
	if r.quietGap > l.gap {
		r.violations = append(r.violations, fmt.Sprintf("no delivery for %s from %s while messages waited, away from any fault (bound %s)",
			r.quietGap.Round(10*time.Millisecond), r.quietGapAt.Format("15:04:05.000"), l.gap))
	}
	for _, m := range msgs {
		if inFaults(m.commit, m.delivered) {
			continue
		}
		r.quietMsgs++
		if d := m.delivered.Sub(m.commit); d > r.quietDelay {
			r.quietDelay, r.quietDelayAt = d, m.commit
		}
	}
	// One message may wait longer than the gap bound while others flow
	// (its shard changing hands on a busy machine), but never a lease.
	if delayBound := max(l.gap, l.lease); r.quietDelay > delayBound {
		r.violations = append(r.violations, fmt.Sprintf("a message committed at %s, away from any fault, waited %s for its delivery (bound %s)",
			r.quietDelayAt.Format("15:04:05.000"), r.quietDelay.Round(10*time.Millisecond), delayBound))
	}

	// A repeated delivery belongs to the latest episode (and fault) begun
	// before it.
	for _, at := range dups {
		i := sort.Search(len(r.episodes), func(i int) bool { return r.episodes[i].start.After(at) }) - 1
		if i < 0 {
			r.outside++
			continue
		}
		r.episodes[i].duplicates++
		j := sort.Search(len(r.faults), func(j int) bool { return r.faults[j].f.start.After(at) }) - 1
		r.faults[j].duplicates++
	}
	if r.outside > 0 {
		r.violations = append(r.violations, fmt.Sprintf("%d duplicates before the first fault", r.outside))
	}
	for _, e := range r.episodes {
		if e.duplicates > e.dupAllowed {
			r.violations = append(r.violations, fmt.Sprintf("%d duplicates after %s at %s, bound %d (one batch of %d per relay cut off)",
				e.duplicates, e.kinds(), e.start.Format("15:04:05.0"), e.dupAllowed, l.batch))
		}
	}
	return r
}

// episodes merges faults that begin before the previous ones are due to
// have recovered.
func episodes(faults []faultWindow, l limits) []*episode {
	var out []*episode
	for _, f := range normalized(faults) {
		bound := faultBound(f, l)
		if n := len(out); n > 0 && !f.start.After(out[n-1].end.Add(out[n-1].allowed)) {
			e := out[n-1]
			e.faults = append(e.faults, f)
			if f.end.After(e.end) {
				e.end = f.end
			}
			e.allowed = max(e.allowed, bound)
			e.dupAllowed += f.cut * l.batch
			continue
		}
		out = append(out, &episode{faults: []faultWindow{f}, start: f.start, end: f.end, allowed: bound, dupAllowed: f.cut * l.batch})
	}
	return out
}

// normalized returns faults sorted by start, each ending at its start or
// later.
func normalized(faults []faultWindow) []faultWindow {
	fs := slices.Clone(faults)
	sort.Slice(fs, func(i, j int) bool { return fs[i].start.Before(fs[j].start) })
	for i := range fs {
		if fs[i].end.Before(fs[i].start) {
			fs[i].end = fs[i].start
		}
	}
	return fs
}

// summary is the report's lines for the log.
func (r timelineReport) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "longest delivery gap %s (away from faults %s); longest delay away from faults %s over %d messages; %d faults in %d episodes:",
		r.longestGap.Round(10*time.Millisecond), r.quietGap.Round(10*time.Millisecond), r.quietDelay.Round(10*time.Millisecond), r.quietMsgs,
		len(r.faults), len(r.episodes))
	for _, fr := range r.faults {
		fmt.Fprintf(&b, "\n  %s-%s %-15s recovered in %6s (bound %6s); duplicates after it %d",
			fr.f.start.Format("15:04:05.0"), fr.f.end.Format("15:04:05.0"), fr.f.kind,
			fr.recovery.Round(10*time.Millisecond), fr.allowed.Round(10*time.Millisecond), fr.duplicates)
	}
	for _, e := range r.episodes {
		fmt.Fprintf(&b, "\n  episode %s-%s: %d faults, duplicates %d (bound %d)",
			e.start.Format("15:04:05.0"), e.end.Format("15:04:05.0"), len(e.faults), e.duplicates, e.dupAllowed)
	}
	return b.String()
}

// byKind is, per fault kind, the worst recovery (and the worst of the
// faults that no other overlapped) and the duplicates after them.
func (r timelineReport) byKind() string {
	type agg struct {
		n, alone          int
		worst, worstAlone time.Duration
		dups, maxDups     int
	}
	m := map[string]*agg{}
	var kinds []string
	for _, fr := range r.faults {
		a := m[fr.f.kind]
		if a == nil {
			a = &agg{}
			m[fr.f.kind] = a
			kinds = append(kinds, fr.f.kind)
		}
		a.n++
		a.worst = max(a.worst, fr.recovery)
		if fr.alone {
			a.alone++
			a.worstAlone = max(a.worstAlone, fr.recovery)
		}
		a.dups += fr.duplicates
		a.maxDups = max(a.maxDups, fr.duplicates)
	}
	sort.Strings(kinds)
	var parts []string
	for _, k := range kinds {
		a := m[k]
		parts = append(parts, fmt.Sprintf("%s %dx: worst recovery %.2fs (alone %dx, worst %.2fs), duplicates %d (max %d)",
			k, a.n, a.worst.Seconds(), a.alone, a.worstAlone.Seconds(), a.dups, a.maxDups))
	}
	return strings.Join(parts, "; ")
}
