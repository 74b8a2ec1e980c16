package outbox

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// RelayObserver sees what a relay does: every batch read and settled,
// every publish call and the outcome of each record in it, lease changes,
// backoffs and probes, and every turn of the work loop. Package
// prommetrics implements it with Prometheus; cmd/relay builds its health
// checks on it. The root package depends on nothing for it.
//
// The relay calls the methods synchronously from its goroutines (the
// worker, the lease keeper, and the goroutine that records a batch's
// outcome under a backlog), so they must be safe for concurrent use and
// return quickly: the worker waits for them. Embed NopObserver to implement
// only some of them (and to keep compiling when methods are added).
//
// With no observer set (RelayConfig.Observer nil) the relay does no work
// for it: no clock query, no allocation, one nil check per event.
type RelayObserver interface {
	// OnCycle is called at the start of every turn of the work loop.
	OnCycle(CycleEvent)
	// OnBatchRead is called after every read of a batch.
	OnBatchRead(BatchReadEvent)
	// OnPublishCall is called after every call of Publisher.Publish.
	OnPublishCall(PublishCallEvent)
	// OnRecord is called once per record of a batch with its outcome.
	OnRecord(RecordEvent)
	// OnSettle is called after the outcome of a batch was recorded.
	OnSettle(SettleEvent)
	// OnLeases is called when the relay acquired, lost or handed back
	// shard leases.
	OnLeases(LeaseEvent)
	// OnLeaseRound is called after every round of the lease keeper
	// (heartbeat, renew, hand back, acquire), done or failed. A relay whose
	// keeper stops calling it is stuck: its leases expire while its work
	// loop may still turn.
	OnLeaseRound(LeaseRoundEvent)
	// OnBackoff is called before the relay waits on purpose: the broker is
	// unavailable, a topic is paused, a read or an ack failed.
	OnBackoff(BackoffEvent)
	// OnProbe is called after each probe of the broker during an outage.
	OnProbe(ProbeEvent)
}

// NopObserver implements RelayObserver and ignores every event. Embed it in
// an observer that needs only some events.
type NopObserver struct{}

func (NopObserver) OnCycle(CycleEvent)             {} // OnCycle ignores the event.
func (NopObserver) OnBatchRead(BatchReadEvent)     {} // OnBatchRead ignores the event.
func (NopObserver) OnPublishCall(PublishCallEvent) {} // OnPublishCall ignores the event.
func (NopObserver) OnRecord(RecordEvent)           {} // OnRecord ignores the event.
func (NopObserver) OnSettle(SettleEvent)           {} // OnSettle ignores the event.
func (NopObserver) OnLeases(LeaseEvent)            {} // OnLeases ignores the event.
func (NopObserver) OnLeaseRound(LeaseRoundEvent)   {} // OnLeaseRound ignores the event.
func (NopObserver) OnBackoff(BackoffEvent)         {} // OnBackoff ignores the event.
func (NopObserver) OnProbe(ProbeEvent)             {} // OnProbe ignores the event.

// CycleEvent is a turn of the work loop.
type CycleEvent struct {
	RelayID string
	// Shards is how many shards the relay holds now.
	Shards int
	// PausedTopics is how many topics are paused now (unavailable while
	// others are not).
	PausedTopics int
}

// BatchReadEvent is a read of the next batch.
type BatchReadEvent struct {
	Shards   int           // shards read
	Records  int           // records read
	Duration time.Duration // the read's duration
	Err      error         // nil, or why the read failed
	// From is the read floor: the read asked for ids above it only, because
	// the relay proved that its shards hold no live row at or below it
	// (see docs/design.md). 0: the read started at the lowest id.
	From int64
}

// PublishCallEvent is one call of Publisher.Publish.
type PublishCallEvent struct {
	Records  int
	Failed   int // records with an error
	Duration time.Duration
	TimedOut bool // the call ran into PublishTimeout
}

// RecordOutcome is what became of a record in a batch.
type RecordOutcome string

// The outcomes of a record.
const (
	// OutcomePublished: the broker acknowledged the record.
	OutcomePublished RecordOutcome = "published"
	// OutcomeRetried: it failed and waits for another attempt.
	OutcomeRetried RecordOutcome = "retried"
	// OutcomeDeadLettered: it goes to the dead-letter table.
	OutcomeDeadLettered RecordOutcome = "dead_lettered"
	// OutcomeUntouched: it failed without an attempt counted (broker
	// unavailable, not sent, shutting down) and stays as it was.
	OutcomeUntouched RecordOutcome = "untouched"
)

// FailureKind says how a record's publication failed.
type FailureKind string

// The kinds of failure.
const (
	FailureNone        FailureKind = ""            // published
	FailureRetriable   FailureKind = "retriable"   // a broker error worth another attempt
	FailurePermanent   FailureKind = "permanent"   // marked with Permanent by the publisher
	FailureUnavailable FailureKind = "unavailable" // the broker was unreachable or too slow (ErrUnavailable, PublishTimeout)
	FailureNotSent     FailureKind = "not_sent"    // held back after an earlier record of its key or partition failed (ErrNotSent)
	FailureAborted     FailureKind = "aborted"     // the relay is shutting down
	FailureCorrupt     FailureKind = "corrupt"     // its stored headers do not decode
)

