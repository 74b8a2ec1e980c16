package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// batchOutcome is what a batch did.
type batchOutcome struct {
	acks        []int64
	retries     []dialect.Retry
	failures    []dialect.Failure
	published   int
	skipped     int   // records of paused topics, left untouched
	unavailable error // first error that showed the broker unavailable
}

// keyID is a key in its shard: the unit of order.
type keyID struct {
	shard int
	key   string
}

// rounds splits a batch into publish rounds: round i holds the i-th record
// of every key (keyless records all go in round 0), so the records of a
// round never share a key; or, for an OrderedPublisher, one round holds
// them all. group[i] numbers the key of record i (a keyless record is a
// group of its own); groups is how many there are.
type rounds struct {
	byRound [][]int // record indexes, in id order within a round
	group   []int
	groups  int
}

func planRounds(recs []dialect.Row, ordered bool) rounds {
	p := rounds{group: make([]int, len(recs))}
	seen := make(map[keyID]int, len(recs))
	counts := make([]int, 0, len(recs))
	for i := range recs {
		rank := 0
		if recs[i].Key == nil {
			p.group[i] = len(counts)
			counts = append(counts, 1)
		} else {
			k := keyID{recs[i].Shard, string(recs[i].Key)}
			g, ok := seen[k]
			if !ok {
				g = len(counts)
				seen[k] = g
				counts = append(counts, 0)
			}
			p.group[i] = g
			rank = counts[g]
			counts[g]++
		}
		if ordered {
			rank = 0
		}
		if rank == len(p.byRound) {
			p.byRound = append(p.byRound, nil)
		}
		p.byRound[rank] = append(p.byRound[rank], i)
	}
	p.groups = len(counts)
	return p
}

// batchRun is the state of publishing one batch.
type batchRun struct {
	r       *Relay
	recs    []dialect.Row
	msgs    []Record // recs as the publisher gets them
	plan    rounds
	blocked []bool // by group: a record of the key did not get through; its later ones wait
	now     time.Time
	out     batchOutcome
	ok      map[string]bool       // topics that took a record
	unavail map[string]error      // topics that were unavailable
	retried map[string]*retryNote // topics with messages to retry, for the log
}

// publishBatch publishes recs in rounds (planRounds), leaving a key out of
// the later rounds once one of its records failed. A later message of a key
// is therefore never published after an earlier one failed, whatever the
// publisher does inside a call. An OrderedPublisher gets the whole batch in
// one call and keeps that rule itself (it answers ErrNotSent for the
// records it held back); the relay checks that it did.
//
// Records of a topic that was unavailable while others were not are
// skipped (untouched, their keys wait) until the topic's pause ends, so one
// broken topic or partition does not slow down the others.
func (r *Relay) publishBatch(ctx context.Context, recs []dialect.Row) batchOutcome {
	b := &batchRun{r: r, recs: recs, plan: planRounds(recs, r.ordered), now: time.Now(),
		ok: map[string]bool{}, unavail: map[string]error{}}
	b.blocked = make([]bool, b.plan.groups)
	b.decode()
	for _, idx := range b.plan.byRound {
		if ctx.Err() != nil {
			break // shutting down: settle what is done
		}
		batch, which := b.pick(idx)
		if len(batch) == 0 {
			continue
		}
		errs, timedOut := r.publishRound(ctx, batch)
		for j, err := range errs {
			b.record(ctx, which[j], err, timedOut)
		}
	}
	b.out.published = len(b.out.acks)
	b.logRetries()
	r.pauseTopics(b.ok, b.unavail, b.out.published > 0)
	return b.out
}

