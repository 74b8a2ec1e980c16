package outbox

import (
	"context"
	"sort"
	"time"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/ctxtime"
)

// work is the batch loop: read the held shards in id order, publish, settle.
// Reads stop when ctx ends; the batch in flight runs on work.
//
// Under a backlog (a full batch) the loop is a pipeline: while a batch is
// published, the next one is read on another connection, and the outcome of
// the batch before is recorded on a third. The read leaves out the rows of
// both batches not settled yet. Before the batch read ahead is published,
// the records of every key that did not get all its records of those two
// batches through (a failure, a retry, a paused topic, a lost lease) are
// dropped from it, untouched; by the time the read after it starts, the
// outcome of the older batch is recorded, so the database holds back what
// must wait. A key's later record therefore never overtakes an earlier one.
func (r *Relay) work(ctx, work context.Context) {
	idle := r.cfg.MinPollInterval
	outage := time.Duration(0)
	reread := false // the last empty read was a read again after arming
	var p pipeline
	defer p.drain(r)
	for ctx.Err() == nil {
		r.cycleEvent()
		// Rows published but not deleted come first: reading again would
		// publish them again.
		if len(r.unacked) > 0 {
			p.drain(r)
			r.leases.use(nil) // deleting by id needs no lease
			r.retryAck(ctx, work)
			continue
		}
		recs, shards, backlog, ok := r.nextBatch(ctx, work, &p)
		if !ok {
			continue
		}
		if len(recs) == 0 {
			r.leases.use(nil)
			// Read once more when the arming found rows inserted since the
			// last one; not twice in a row, or a relay whose shards stay
			// empty while others' fill would never wait.
			if r.armWake(work, idle) && !reread {
				reread = true
				continue
			}
			reread = false
			r.idleWait(ctx, r.idleFor(idle))
			idle = min(idle*2, r.cfg.PollInterval)
			continue
		}
		idle, reread = r.cfg.MinPollInterval, false
		out := r.runBatch(ctx, work, &p, recs, shards, backlog)
		outage = r.backOff(ctx, out, outage)
	}
}

// pipeline holds the worker's batches in flight besides the one it
// publishes: the batch read ahead (next) and the batch whose outcome is
// being recorded (prev).
type pipeline struct {
	next *aheadRead
	prev *settling
}

// finishPrev waits until the outcome of prev is recorded, keeping what
// could not be deleted for retryAck.
func (p *pipeline) finishPrev(r *Relay) {
	if p.prev != nil {
		r.unacked = append(r.unacked, p.prev.wait()...)
		p.prev = nil
	}
}

// drain forgets the batch read ahead and finishes prev.
func (p *pipeline) drain(r *Relay) {
	p.next.discard()
	p.next = nil
	p.finishPrev(r)
}

// nextBatch returns the batch read ahead, or reads one. A fresh read first
// waits for the outcome of every batch before, so the database holds back
// the keys that must wait. backlog reports that the batch read ahead was
// full. ok is false when the loop must start over: no shard to read (after
// an idle wait), a failed read (after a pause), or acks to retry.
func (r *Relay) nextBatch(ctx, work context.Context, p *pipeline) (recs []dialect.Row, shards []int, backlog, ok bool) {
	if p.next != nil {
		recs, shards, backlog = p.next.wait(r)
		if err := p.next.readErr(); err != nil && ctx.Err() == nil {
			r.log.Warn("reading the next batch ahead failed; reading again", "err", err)
		}
		p.next = nil
		if len(recs) > 0 {
			return recs, shards, backlog, true
		}
	}
	p.finishPrev(r)
	if len(r.unacked) > 0 {
		return nil, nil, false, false
	}
	valid := r.validShards(time.Now())
	if len(valid) == 0 {
		r.idleWait(ctx, r.cfg.PollInterval)
		return nil, nil, false, false
	}
	shards = sortedShards(valid)
	// Mark the shards in use before reading, so that the keeper does not
	// hand them back under a slow read.
	r.leases.use(shards)
	recs, err := r.readBatch(work, shards, nil)
	if err != nil {
		r.leases.use(nil)
		if ctx.Err() == nil {
			r.log.Error("reading the outbox failed", "err", err)
			r.backoffEvent(BackoffReadFailed, "", time.Second)
			ctxtime.Sleep(ctx, time.Second)
		}
		return nil, nil, false, false
	}
	return recs, shards, false, true
}