// DeadLetterReason says why a record was dead-lettered.
type DeadLetterReason string

// The reasons for a dead letter.
const (
	ReasonPermanent      DeadLetterReason = "permanent"       // the publisher marked the error Permanent
	ReasonMaxAttempts    DeadLetterReason = "max_attempts"    // MaxAttempts failed attempts
	ReasonCorruptHeaders DeadLetterReason = "corrupt_headers" // the headers column does not decode
)

// RecordEvent is the outcome of one record. It carries no key or payload.
type RecordEvent struct {
	Topic     string
	Shard     int
	MessageID string
	Outcome   RecordOutcome
	Failure   FailureKind
	Reason    DeadLetterReason // set for OutcomeDeadLettered
	Attempts  int              // failed attempts before this one
	// Delay is how long the record waited between its commit and the
	// broker's acknowledgement, on the database clock (created_at against
	// the database's now, through the clock offset the relay measures
	// once per lease round). Set for OutcomePublished when DelayKnown.
	Delay      time.Duration
	DelayKnown bool
}

// SettleEvent is the recording of a batch's outcome in the database.
type SettleEvent struct {
	Acked, DeadLettered, Retried int // rows recorded
	Duration                     time.Duration
	Err                          error // the first step that failed, nil when all were recorded
}

// LeaseChange is a kind of lease change.
type LeaseChange string

// The lease changes.
const (
	LeaseAcquired   LeaseChange = "acquired"
	LeaseLost       LeaseChange = "lost"
	LeaseHandedBack LeaseChange = "handed_back"
)

// LeaseEvent is a change of the relay's shard leases.
type LeaseEvent struct {
	Change LeaseChange
	Count  int // shards concerned
	Held   int // shards held after the change
}

// BackoffReason says why the relay waits.
type BackoffReason string

// The reasons for a backoff.
const (
	BackoffUnavailable BackoffReason = "broker_unavailable" // the whole relay pauses
	BackoffTopicPaused BackoffReason = "topic_paused"       // one topic pauses (Topic set)
	BackoffPausedOnly  BackoffReason = "paused_topics"      // only records of paused topics were left
	BackoffReadFailed  BackoffReason = "read_failed"        // reading the outbox failed
	BackoffAckFailed   BackoffReason = "ack_failed"         // deleting published rows failed
)

// BackoffEvent is a deliberate wait of the relay.
type BackoffEvent struct {
	Reason   BackoffReason
	Topic    string // for BackoffTopicPaused
	Duration time.Duration
}

// LeaseRoundEvent is one round of the lease keeper.
type LeaseRoundEvent struct {
	Held     int           // shards held after the round
	Duration time.Duration // the round's duration
	Err      error         // nil, or why the round failed
}

// ProbeEvent is one probe of the broker while it is unavailable.
type ProbeEvent struct {
	Duration time.Duration
	Err      error // nil: the broker answers
}

// observing is the relay's side of its observer: the observer and the
// database clock offset. Its methods do nothing without an observer.
type observing struct {
	obs RelayObserver
	// clock is the database clock minus the local clock, measured by
	// keepClock; read by the worker.
	clock clockOffset
	// readClock reads the database clock (nil: dialect.Now) every
	// clockEvery (0: clockInterval). Tests change both.
	readClock  func(context.Context) (time.Time, error)
	clockEvery time.Duration
	// callEnd is when the last publish call returned, and callOffset
	// (when callOffsetOK) the clock offset then. Worker only.
	callEnd      time.Time
	callOffset   time.Duration
	callOffsetOK bool
}

// clockOffset is the database clock minus the local clock, shared by
// keepClock (which measures it) and the worker.
type clockOffset struct {
	mu     sync.Mutex
	offset time.Duration
	known  bool
}

func (c *clockOffset) get() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset, c.known
}

// set records a measured offset.
func (c *clockOffset) set(offset time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset, c.known = offset, true
}

// clockInterval is how often keepClock measures the database clock offset.
const clockInterval = 30 * time.Second

// clockTimeout bounds one reading of the database clock, and
// firstClockTimeout the first, which the relay waits for before it takes
// shards (so that the first records published carry their delay).
const (
	clockTimeout      = 10 * time.Second
	firstClockTimeout = 2 * time.Second
)

func (r *Relay) cycleEvent() {
	if r.obs.obs == nil {
		return
	}
	paused, now := 0, time.Now()
	for t := range r.paused {
		if r.isPaused(t, now) {
			paused++
		}
	}
	r.obs.obs.OnCycle(CycleEvent{RelayID: r.cfg.ID, Shards: r.leases.count(), PausedTopics: paused})
}

func (r *Relay) readEvent(shards, records int, from int64, d time.Duration, err error) {
	if r.obs.obs != nil {
		r.obs.obs.OnBatchRead(BatchReadEvent{Shards: shards, Records: records, From: from, Duration: d, Err: err})
	}
}