// decode turns the rows into records. A row whose headers do not decode
// (impossible for rows Enqueue wrote) is dead-lettered at once.
func (b *batchRun) decode() {
	b.msgs = make([]Record, len(b.recs))
	for i := range b.recs {
		row := &b.recs[i]
		hs, err := DecodeHeaders(row.Headers)
		if err != nil {
			b.out.failures = append(b.out.failures, dialect.Failure{RowID: row.RowID, Err: err.Error()})
			b.blocked[b.plan.group[i]] = true
			b.recordEvent(i, OutcomeDeadLettered, FailureCorrupt, ReasonCorruptHeaders)
			b.r.log.Error("message dead-lettered: its stored headers do not decode", "message_id", row.MessageID,
				"topic", row.Topic, "shard", row.Shard, "err", err)
			continue
		}
		b.msgs[i] = Record{MessageID: row.MessageID, Topic: row.Topic, Key: row.Key, Value: row.Value,
			Headers: hs, Attempts: row.Attempts, CreatedAt: row.CreatedAt}
	}
}

// pick returns the records of a round that may go now, and their indexes:
// not of a blocked key, not of a paused topic, of a shard still leased.
func (b *batchRun) pick(idx []int) (batch []Record, which []int) {
	valid := b.r.validShards(time.Now())
	batch = make([]Record, 0, len(idx))
	which = make([]int, 0, len(idx))
	for _, i := range idx {
		g := b.plan.group[i]
		switch {
		case b.blocked[g]:
			continue
		case b.r.isPaused(b.recs[i].Topic, b.now):
			b.blocked[g] = true // untouched; its key waits
			b.out.skipped++
		case !valid[b.recs[i].Shard]:
			b.blocked[g] = true // lease lost: the new owner publishes it
		default:
			batch = append(batch, b.msgs[i])
			which = append(which, i)
		}
	}
	return batch, which
}

// publishRound publishes one round within PublishTimeout. A publisher that
// breaks the contract with a wrong number of results gets the whole round
// counted as unavailable: nothing is lost, nothing counted as an attempt.
func (r *Relay) publishRound(ctx context.Context, batch []Record) (errs []error, timedOut bool) {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	ends := r.startTraces(pctx, batch) // RelayConfig.Tracer, relay_tracer.go
	start := time.Now()
	errs = r.pub.Publish(pctx, batch)
	timedOut = pctx.Err() != nil && ctx.Err() == nil
	cancel()
	r.publishEvent(errs, time.Since(start), timedOut)
	if got := len(errs); got != len(batch) {
		r.log.Error("publisher returned a wrong number of results; treating the round as failed", "want", len(batch), "got", got)
		errs = make([]error, len(batch))
		for j := range errs {
			errs[j] = fmt.Errorf("%w: publisher returned %d results for %d records", ErrUnavailable, got, len(batch))
		}
	}
	endTraces(ends, errs)
	return errs, timedOut
}

// record files the outcome of record i: acked, left untouched (the broker
// was unavailable or we are shutting down), dead-lettered, or retried.
// Untouched and retried records block the rest of their key.
func (b *batchRun) record(ctx context.Context, i int, err error, timedOut bool) {
	r, rec := b.r, &b.recs[i]
	g := b.plan.group[i]
	switch {
	case err == nil:
		if b.blocked[g] {
			// Only an OrderedPublisher can get here: it published a record
			// after an earlier one of its key failed. It is on the broker
			// now; say so loudly.
			r.log.Error("publisher broke key order: a record was published after an earlier one of its key failed",
				"message_id", rec.MessageID, "topic", rec.Topic, "shard", rec.Shard)
		}
		b.out.acks = append(b.out.acks, rec.RowID)
		b.ok[rec.Topic] = true
		b.recordEvent(i, OutcomePublished, FailureNone, "")
	case errors.Is(err, ErrNotSent):
		// Held back by the publisher after an earlier record of its
		// partition failed: untouched, no attempt counted.
		b.blocked[g] = true
		b.recordEvent(i, OutcomeUntouched, FailureNotSent, "")
	case errors.Is(err, ErrUnavailable) || ((ctx.Err() != nil || timedOut) && isContextErr(err)):
		// Not the message's fault (the broker is unreachable or too slow,
		// or we are shutting down): no attempt counted.
		if errors.Is(err, ErrUnavailable) || timedOut {
			if b.out.unavailable == nil {
				b.out.unavailable = err
			}
			b.unavail[rec.Topic] = err
		}
		r.unavailable.Add(1)
		b.blocked[g] = true
		b.untouchedEvent(ctx, i, err, timedOut)
	case IsPermanent(err) || rec.Attempts+1 >= r.cfg.MaxAttempts:
		b.out.failures = append(b.out.failures, dialect.Failure{RowID: rec.RowID, Err: errText(err)})
		r.log.Warn("message dead-lettered", "message_id", rec.MessageID, "topic", rec.Topic, "shard", rec.Shard,
			"attempts", rec.Attempts+1, "permanent", IsPermanent(err), "err", err)
		// A dead letter does not hold back its key: the next messages flow.
		b.failedEvent(i, err, deadLetterReason(err))
	default:
		delay := r.backoff(rec.Attempts + 1)
		b.out.retries = append(b.out.retries, dialect.Retry{RowID: rec.RowID, Delay: delay, Err: errText(err)})
		b.noteRetry(rec, err)
		b.blocked[g] = true
		b.failedEvent(i, err, "")
	}
}

