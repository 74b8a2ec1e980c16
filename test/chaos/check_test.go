//go:build unix

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/internal/verify"
)

// limitsFor returns the relays' lease and the liveness bounds of a run on
// dialect name. Away from faults deliveries never stop for more than 2 s
// while a message waits, and no message waits longer than the lease (one
// may wait a little longer than 2 s while others flow: its shard changing
// hands on a busy machine); everything committed before a
// fault's end is delivered within 3 s of it, plus the lease after a crash or
// a freeze (its shards wait for the lease to expire); only a relay cut off
// in the middle of its work (killed, frozen, its database connection
// killed, or its broker's answer lost) sends anything twice: at most one
// batch.
//
// After the broker was down or failing, a relay in its outage pause
// resumes at its next probe of the broker (every 500 ms) or, when the
// produce requests were refused rather than the broker down, at the end of
// the pause's current step: outage adds 2 s for that (it was 10 s while
// Sarama's circuit breaker held relays back).
//
// SQLite has one write lock for everyone: every writer, every relay's
// acks and lease rounds queue for it, and a relay frozen in a write
// transaction holds it through its freeze. Its lease must exceed the
// longest wait for that lock (docs/design.md), so 10 s here, and its gap
// and recovery bounds are wider; they still catch a stall.
func limitsFor(name string) limits {
	if name == "sqlite" {
		return limits{gap: 5 * time.Second, recovery: 5 * time.Second, lease: sqliteLease, outage: 2 * time.Second, batch: relayBatch}
	}
	return limits{gap: 2 * time.Second, recovery: 3 * time.Second, lease: leaseDuration, outage: 2 * time.Second, batch: relayBatch}
}

type ledgerEntry struct {
	key string
	seq int
}