func (r *Relay) publishEvent(errs []error, d time.Duration, timedOut bool) {
	if r.obs.obs == nil {
		return
	}
	r.obs.callEnd = time.Now()
	r.obs.callOffset, r.obs.callOffsetOK = r.obs.clock.get()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	r.obs.obs.OnPublishCall(PublishCallEvent{Records: len(errs), Failed: failed, Duration: d, TimedOut: timedOut})
}

// recordEvent reports the outcome of record i of the batch.
func (b *batchRun) recordEvent(i int, out RecordOutcome, kind FailureKind, reason DeadLetterReason) {
	o := &b.r.obs
	if o.obs == nil {
		return
	}
	rec := &b.recs[i]
	ev := RecordEvent{Topic: rec.Topic, Shard: rec.Shard, MessageID: rec.MessageID, Outcome: out,
		Failure: kind, Reason: reason, Attempts: rec.Attempts}
	if out == OutcomePublished {
		if o.callOffsetOK && !rec.CreatedAt.IsZero() {
			ev.Delay, ev.DelayKnown = max(o.callEnd.Add(o.callOffset).Sub(rec.CreatedAt), 0), true
		}
	}
	o.obs.OnRecord(ev)
}

// failedEvent reports a record that failed with err and is retried or
// dead-lettered (reason set).
func (b *batchRun) failedEvent(i int, err error, reason DeadLetterReason) {
	if b.r.obs.obs == nil {
		return
	}
	kind, out := FailureRetriable, OutcomeRetried
	if IsPermanent(err) {
		kind = FailurePermanent
	}
	if reason != "" {
		out = OutcomeDeadLettered
	}
	b.recordEvent(i, out, kind, reason)
}

func (r *Relay) settleEvent(out batchOutcome, d time.Duration, err error) {
	if r.obs.obs != nil {
		r.obs.obs.OnSettle(SettleEvent{Acked: len(out.acks), DeadLettered: len(out.failures),
			Retried: len(out.retries), Duration: d, Err: err})
	}
}

func (r *Relay) leaseEvent(change LeaseChange, n int) {
	if r.obs.obs != nil && n > 0 {
		r.obs.obs.OnLeases(LeaseEvent{Change: change, Count: n, Held: r.leases.count()})
	}
}

func (r *Relay) leaseRoundEvent(d time.Duration, err error) {
	if r.obs.obs != nil {
		r.obs.obs.OnLeaseRound(LeaseRoundEvent{Held: r.leases.count(), Duration: d, Err: err})
	}
}

func (r *Relay) backoffEvent(reason BackoffReason, topic string, d time.Duration) {
	if r.obs.obs != nil {
		r.obs.obs.OnBackoff(BackoffEvent{Reason: reason, Topic: topic, Duration: d})
	}
}

func (r *Relay) probeEvent(d time.Duration, err error) {
	if r.obs.obs != nil {
		r.obs.obs.OnProbe(ProbeEvent{Duration: d, Err: err})
	}
}

// keepClock measures the database clock offset (one SELECT) every
// clockInterval until work ends, when an observer wants delays; Run makes
// the first measure before it starts. It runs on its own, off the lease
// rounds: a slow or failing clock read delays no lease renewal and fails
// none (published records carry no delay until a read succeeds).
func (r *Relay) keepClock(work context.Context) {
	if r.obs.obs == nil {
		return
	}
	every := r.obs.clockEvery
	if every <= 0 {
		every = clockInterval
	}
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-work.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(work, clockTimeout)
		r.measureClock(ctx)
		cancel()
		t.Reset(every)
	}
}

// measureClock measures the database clock offset once, when an observer
// wants delays.
func (r *Relay) measureClock(ctx context.Context) {
	if r.obs.obs == nil {
		return
	}
	read := r.obs.readClock
	if read == nil {
		read = func(ctx context.Context) (time.Time, error) { return dialect.Now(ctx, r.cfg.Dialect, r.db) }
	}
	before := time.Now()
	dbNow, err := read(ctx)
	after := time.Now()
	if err != nil {
		r.log.Debug("reading the database clock failed; commit-to-publish delays wait for the next try", "err", err)
		return
	}
	// The database read its clock somewhere during the round trip: assume
	// the middle.
	mid := before.Add(after.Sub(before) / 2)
	r.obs.clock.set(dbNow.Sub(mid))
}

// untouchedEvent reports a record left untouched: the broker unavailable
// or too slow, or the relay shutting down.
func (b *batchRun) untouchedEvent(ctx context.Context, i int, err error, timedOut bool) {
	if b.r.obs.obs == nil {
		return
	}
	kind := FailureUnavailable
	if !errors.Is(err, ErrUnavailable) && !timedOut && ctx.Err() != nil {
		kind = FailureAborted
	}
	b.recordEvent(i, OutcomeUntouched, kind, "")
}

// deadLetterReason is why a failed record is dead-lettered: the error is
// Permanent, or the attempts are used up.
func deadLetterReason(err error) DeadLetterReason {
	if IsPermanent(err) {
		return ReasonPermanent
	}
	return ReasonMaxAttempts
}