// runBatch publishes recs, starting the read of the next batch first when
// recs looks like a backlog. With a batch read ahead and something
// published, the outcome is recorded on another goroutine while the next
// batch goes out (the keys that did not get through are dropped from it);
// otherwise it is recorded now.
func (r *Relay) runBatch(ctx, work context.Context, p *pipeline, recs []dialect.Row, shards []int, backlog bool) batchOutcome {
	r.batches.Add(1)
	r.recordBytes = max(1, batchBytes(recs)/len(recs))
	olderAtRead := p.prev
	if (backlog || r.full(recs)) && ctx.Err() == nil {
		p.next = r.readAhead(work, shards, recs, p.prev)
	}
	out := r.publishBatch(work, recs)
	held := heldKeys(recs, out)
	p.finishPrev(r) // one outcome recorded at a time, in batch order
	if p.next != nil && out.published > 0 && len(r.unacked) == 0 {
		p.next.drop = make(map[keyID]bool, len(held))
		for k := range held {
			p.next.drop[k] = true
		}
		if olderAtRead != nil {
			for k := range olderAtRead.held {
				p.next.drop[k] = true
			}
		}
		r.pipelined.Add(1)
		p.prev = r.settleAsync(work, recs, held, out)
	} else {
		p.next.discard()
		p.next = nil
		r.unacked = append(r.unacked, r.settle(work, out)...)
		r.leases.use(nil)
	}
	r.leases.requestRound()
	return out
}

// backOff pauses after a batch that published nothing: the whole relay
// while the broker is unavailable (rows untouched, leases renewed by the
// keeper, the pause doubling from OutageBackoff), or until the first paused
// topic resumes. It returns the outage pause, 0 once the broker is back.
func (r *Relay) backOff(ctx context.Context, out batchOutcome, outage time.Duration) time.Duration {
	switch {
	case out.published == 0 && out.unavailable != nil:
		now := time.Now()
		if outage == 0 {
			outage = r.cfg.OutageBackoff
			r.outageLog = outageLog{since: now, said: now, repeat: outageRepeat}
			r.log.Warn("broker unavailable: backing off; messages untouched", "backoff", outage, "err", out.unavailable)
		} else {
			outage = min(outage*2, r.cfg.OutageBackoffMax)
			if now.Sub(r.outageLog.said) >= r.outageLog.repeat {
				r.outageLog.said, r.outageLog.repeat = now, r.outageLog.repeat*2
				r.log.Warn("broker still unavailable: backing off; messages untouched", "down_for", now.Sub(r.outageLog.since).Round(time.Second), "backoff", outage, "err", out.unavailable)
			}
		}
		r.backoffEvent(BackoffUnavailable, "", outage)
		if r.probedBack {
			// The last pause ended because the broker answered a probe,
			// and publishing still failed: the probe's answer is not
			// enough, sleep this pause out.
			r.probedBack = false
			ctxtime.Sleep(ctx, outage)
		} else if r.probedBack = r.outageWait(ctx, outage); r.probedBack {
			r.log.Debug("broker answers a probe: resuming")
		}
	case out.published == 0 && out.skipped > 0:
		// Only records of paused topics: wait for the first to resume.
		wait := min(max(time.Until(r.nextResume()), r.cfg.MinPollInterval), r.cfg.OutageBackoffMax)
		r.backoffEvent(BackoffPausedOnly, "", wait)
		ctxtime.Sleep(ctx, wait)
	default:
		r.probedBack = false
		if outage != 0 {
			r.log.Info("broker is back", "down_for", time.Since(r.outageLog.since).Round(time.Millisecond))
			outage = 0
		}
	}
	return outage
}

// outageRepeat is how long after the first "broker unavailable" line the
// relay says again that the broker is still away; the interval doubles
// after each repeat.
const outageRepeat = 10 * time.Second