// check reads every record back from the broker and compares them with the
// ledger tables, then prints the run's line and fails on any figure the
// guarantees forbid.
func (h *harness) check(ctx context.Context, recovered time.Duration, drained bool) {
	t := h.t
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	ledger := map[string]ledgerEntry{}
	if err := h.scan(ctx, "SELECT msg_id, k, seq FROM chaos_ledger", func(sc func(...any) error) error {
		var id string
		var e ledgerEntry
		if err := sc(&id, &e.key, &e.seq); err != nil {
			return err
		}
		ledger[id] = e
		return nil
	}); err != nil {
		t.Fatalf("reading chaos_ledger: %v", err)
	}
	poison := map[string]bool{}
	if err := h.scan(ctx, "SELECT msg_id FROM chaos_poison", func(sc func(...any) error) error {
		var id string
		err := sc(&id)
		poison[id] = true
		return err
	}); err != nil {
		t.Fatalf("reading chaos_poison: %v", err)
	}
	dead := map[string]int{}         // message_id -> dead-letter rows
	var deadErrs, poisonWhy []string // dead letters other than poison; poison dead-lettered for another reason
	if err := h.scan(ctx, "SELECT message_id, attempts, last_error FROM outbox_dead_letters", func(sc func(...any) error) error {
		var id string
		var attempts int
		var lastErr *string
		if err := sc(&id, &attempts, &lastErr); err != nil {
			return err
		}
		dead[id]++
		msg := ""
		if lastErr != nil {
			msg = *lastErr
		}
		switch {
		case !poison[id]:
			deadErrs = append(deadErrs, fmt.Sprintf("%s after %d attempts: %.200s", id, attempts, msg))
		case !strings.Contains(strings.ToLower(msg), "too large"):
			poisonWhy = append(poisonWhy, fmt.Sprintf("%s after %d attempts: %.200s", id, attempts, msg))
		}
		return nil
	}); err != nil {
		t.Fatalf("reading outbox_dead_letters: %v", err)
	}
	pending, err := h.count(ctx, "SELECT COUNT(*) FROM outbox_messages")
	if err != nil {
		t.Fatalf("counting the outbox: %v", err)
	}

	readStart := time.Now()
	recs, end, err := readAll(h.broker.addr(), 90*time.Second)
	if err != nil {
		t.Errorf("reading the topic back: %v", err)
	}
	var total int64
	for _, e := range end {
		total += e
	}
	h.logf("read %d records back (end offsets sum %d) in %s", len(recs), total, time.Since(readStart).Round(time.Millisecond))

	l := verify.New()
	for id, e := range ledger {
		l.Committed(id, e.key, e.seq)
	}
	poisonDelivered, badRecords := 0, 0
	var badSamples, strays []string
	bad := func(format string, args ...any) {
		badRecords++
		if len(badSamples) < 5 {
			badSamples = append(badSamples, fmt.Sprintf(format, args...))
		}
	}
	for _, r := range recs {
		id := string(localkafka.Header(r, outbox.HeaderID))
		if poison[id] {
			poisonDelivered++
			continue
		}
		if e, ok := ledger[id]; ok {
			var v struct {
				K   string `json:"k"`
				Seq int    `json:"seq"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil || v.K != e.key || v.Seq != e.seq || string(r.Key) != e.key {
				bad("record %d/%d (%s): key %q value %.80q; the ledger says %s #%d", r.Partition, r.Offset, id, r.Key, r.Value, e.key, e.seq)
			}
		} else if len(strays) < 5 {
			// Not committed: rolled back on purpose, or a transaction that
			// failed (or an id no writer made). rolled_back_delivered counts it.
			strays = append(strays, fmt.Sprintf("record %d/%d with outbox-id %q (rolled back on purpose: %t)",
				r.Partition, r.Offset, id, h.writers.wasRolledBack(id)))
		}
		l.Observe(id)
	}
	s := l.Summary()
	partsOf := map[string]map[int32]bool{} // key -> partitions holding it
	for _, r := range recs {
		k := string(r.Key)
		if partsOf[k] == nil {
			partsOf[k] = map[int32]bool{}
		}
		partsOf[k][r.Partition] = true
	}
	var split []string
	for k, ps := range partsOf {
		if len(ps) > 1 {
			split = append(split, fmt.Sprintf("%s in %v", k, ps))
		}
	}
	orderSamples := orderDiagnostics(recs, ledger, 3)
	rolledBackDelivered := s.RolledBackPublished + s.Unknown

	poisonDead, otherDead, deadTwice := 0, 0, 0
	for id, n := range dead {
		if poison[id] {
			poisonDead++
		} else {
			otherDead++
		}
		if n > 1 {
			deadTwice++
		}
	}

	ds := make([]delivery, 0, len(recs))
	for _, r := range recs {
		ds = append(ds, delivery{string(localkafka.Header(r, outbox.HeaderID)), r.Timestamp})
	}
	tl := analyze(h.writers.commitTimes(), ds, h.faultWindows(), h.limits)
	var worst time.Duration
	for _, fr := range tl.faults {
		worst = max(worst, fr.recovery)
	}

	line := fmt.Sprintf("chaos[%s]: committed=%d delivered=%d lost=%d rolled_back_delivered=%d order_violations=%d duplicates=%d dead_lettered=%d "+
		"longest_gap=%.2fs quiet_gap=%.2fs worst_recovery=%.2fs drained_in=%.1fs faults=%d",
		h.name, s.Committed, s.Published, s.Lost, rolledBackDelivered, s.OrderViolations, s.Duplicates, poisonDead,
		tl.longestGap.Seconds(), tl.quietGap.Seconds(), worst.Seconds(), recovered.Seconds(), h.faults.Load())
	fmt.Fprintln(os.Stdout, line)
	fmt.Fprintf(os.Stdout, "chaos[%s] by fault: %s\n", h.name, tl.byKind())
	h.t.Logf("%s timeline: %s", h.name, tl.summary())

	h.mu.Lock()
	schedule := strings.Join(h.schedule, "\n  ")
	h.mu.Unlock()
	h.t.Logf("%s details: poison committed=%d dead-lettered=%d delivered=%d; other dead letters=%d, dead-lettered twice=%d; pending=%d; "+
		"records read=%d; bad records=%d; writers: %s; broker: %d restarts, %d produce requests refused, %d acks lost; "+
		"database connections killed=%d; relay processes started=%d\nrelay warnings and errors: %s\nfault schedule:\n  %s",
		h.name, len(poison), poisonDead, poisonDelivered, otherDead, deadTwice, pending, len(recs), badRecords,
		h.writers.summary(), h.broker.restarts.Load(), h.broker.rejected.Load(), h.broker.lostAcks.Load(),
		h.killedConn.Load(), len(h.relays.all), h.relays.logSummary(), schedule)

	fail := func(format string, args ...any) { t.Errorf("%s: "+format, append([]any{h.name}, args...)...) }
	if s.Committed == 0 || len(recs) == 0 {
		fail("nothing committed or nothing read back: the run proves nothing")
	}
	// A fault or a readback that did nothing must not pass for a proof.
	if int64(len(recs)) != total {
		fail("read %d records back but the partitions end at %d in all: the readback skipped records", len(recs), total)
	}
	if len(poison) == 0 {
		fail("no poison message committed: the dead-letter check proves nothing")
	}
	if h.broker.rejected.Load() == 0 {
		fail("no produce request was refused: the produce-error fault did nothing")
	}
	if h.name != "sqlite" && h.killedConn.Load() == 0 {
		fail("no database connection was killed: the connection-kill fault did nothing")
	}
	if s.Lost != 0 {
		fail("%d committed messages never delivered", s.Lost)
	}
	if rolledBackDelivered != 0 {
		fail("%d messages delivered whose transaction did not commit, e.g. %v", rolledBackDelivered, strays)
	}
	if len(split) != 0 {
		fail("%d keys in more than one partition (the order check assumes one), e.g. %v", len(split), split[:min(len(split), 5)])
	}
	if s.OrderViolations != 0 {
		fail("%d first deliveries out of their key's order; e.g.\n%s", s.OrderViolations, strings.Join(orderSamples, "\n"))
	}
	if poisonDead != len(poison) {
		fail("%d of %d committed poison messages in outbox_dead_letters", poisonDead, len(poison))
	}
	if poisonDelivered != 0 {
		fail("%d poison records reached the topic past message.max.bytes", poisonDelivered)
	}
	if otherDead != 0 {
		fail("%d messages other than poison dead-lettered, e.g. %v", otherDead, deadErrs[:min(len(deadErrs), 5)])
	}
	if len(poisonWhy) != 0 {
		fail("%d poison messages dead-lettered for another reason than their size, e.g. %v", len(poisonWhy), poisonWhy[:min(len(poisonWhy), 5)])
	}
	if deadTwice != 0 {
		fail("%d messages dead-lettered more than once", deadTwice)
	}
	if badRecords != 0 {
		fail("%d records whose key or value do not match the ledger, e.g. %v", badRecords, badSamples)
	}
	if pending != 0 || !drained {
		fail("%d messages still in the outbox", pending)
	}
	alone := map[string]bool{}
	for _, fr := range tl.faults {
		alone[fr.f.kind] = alone[fr.f.kind] || fr.alone
	}
	for _, k := range []string{kindKill, kindStop, kindJoin, kindBroker, kindProduce, kindDBKill} {
		if !alone[k] && (k != kindDBKill || h.name != "sqlite") {
			fail("no %s fault alone: its own recovery bound was not checked", k)
		}
	}
	if tl.quietMsgs == 0 {
		fail("no message committed and delivered away from faults: the gap check proves nothing")
	}
	for _, v := range tl.violations {
		fail("%s", v)
	}
}

// scan runs query on the admin connection and calls fn for every row.
func (h *harness) scan(ctx context.Context, query string, fn func(scan func(...any) error) error) error {
	rows, err := h.admin.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// orderDiagnostics describes up to n keys whose first deliveries are out of
// order: every record of the key, in offset order, with its producer and
// timestamp, so that a failure says who wrote what when.
func orderDiagnostics(recs []*kgo.Record, ledger map[string]ledgerEntry, n int) []string {
	type delivery struct {
		r     *kgo.Record
		seq   int
		first bool
	}
	byKey := map[string][]delivery{}
	seen := map[string]bool{}
	last := map[string]int{}
	var bad []string
	for _, r := range recs {
		id := string(localkafka.Header(r, outbox.HeaderID))
		e, ok := ledger[id]
		if !ok {
			continue
		}
		d := delivery{r: r, seq: e.seq, first: !seen[id]}
		seen[id] = true
		byKey[e.key] = append(byKey[e.key], d)
		if !d.first {
			continue
		}
		if e.seq <= last[e.key] {
			if !slices.Contains(bad, e.key) {
				bad = append(bad, e.key)
			}
		} else {
			last[e.key] = e.seq
		}
	}
	var out []string
	for _, k := range bad[:min(len(bad), n)] {
		// The deliveries around the key's first violation.
		ds, at, top := byKey[k], 0, 0
		for i, d := range ds {
			if d.first && d.seq <= top {
				at = i
				break
			}
			if d.first {
				top = d.seq
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "  key %s (%d keys out of order in all), deliveries %d-%d of %d:", k, len(bad), max(at-8, 0)+1, min(at+5, len(ds)), len(ds))
		for _, d := range ds[max(at-8, 0):min(at+5, len(ds))] {
			tag := "dup"
			if d.first {
				tag = "first"
			}
			fmt.Fprintf(&b, "\n    %d/%-6d seq %-4d %-5s producer %d/%d at %s", d.r.Partition, d.r.Offset, d.seq, tag,
				d.r.ProducerID, d.r.ProducerEpoch, d.r.Timestamp.Format("15:04:05.000"))
		}
		out = append(out, b.String())
	}
	return out
}
