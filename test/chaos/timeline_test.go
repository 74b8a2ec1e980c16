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
// fault until everything committed before it was delivered, and the
// duplicates each fault caused.

// faultWindow is one injected fault.
type faultWindow struct {
	kind       string
	start, end time.Time
	// cut is how many relay processes the fault cut off in the middle of
	// their work (a SIGKILL or SIGSTOP: one; a database connection kill:
	// every relay then running; a broker that lost its answers: every
	// relay); each may leave one batch to be sent again.
	cut int
}

// crash reports whether the fault stops a relay without letting it hand
// back its shards, so that they wait for the lease to expire.
func (f faultWindow) crash() bool { return f.kind == kindKill || f.kind == kindStop }

// outage reports whether the fault stops deliveries of every relay.
func (f faultWindow) outage() bool { return f.kind == kindBroker || f.kind == kindProduce }

// from is the moment recovery from f is measured from: its end, except
// for a crash or a freeze, whose relay is gone from its start on (the
// others must take its shards over whether or not it comes back).
func (f faultWindow) from() time.Time {
	if f.crash() {
		return f.start
	}
	return f.end
}

// delivery is one record read back: its message id and broker timestamp.
type delivery struct {
	id string
	at time.Time
}

// limits are the bounds the timeline is held to.
type limits struct {
	gap      time.Duration // longest gap in deliveries away from faults
	recovery time.Duration // from a fault to the delivery of all committed before it
	lease    time.Duration // added to recovery after a crash or freeze
	outage   time.Duration // added to recovery after the broker was down or failing
	batch    int           // the relays' batch size: duplicates allowed per cut relay
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

// window is the time f may disturb deliveries: from its start until its
// recovery bound has passed.
func window(f faultWindow, l limits) (from, to time.Time) {
	to = f.from().Add(faultBound(f, l))
	if e := f.end.Add(faultBound(f, l)); f.kind == kindStop && e.After(to) {
		to = e // a frozen relay that wakes may still send its last batch
	}
	if e := f.end.Add(l.recovery + l.lease); f.kind == kindDBKill && e.After(to) {
		// A relay whose renewal died with its connection may lose a
		// shard in the middle of a batch: its next owner sends it again
		// once the lease has run out.
		to = e
	}
	return f.start, to
}

// faultRecovery is how one fault was recovered from.
type faultRecovery struct {
	f faultWindow
	// recovery runs from f.from() until every message committed before it
	// was delivered. allowed is the fault's bound, extended to the bounds
	// of the faults whose windows overlap its own: one step, not a chain,
	// so that faults following each other closely cannot hide a stall.
	recovery, allowed time.Duration
	alone             bool // no other fault's window overlapped its own
	duplicates        int  // repeated deliveries ascribed to it
	dupAllowed        int  // one batch per relay it cut off
}

// timelineReport is what analyze found.
type timelineReport struct {
	faults []faultRecovery
	// longestGap is the longest time between two consecutive first
	// deliveries while a committed message waited; quietGap the longest
	// of those that overlap no fault window.
	longestGap, quietGap time.Duration
	quietGapAt           time.Time
	// quietDelay is the longest commit-to-delivery time of a message
	// committed and delivered away from every fault window.
	quietDelay   time.Duration
	quietDelayAt time.Time // that message's commit
	quietMsgs    int       // messages of that kind
	unexplained  int       // duplicates no fault can account for
	violations   []string
}

// msg is a committed message that was delivered.
type msg struct{ commit, delivered time.Time }

// analyze computes the run's liveness figures. commits holds the commit
// time of every committed message whose commit the writers saw succeed;
// deliveries every record read back (any order). Messages never delivered
// are left out: the ledger check counts them as lost.
func analyze(commits map[string]time.Time, deliveries []delivery, faults []faultWindow, l limits) timelineReport {
	var r timelineReport
	sort.Slice(deliveries, func(i, j int) bool { return deliveries[i].at.Before(deliveries[j].at) })
	first := map[string]time.Time{}
	var dups []time.Time
	for _, d := range deliveries {
		if _, seen := first[d.id]; seen {
			dups = append(dups, d.at)
			continue
		}
		first[d.id] = d.at
	}
	var msgs []msg
	for id, c := range commits {
		if d, ok := first[id]; ok {
			msgs = append(msgs, msg{c, d})
		}
	}
	fs := normalized(faults)
	r.recoveries(msgs, fs, l)
	r.gaps(msgs, fs, l)
	r.duplicates(dups, fs, l)
	return r
}

// recoveries measures, for every fault, the time from f.from() until
// everything committed before it was delivered, against its bound.
func (r *timelineReport) recoveries(msgs []msg, fs []faultWindow, l limits) {
	byCommit := slices.Clone(msgs)
	sort.Slice(byCommit, func(i, j int) bool { return byCommit[i].commit.Before(byCommit[j].commit) })
	latest := make([]time.Time, len(byCommit)) // latest delivery of byCommit[:i+1]
	for i, m := range byCommit {
		latest[i] = m.delivered
		if i > 0 && latest[i-1].After(m.delivered) {
			latest[i] = latest[i-1]
		}
	}
	for i, f := range fs {
		ref := f.from()
		fr := faultRecovery{f: f, allowed: faultBound(f, l), alone: true, dupAllowed: f.cut * l.batch}
		deadline, alone := allowedUntil(fs, i, l)
		fr.allowed, fr.alone = deadline.Sub(ref), alone
		n := sort.Search(len(byCommit), func(k int) bool { return byCommit[k].commit.After(ref) })
		if n > 0 && latest[n-1].After(ref) {
			fr.recovery = latest[n-1].Sub(ref)
		}
		if fr.recovery > fr.allowed {
			r.violations = append(r.violations, fmt.Sprintf("recovery from %s (%s-%s) took %s, bound %s",
				f.kind, f.start.Format("15:04:05.0"), f.end.Format("15:04:05.0"), fr.recovery.Round(10*time.Millisecond), fr.allowed.Round(10*time.Millisecond)))
		}
		r.faults = append(r.faults, fr)
	}
}

// allowedUntil is when everything committed before fs[i] must have been
// delivered: its own bound, extended to the bounds of the faults whose
// windows overlap it before it is due (one step: faults that follow each
// other closely cannot hide a stall), and then through the broker outages
// that overlap the extended bound, one after the other (while the broker
// is down or failing nobody publishes: outages back to back are one long
// outage; the suite spaces them, see stream). alone reports that no other
// fault's window overlapped it before it was due.
func allowedUntil(fs []faultWindow, i int, l limits) (time.Time, bool) {
	due := func(f faultWindow) time.Time { return f.from().Add(faultBound(f, l)) }
	a, b := fs[i].start, due(fs[i])
	deadline, alone := b, true
	for j, g := range fs {
		ga, gb := window(g, l)
		if j == i || ga.After(b) || gb.Before(a) {
			continue
		}
		alone = false
		if d := due(g); d.After(deadline) {
			deadline = d
		}
	}
	for changed := true; changed; {
		changed = false
		for j, g := range fs {
			ga, gb := window(g, l)
			if j == i || !g.outage() || ga.After(deadline) || gb.Before(a) || !due(g).After(deadline) {
				continue
			}
			deadline, changed = due(g), true
		}
	}
	return deadline, alone
}

// gaps finds the longest stop of deliveries while a message waited, and
// the longest wait of a message, away from every fault window.
func (r *timelineReport) gaps(msgs []msg, fs []faultWindow, l limits) {
	inFaults := func(a, b time.Time) bool {
		for _, f := range fs {
			if wa, wb := window(f, l); !b.Before(wa) && !a.After(wb) {
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
}

// duplicates ascribes every repeated delivery to a fault that can explain
// it: one that cut relays off in the middle of their work, whose window
// holds the delivery, with room left (one batch per relay it cut); the
// latest such fault first. A duplicate no fault explains is a violation.
func (r *timelineReport) duplicates(dups []time.Time, fs []faultWindow, l limits) {
	var samples []string
	for _, at := range dups {
		ascribed := false
		for i := len(r.faults) - 1; i >= 0; i-- {
			fr := &r.faults[i]
			a, b := window(fr.f, l)
			if at.Before(a) || at.After(b) || fr.duplicates >= fr.dupAllowed {
				continue
			}
			fr.duplicates++
			ascribed = true
			break
		}
		if !ascribed {
			r.unexplained++
			if len(samples) < 5 {
				samples = append(samples, at.Format("15:04:05.000"))
			}
		}
	}
	if r.unexplained > 0 {
		r.violations = append(r.violations, fmt.Sprintf("%d duplicates that no fault explains (at most one batch of %d per relay a fault cut off, within its window), e.g. at %v",
			r.unexplained, l.batch, samples))
	}
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
	fmt.Fprintf(&b, "longest delivery gap %s (away from faults %s); longest delay away from faults %s over %d messages; %d faults:",
		r.longestGap.Round(10*time.Millisecond), r.quietGap.Round(10*time.Millisecond), r.quietDelay.Round(10*time.Millisecond), r.quietMsgs,
		len(r.faults))
	for _, fr := range r.faults {
		fmt.Fprintf(&b, "\n  %s-%s %-15s recovered in %6s (bound %6s); duplicates %d (bound %d)",
			fr.f.start.Format("15:04:05.0"), fr.f.end.Format("15:04:05.0"), fr.f.kind,
			fr.recovery.Round(10*time.Millisecond), fr.allowed.Round(10*time.Millisecond), fr.duplicates, fr.dupAllowed)
	}
	return b.String()
}

// byKind is, per fault kind, the worst recovery (and the worst of the
// faults no other overlapped) and the duplicates ascribed to them.
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