// outageLog is what the worker logs of a broker outage: one line when it
// starts, repeats at a doubling interval, one line when a batch gets
// through again, with how long the broker was away.
type outageLog struct {
	since  time.Time     // the first batch that found the broker unavailable
	said   time.Time     // the last line logged
	repeat time.Duration // the least time before the next repeat
}

// outageWait waits d, or until a publisher that is a Prober says the
// broker answers again (probed every ProbeInterval; it reports true then),
// or ctx ends.
func (r *Relay) outageWait(ctx context.Context, d time.Duration) (back bool) {
	prober, ok := r.pub.(Prober)
	if !ok {
		ctxtime.Sleep(ctx, d)
		return false
	}
	end := time.Now().Add(d)
	for {
		// Wait first: a broker that failed a moment ago is asked again
		// after ProbeInterval at the earliest.
		step := min(r.cfg.ProbeInterval, time.Until(end))
		if step <= 0 || !ctxtime.Sleep(ctx, step) {
			return false
		}
		if time.Until(end) <= 0 {
			return false // the pause is over: the next batch finds out
		}
		pctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeInterval)
		start := time.Now()
		err := prober.Probe(pctx)
		cancel()
		r.probeEvent(time.Since(start), err)
		if err == nil && ctx.Err() == nil {
			return true
		}
	}
}

// validShards returns the shards the worker may publish: more than one
// RenewInterval left on their lease (the margin covers a renewal that is
// late or failing), and not surplus.
func (r *Relay) validShards(now time.Time) map[int]bool {
	return r.leases.valid(now, r.cfg.RenewInterval)
}

// idleWait waits d, or less when the lease set changes, a wake-up comes
// (Wake) or ctx ends.
func (r *Relay) idleWait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-r.leases.changed:
	case <-r.cfg.Wake:
	}
}

// full reports whether recs is a full batch, by count or by size: a sign of
// a backlog.
func (r *Relay) full(recs []dialect.Row) bool {
	return len(recs) >= r.limit() || batchBytes(recs) >= r.cfg.BatchBytes
}

// limit is the most rows to ask for: BatchSize, or fewer when the records
// of the last batch were so large that BatchBytes holds fewer.
func (r *Relay) limit() int {
	if r.recordBytes > 0 {
		return min(r.cfg.BatchSize, r.cfg.BatchBytes/r.recordBytes+1)
	}
	return r.cfg.BatchSize
}

// batchBytes is the size of recs as BatchBytes counts it.
func batchBytes(recs []dialect.Row) int {
	size := 0
	for i := range recs {
		size += len(recs[i].Key) + len(recs[i].Value) + len(recs[i].Headers)
	}
	return size
}

func sortedShards(set map[int]bool) []int {
	out := make([]int, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Ints(out)
	return out
}

func rowIDs(recs []dialect.Row) []int64 {
	ids := make([]int64, len(recs))
	for i := range recs {
		ids[i] = recs[i].RowID
	}
	return ids
}

// readBatch reads one batch of shards, leaving out the ids of exclude. It
// must be called by the worker (it reads worker state).
func (r *Relay) readBatch(work context.Context, shards []int, exclude []int64) ([]dialect.Row, error) {
	return r.reader(shards, exclude)(work)
}

// reader returns the read of one batch, its limits fixed now, so that it
// can run on another goroutine.
func (r *Relay) reader(shards []int, exclude []int64) func(context.Context) ([]dialect.Row, error) {
	req := dialect.ReadRequest{Shards: shards, Limit: r.limit(), Exclude: exclude, MaxBytes: r.cfg.BatchBytes}
	return func(work context.Context) ([]dialect.Row, error) {
		rctx, cancel := context.WithTimeout(work, r.cfg.LeaseDuration)
		defer cancel()
		start := time.Now()
		at := r.floor.start(work, req.Shards)
		req.After = at.from
		recs, err := r.cfg.Dialect.ReadBatch(rctx, r.db, req)
		if err == nil {
			r.floor.raise(rctx, req.Shards, at, exclude, recs)
		}
		r.readEvent(len(req.Shards), len(recs), at.from, time.Since(start), err)
		return recs, err
	}
}