// isContextErr reports whether err is a context's: the record had no
// outcome when the call's deadline ended, or the relay stopped.
func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// retryNote sums up a batch's retries of one topic for the log.
type retryNote struct {
	n     int
	first string // message id
	err   error
}

// noteRetry counts rec's retry for the batch's log line of its topic.
func (b *batchRun) noteRetry(rec *dialect.Row, err error) {
	if b.retried == nil {
		b.retried = map[string]*retryNote{}
	}
	n := b.retried[rec.Topic]
	if n == nil {
		n = &retryNote{first: rec.MessageID, err: err}
		b.retried[rec.Topic] = n
	}
	n.n++
}

// logRetries writes one line per topic whose messages will be retried.
func (b *batchRun) logRetries() {
	for topic, n := range b.retried {
		b.r.log.Warn("publishing failed; retrying later with backoff", "topic", topic, "messages", n.n,
			"first_message_id", n.first, "err", n.err)
	}
}

// heldKeys returns the keys of recs that have a record neither published
// nor dead-lettered: their later records must wait for a fresh read.
func heldKeys(recs []dialect.Row, out batchOutcome) map[keyID]bool {
	gone := make(map[int64]bool, len(out.acks)+len(out.failures))
	for _, id := range out.acks {
		gone[id] = true
	}
	for _, f := range out.failures {
		gone[f.RowID] = true
	}
	var held map[keyID]bool
	for i := range recs {
		if recs[i].Key == nil || gone[recs[i].RowID] {
			continue
		}
		if held == nil {
			held = map[keyID]bool{}
		}
		held[keyID{recs[i].Shard, string(recs[i].Key)}] = true
	}
	return held
}

// topicPause is a topic that was unavailable while others were not.
type topicPause struct {
	until   time.Time
	backoff time.Duration
}

// isPaused reports whether topic is paused at now. Worker only.
func (r *Relay) isPaused(topic string, now time.Time) bool {
	p, ok := r.paused[topic]
	return ok && now.Before(p.until)
}

// pauseTopics resumes the topics that took a record and, when the batch
// published anything (the broker is up), pauses the topics that were
// unavailable, doubling their pause from OutageBackoff up to
// OutageBackoffMax. Worker only.
func (r *Relay) pauseTopics(ok map[string]bool, unavail map[string]error, anyPublished bool) {
	for t := range ok {
		delete(r.paused, t)
	}
	if !anyPublished {
		return // nothing got through: a relay-wide outage, not a topic's
	}
	for t, err := range unavail {
		if ok[t] {
			continue
		}
		p := r.paused[t]
		p.backoff = min(max(p.backoff*2, r.cfg.OutageBackoff), r.cfg.OutageBackoffMax)
		p.until = time.Now().Add(p.backoff)
		r.paused[t] = p
		r.log.Warn("topic unavailable while others are not: pausing it; its messages are untouched", "topic", t, "pause", p.backoff, "err", err)
		r.backoffEvent(BackoffTopicPaused, t, p.backoff)
	}
}

// nextResume is when the first paused topic resumes. Worker only.
func (r *Relay) nextResume() time.Time {
	var first time.Time
	for _, p := range r.paused {
		if first.IsZero() || p.until.Before(first) {
			first = p.until
		}
	}
	return first
}
