package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/outboxrelay/outbox/dialect"
)

// Defaults of RelayConfig.
const (
	DefaultBatchSize        = 1000
	DefaultBatchBytes       = 16 << 20
	DefaultPollInterval     = 250 * time.Millisecond
	DefaultMinPollInterval  = 5 * time.Millisecond
	DefaultLeaseDuration    = 15 * time.Second
	DefaultMaxAttempts      = 10
	DefaultRetryBackoff     = time.Second
	DefaultRetryBackoffMax  = 5 * time.Minute
	DefaultOutageBackoff    = 2 * time.Second
	DefaultOutageBackoffMax = time.Minute
	DefaultPublishTimeout   = 30 * time.Second
	DefaultShutdownTimeout  = 10 * time.Second
)

// RelayConfig configures a Relay. A zero field means its default.
type RelayConfig struct {
	// Dialect is the SQL dialect of the database. Required.
	Dialect dialect.Dialect
	// NumShards must equal the Outbox's NumShards. Default 64.
	NumShards int
	// ID names this relay in leases and logs; unique among live relays.
	// Default: hostname-pid-random.
	ID string
	// BatchSize is the most messages read and published per batch.
	// Default 1000.
	BatchSize int
	// BatchBytes bounds the payload of a batch: a read stops after the
	// record that brings the sum of key, value and header sizes to
	// BatchBytes. With the batch read ahead under a backlog, the relay holds
	// at most two batches. Default 16 MiB.
	BatchBytes int
	// PollInterval is the longest wait between two reads of an idle outbox.
	// The relay polls every MinPollInterval after traffic and doubles the
	// wait while the outbox stays empty, up to PollInterval. Default 250ms.
	PollInterval time.Duration
	// MinPollInterval is the shortest wait after an empty read. Default 5ms.
	MinPollInterval time.Duration
	// Wake, when set, wakes an idle relay at once (for example on a
	// PostgreSQL notification). Default: none, polling only.
	Wake <-chan struct{}
	// LeaseDuration is how long a shard lease lasts without renewal: how
	// long a crashed relay's shards wait before others take them over.
	// Default 15s.
	LeaseDuration time.Duration
	// RenewInterval is how often leases are renewed and shares rebalanced.
	// It must be below LeaseDuration/2. Default LeaseDuration/3.
	RenewInterval time.Duration
	// MaxAttempts is how many failed attempts move a message to the
	// dead-letter table. Default 10.
	MaxAttempts int
	// RetryBackoff and RetryBackoffMax bound the wait before another attempt
	// of a failed message: RetryBackoff * 2^(attempts-1), capped, with
	// jitter. Defaults 1s and 5m.
	RetryBackoff, RetryBackoffMax time.Duration
	// OutageBackoff and OutageBackoffMax bound the relay's pause while the
	// broker is unavailable: doubling from OutageBackoff up to
	// OutageBackoffMax. Defaults 2s and 60s.
	OutageBackoff, OutageBackoffMax time.Duration
	// PublishTimeout bounds one Publish call. Default 30s.
	PublishTimeout time.Duration
	// ShutdownTimeout is how long Run waits for the in-flight batch after
	// its context ends, before abandoning it. Default 10s.
	ShutdownTimeout time.Duration
	// Logger receives the relay's logs. Payloads are never logged.
	// Default: slog.Default().
	Logger *slog.Logger
}

// Validate reports the first invalid field as a *ConfigError (errors.Is
// ErrInvalidConfig), as NewRelay would, after filling in the defaults. It
// touches neither the database nor the broker.
func (c RelayConfig) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults fills defaults and validates, naming the wrong field.
func (c RelayConfig) withDefaults() (RelayConfig, error) {
	bad := func(field, format string, args ...any) (RelayConfig, error) {
		return c, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if c.Dialect == nil {
		return bad("Dialect", "is required")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&c.NumShards, DefaultNumShards)
	defInt(&c.BatchSize, DefaultBatchSize)
	defInt(&c.BatchBytes, DefaultBatchBytes)
	defInt(&c.MaxAttempts, DefaultMaxAttempts)
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.MinPollInterval, min(DefaultMinPollInterval, c.PollInterval))
	def(&c.LeaseDuration, DefaultLeaseDuration)
	def(&c.RenewInterval, c.LeaseDuration/3)
	def(&c.RetryBackoff, DefaultRetryBackoff)
	def(&c.RetryBackoffMax, max(DefaultRetryBackoffMax, c.RetryBackoff))
	def(&c.OutageBackoff, DefaultOutageBackoff)
	def(&c.OutageBackoffMax, max(DefaultOutageBackoffMax, c.OutageBackoff))
	def(&c.PublishTimeout, DefaultPublishTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), NewMessageID()[24:])
	}
	switch {
	case c.NumShards < 1 || c.NumShards > MaxNumShards:
		return bad("NumShards", "must be between 1 and %d, got %d", MaxNumShards, c.NumShards)
	case len(c.ID) > 255 || !utf8.ValidString(c.ID):
		return bad("ID", "must be at most 255 bytes of UTF-8")
	case c.BatchSize < 1 || c.BatchSize > 100_000:
		return bad("BatchSize", "must be between 1 and 100000, got %d", c.BatchSize)
	case c.BatchBytes < 1:
		return bad("BatchBytes", "must be positive, got %d", c.BatchBytes)
	case c.MaxAttempts < 1:
		return bad("MaxAttempts", "must be at least 1, got %d", c.MaxAttempts)
	case c.MinPollInterval <= 0 || c.PollInterval < c.MinPollInterval:
		return bad("PollInterval", "(%s) cannot be shorter than MinPollInterval (%s), and both must be positive", c.PollInterval, c.MinPollInterval)
	case c.LeaseDuration < 100*time.Millisecond:
		return bad("LeaseDuration", "must be at least 100ms, got %s", c.LeaseDuration)
	case c.RenewInterval <= 0 || c.RenewInterval > c.LeaseDuration/2:
		return bad("RenewInterval", "(%s) must be positive and at most half of LeaseDuration (%s)", c.RenewInterval, c.LeaseDuration)
	case c.RetryBackoff < 0 || c.RetryBackoffMax < c.RetryBackoff:
		return bad("RetryBackoffMax", "(%s) cannot be shorter than RetryBackoff (%s)", c.RetryBackoffMax, c.RetryBackoff)
	case c.OutageBackoff < 0 || c.OutageBackoffMax < c.OutageBackoff:
		return bad("OutageBackoffMax", "(%s) cannot be shorter than OutageBackoff (%s)", c.OutageBackoffMax, c.OutageBackoff)
	case c.PublishTimeout < 0:
		return bad("PublishTimeout", "must be positive, got %s", c.PublishTimeout)
	case c.ShutdownTimeout < 0:
		return bad("ShutdownTimeout", "must be positive, got %s", c.ShutdownTimeout)
	}
	return c, nil
}

// RelayStats are the relay's counters since it was created.
type RelayStats struct {
	Published    int64 // records the broker acknowledged
	Retried      int64 // failed attempts scheduled for another try
	DeadLettered int64 // messages moved to the dead-letter table
	Unavailable  int64 // records that failed because the broker was unavailable
	Batches      int64 // batches read
	Pipelined    int64 // batches whose outcome was recorded while the next one was published (a backlog)
	Shards       int   // shards held now
}

// Relay publishes committed outbox messages. Several relays, in one process
// or many, share the work by leasing shards; each shard is published by one
// relay at a time, in id order, which keeps the order of every key.
//
// Give a relay its own small pool (db.SetMaxOpenConns(4) is plenty): under
// a backlog it uses up to three connections at once (the next batch's read,
// the previous batch's outcome, the leases), and it never holds a
// transaction open while it talks to the broker.
type Relay struct {
	db  *sql.DB
	pub Publisher
	cfg RelayConfig
	log *slog.Logger

	running atomic.Bool
	changed chan struct{} // the lease set changed
	kick    chan struct{} // run a lease round now (surplus shards to hand back)

	mu      sync.Mutex
	held    map[int]heldLease
	inUse   map[int]bool // shards of the batch in flight
	surplus map[int]bool // held shards above the fair share, to hand back after the batch

	// Worker-only state.
	paused  map[string]topicPause // topics unavailable while others are not
	unacked []int64               // published but not yet deleted
	// recordBytes is the mean size of a record of the last batch: reads ask
	// for no more rows than BatchBytes holds, so that the rows a read stops
	// short of (at BatchBytes) are not sent by the database for nothing.
	recordBytes int

	published, retried, deadLettered, unavailable, batches, pipelined atomic.Int64
}

type topicPause struct {
	until   time.Time
	backoff time.Duration
}

type heldLease struct {
	fence    int64
	deadline time.Time // local, conservative: request start + LeaseDuration
}

// NewRelay returns a relay that reads db and publishes with pub. It
// validates cfg and returns a *ConfigError naming the wrong field.
func NewRelay(db *sql.DB, pub Publisher, cfg RelayConfig) (*Relay, error) {
	if db == nil {
		return nil, &ConfigError{Field: "db", Reason: "is nil"}
	}
	if pub == nil {
		return nil, &ConfigError{Field: "Publisher", Reason: "is nil"}
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Relay{
		db: db, pub: pub, cfg: cfg,
		log:     cfg.Logger.With("relay", cfg.ID),
		changed: make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		held:    map[int]heldLease{},
		inUse:   map[int]bool{},
		surplus: map[int]bool{},
		paused:  map[string]topicPause{},
	}, nil
}

// ID returns the relay's id.
func (r *Relay) ID() string { return r.cfg.ID }

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	shards := len(r.held)
	r.mu.Unlock()
	return RelayStats{
		Published: r.published.Load(), Retried: r.retried.Load(),
		DeadLettered: r.deadLettered.Load(), Unavailable: r.unavailable.Load(),
		Batches: r.batches.Load(), Pipelined: r.pipelined.Load(), Shards: shards,
	}
}

// Run publishes until ctx ends, then stops claiming, finishes the batch in
// flight (or abandons it after ShutdownTimeout: its messages are published
// again later, never lost), releases its leases and returns nil. Database
// and broker failures are logged and retried, never returned.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRelayRunning
	}
	defer r.running.Store(false)
	r.log.Info("outbox relay starting", "dialect", r.cfg.Dialect.Name(), "shards", r.cfg.NumShards, "batch_size", r.cfg.BatchSize)
	if err := r.ensureShards(ctx); err != nil {
		return nil // ctx ended while the database was unreachable
	}

	// work outlives ctx by ShutdownTimeout so the batch in flight can finish.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(r.cfg.ShutdownTimeout, stopWork)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stop()

	keeperDone := make(chan struct{})
	go func() {
		defer close(keeperDone)
		r.keepLeases(ctx, work)
	}()
	r.work(ctx, work)
	stopWork()
	<-keeperDone

	// Hand everything back so other relays take over at once.
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	r.mu.Lock()
	leases := r.leasesLocked()
	r.held = map[int]heldLease{}
	r.mu.Unlock()
	if err := r.cfg.Dialect.Release(cleanup, r.db, r.cfg.ID, leases); err != nil {
		r.log.Warn("releasing leases at shutdown failed; they expire on their own", "err", err)
	}
	if err := r.cfg.Dialect.Deregister(cleanup, r.db, r.cfg.ID); err != nil {
		r.log.Warn("deregistering failed", "err", err)
	}
	r.log.Info("outbox relay stopped", "published", r.published.Load())
	return nil
}

// ensureShards creates the shard rows, retrying while the database is
// unreachable, with one log line per failure and a growing pause.
func (r *Relay) ensureShards(ctx context.Context) error {
	wait := 500 * time.Millisecond
	for {
		err := r.cfg.Dialect.EnsureShards(ctx, r.db, r.cfg.NumShards)
		if err == nil {
			r.checkShardCount(ctx)
			return nil
		}
		if dialect.IsMissingTable(err) {
			r.log.Error(`the outbox tables do not exist: run "relay migrate" (or migrations.Up); retrying`, "err", err, "retry_in", wait)
		} else {
			r.log.Error("cannot prepare the shard table; retrying", "err", err, "retry_in", wait)
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// checkShardCount logs an error when pending messages sit in shards this
// relay never reads: the application uses more shards than NumShards.
func (r *Relay) checkShardCount(ctx context.Context) {
	top, ok, err := dialect.MaxPendingShard(ctx, r.db)
	if err == nil && ok && top >= r.cfg.NumShards {
		r.log.Error("messages wait in shards this relay does not read: its shard count is below the application's; "+
			"set --shards (RelayConfig.NumShards) to the application's outbox.Config.NumShards",
			"relay_shards", r.cfg.NumShards, "highest_pending_shard", top)
	}
}

func (r *Relay) leasesLocked() []dialect.Lease {
	out := make([]dialect.Lease, 0, len(r.held))
	for s, h := range r.held {
		out = append(out, dialect.Lease{Shard: s, Fence: h.fence})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Shard < out[j].Shard })
	return out
}

// keepLeases heartbeats, renews, and moves the relay towards its fair share
// of shards: ceil(NumShards / live relays). It hands back shards above the
// share (not those of the batch in flight) so that a new relay gets work
// within about one RenewInterval, and polls every second while below it.
// After ctx ends it only renews, for the batch in flight, until work ends.
func (r *Relay) keepLeases(ctx, work context.Context) {
	d, db, id := r.cfg.Dialect, r.db, r.cfg.ID
	lastCheck := time.Now()
	for {
		wait := r.cfg.RenewInterval
		// A round that hangs (a half-open connection) must not outlive the
		// leases it is meant to keep.
		rctx, cancel := context.WithTimeout(work, r.cfg.LeaseDuration/2)
		err := r.leaseRound(rctx, ctx.Err() == nil, d, db, id, &wait)
		if err == nil && time.Since(lastCheck) > time.Minute {
			r.checkShardCount(rctx)
			lastCheck = time.Now()
		}
		cancel()
		if err != nil && work.Err() == nil {
			r.log.Warn("lease maintenance failed", "err", err)
			wait = min(wait, time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-work.Done():
			t.Stop()
			return
		case <-r.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

func (r *Relay) leaseRound(ctx context.Context, claim bool, d dialect.Dialect, db *sql.DB, id string, wait *time.Duration) error {
	live, err := d.Heartbeat(ctx, db, id, r.cfg.LeaseDuration)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	share := (r.cfg.NumShards + max(live, 1) - 1) / max(live, 1)

	r.mu.Lock()
	current := r.leasesLocked()
	r.mu.Unlock()
	start := time.Now()
	renewed, err := d.Renew(ctx, db, id, current, r.cfg.LeaseDuration)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	keep := make(map[int]bool, len(renewed))
	r.mu.Lock()
	for _, l := range renewed {
		keep[l.Shard] = true
		r.held[l.Shard] = heldLease{fence: l.Fence, deadline: start.Add(r.cfg.LeaseDuration)}
	}
	lost := 0
	for s := range r.held {
		if !keep[s] {
			delete(r.held, s)
			lost++
		}
	}
	// Hand back the highest shards above the share. Those in the batch in
	// flight become surplus: the worker leaves them out of its next read and
	// kicks us when the batch is done, so a new relay gets them even while
	// this one works through a backlog.
	var extra []dialect.Lease
	clear(r.surplus)
	if n := len(r.held) - share; n > 0 {
		all := r.leasesLocked()
		for i := len(all) - 1; i >= 0 && n > 0; i, n = i-1, n-1 {
			if r.inUse[all[i].Shard] {
				r.surplus[all[i].Shard] = true
				continue
			}
			extra = append(extra, all[i])
			delete(r.held, all[i].Shard)
		}
	}
	need := share - len(r.held)
	if !claim {
		need = 0
	}
	r.mu.Unlock()
	if lost > 0 {
		r.log.Warn("lost shard leases to another relay", "lost", lost)
	}
	if len(extra) > 0 {
		if err := d.Release(ctx, db, id, extra); err != nil {
			return fmt.Errorf("release: %w", err)
		}
		r.log.Debug("handed back shards above the fair share", "released", len(extra), "live_relays", live)
	}
	if need > 0 {
		start := time.Now()
		got, err := d.Acquire(ctx, db, id, need, r.cfg.LeaseDuration)
		if err != nil {
			return fmt.Errorf("acquire: %w", err)
		}
		r.mu.Lock()
		for _, l := range got {
			r.held[l.Shard] = heldLease{fence: l.Fence, deadline: start.Add(r.cfg.LeaseDuration)}
		}
		r.mu.Unlock()
		if len(got) > 0 {
			r.log.Debug("acquired shards", "acquired", len(got), "live_relays", live)
		}
		if len(got) < need {
			*wait = min(*wait, time.Second) // someone should hand shards back soon
		}
	}
	if lost > 0 || len(extra) > 0 || need > 0 {
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
	return nil
}

// validShards returns the shards whose lease has more than a margin left.
// The margin (one RenewInterval) covers a renewal that is late or failing.
func (r *Relay) validShards(now time.Time) map[int]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int]bool, len(r.held))
	for s, h := range r.held {
		if h.deadline.Sub(now) > r.cfg.RenewInterval && !r.surplus[s] {
			out[s] = true
		}
	}
	return out
}

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
	var next *aheadRead
	var prev *settling // outcome of the batch before, being recorded
	finishPrev := func() {
		if prev != nil {
			r.unacked = append(r.unacked, prev.wait()...)
			prev = nil
		}
	}
	defer func() {
		next.discard()
		finishPrev()
	}()
	for ctx.Err() == nil {
		// Rows published but not deleted come first: reading again would
		// publish them again.
		if len(r.unacked) > 0 {
			next.discard()
			next = nil
			finishPrev()
			r.setInUse(nil) // deleting by id needs no lease
			r.retryAck(ctx, work)
			continue
		}
		var recs []dialect.Row
		var shards []int
		backlog := false
		if next != nil {
			recs, shards, backlog = next.wait(r)
			if err := next.readErr(); err != nil && ctx.Err() == nil {
				r.log.Warn("reading the next batch ahead failed; reading again", "err", err)
			}
			next = nil
		}
		if len(recs) == 0 {
			// A fresh read must see the outcome of every batch before.
			finishPrev()
			if len(r.unacked) > 0 {
				continue
			}
			valid := r.validShards(time.Now())
			if len(valid) == 0 {
				r.idleWait(ctx, r.cfg.PollInterval)
				continue
			}
			shards = sortedShards(valid)
			// Mark the shards in use before reading, so that the keeper does
			// not hand them back under a slow read.
			r.setInUse(shards)
			var err error
			recs, err = r.readBatch(work, shards, nil)
			if err != nil {
				r.setInUse(nil)
				if ctx.Err() == nil {
					r.log.Error("reading the outbox failed", "err", err)
					sleep(ctx, time.Second)
				}
				continue
			}
		}
		if len(recs) == 0 {
			r.setInUse(nil)
			r.idleWait(ctx, idle)
			idle = min(idle*2, r.cfg.PollInterval)
			continue
		}
		idle = r.cfg.MinPollInterval
		r.batches.Add(1)
		r.recordBytes = max(1, batchBytes(recs)/len(recs))
		olderAtRead := prev
		if (backlog || r.full(recs)) && ctx.Err() == nil {
			next = r.readAhead(work, shards, recs, prev)
		}
		out := r.publishBatch(work, recs)
		held := heldKeys(recs, out)
		finishPrev() // one outcome recorded at a time, in batch order
		if next != nil && out.published > 0 && len(r.unacked) == 0 {
			next.drop = make(map[keyID]bool, len(held))
			for k := range held {
				next.drop[k] = true
			}
			if olderAtRead != nil {
				for k := range olderAtRead.held {
					next.drop[k] = true
				}
			}
			r.pipelined.Add(1)
			prev = r.settleAsync(work, recs, held, out)
		} else {
			next.discard()
			next = nil
			r.unacked = append(r.unacked, r.settle(work, out)...)
			r.setInUse(nil)
		}
		r.kickIfSurplus()
		switch {
		case out.published == 0 && out.unavailable != nil:
			// Nothing got through: the broker is down. Rows untouched,
			// leases kept (the keeper renews), relay-level backoff.
			if outage == 0 {
				outage = r.cfg.OutageBackoff
			} else {
				outage = min(outage*2, r.cfg.OutageBackoffMax)
			}
			r.log.Warn("broker unavailable: backing off; messages untouched", "backoff", outage, "err", out.unavailable)
			sleep(ctx, outage)
		case out.published == 0 && out.skipped > 0:
			// Only records of paused topics: wait for the first to resume.
			sleep(ctx, min(max(time.Until(r.nextResume()), r.cfg.MinPollInterval), r.cfg.OutageBackoffMax))
		default:
			if outage != 0 {
				r.log.Info("broker available again")
				outage = 0
			}
		}
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
	s := &settling{ids: recordIDs(recs), held: held, done: make(chan struct{})}
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

// readBatch reads one batch of shards, leaving out the ids of exclude. It
// must be called by the worker (it reads worker state), and may run the read
// itself on another goroutine.
func (r *Relay) readBatch(work context.Context, shards []int, exclude []int64) ([]dialect.Row, error) {
	return r.reader(shards, exclude)(work)
}

// reader returns the read of one batch, its limits fixed now.
func (r *Relay) reader(shards []int, exclude []int64) func(context.Context) ([]dialect.Row, error) {
	req := dialect.ReadRequest{Shards: shards, Limit: r.limit(), Exclude: exclude, MaxBytes: r.cfg.BatchBytes}
	return func(work context.Context) ([]dialect.Row, error) {
		rctx, cancel := context.WithTimeout(work, r.cfg.LeaseDuration)
		defer cancel()
		return r.cfg.Dialect.ReadBatch(rctx, r.db, req)
	}
}

func recordIDs(recs []dialect.Row) []int64 {
	ids := make([]int64, len(recs))
	for i := range recs {
		ids[i] = recs[i].RowID
	}
	return ids
}

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

// keyID is a key in its shard: the unit of order.
type keyID struct {
	shard int
	key   string
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
	exclude := recordIDs(cur)
	if older != nil {
		inUse = append(inUse, older.shards...)
		exclude = append(exclude, older.ids...)
	}
	r.setInUse(inUse)
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

// retryAck deletes published rows whose ack failed, with a growing pause,
// before anything is read again.
func (r *Relay) retryAck(ctx, work context.Context) {
	wait := 500 * time.Millisecond
	for len(r.unacked) > 0 && ctx.Err() == nil {
		actx, cancel := context.WithTimeout(work, 30*time.Second)
		_, err := r.cfg.Dialect.Ack(actx, r.db, r.unacked)
		cancel()
		if err == nil {
			r.published.Add(int64(len(r.unacked)))
			r.unacked = nil
			return
		}
		r.log.Error("deleting published messages failed; retrying before reading more", "messages", len(r.unacked), "err", err, "retry_in", wait)
		sleep(ctx, wait)
		wait = min(wait*2, 30*time.Second)
	}
}

func (r *Relay) nextResume() time.Time {
	var first time.Time
	for _, p := range r.paused {
		if first.IsZero() || p.until.Before(first) {
			first = p.until
		}
	}
	return first
}

func (r *Relay) kickIfSurplus() {
	r.mu.Lock()
	n := len(r.surplus)
	r.mu.Unlock()
	if n > 0 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

func (r *Relay) idleWait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-r.changed:
	case <-r.cfg.Wake:
	}
}

func (r *Relay) setInUse(shards []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.inUse)
	for _, s := range shards {
		r.inUse[s] = true
	}
}

// publishBatch publishes recs in rounds: round i holds the i-th message of
// every key, so the records of a call never share a key, and a key whose
// message failed is left out of the later rounds. A later message of a key
// is therefore never published after an earlier one failed, whatever the
// publisher does inside a call.
//
// Records of a topic that was unavailable while others were not are
// skipped (untouched, their keys wait) until the topic's pause ends, so one
// broken topic or partition does not slow down the others.
func (r *Relay) publishBatch(ctx context.Context, recs []dialect.Row) (out batchOutcome) {
	var (
		acks     []int64
		retries  []dialect.Retry
		failures []dialect.Failure
	)
	now := time.Now()
	unavailTopics := map[string]error{}
	okTopics := map[string]bool{}
	// Group by key and rank within the key.
	rank := make([]int, len(recs))
	group := make([]int, len(recs)) // index of the key group; keyless records get their own
	seen := make(map[keyID]int, len(recs))
	counts := make([]int, 0, len(recs))
	rounds := 0
	for i := range recs {
		if recs[i].Key == nil {
			group[i] = len(counts)
			counts = append(counts, 1)
		} else {
			k := keyID{recs[i].Shard, string(recs[i].Key)}
			g, ok := seen[k]
			if !ok {
				g = len(counts)
				seen[k] = g
				counts = append(counts, 0)
			}
			group[i] = g
			rank[i] = counts[g]
			counts[g]++
		}
		rounds = max(rounds, rank[i]+1)
	}
	blocked := make([]bool, len(counts))
	msgs := make([]Record, len(recs))
	for i := range recs {
		hs, err := DecodeHeaders(recs[i].Headers)
		if err != nil {
			// Cannot happen for rows written by Enqueue; never block on it.
			failures = append(failures, dialect.Failure{RowID: recs[i].RowID, Err: err.Error()})
			blocked[group[i]] = true
			continue
		}
		msgs[i] = Record{MessageID: recs[i].MessageID, Topic: recs[i].Topic, Key: recs[i].Key, Value: recs[i].Value,
			Headers: hs, Attempts: recs[i].Attempts, CreatedAt: recs[i].CreatedAt}
	}

	byRound := make([][]int, rounds)
	for i := range recs {
		byRound[rank[i]] = append(byRound[rank[i]], i)
	}
	for _, idx := range byRound {
		if ctx.Err() != nil {
			break // shutting down: settle what is done
		}
		valid := r.validShards(time.Now())
		batch := make([]Record, 0, len(idx))
		which := make([]int, 0, len(idx))
		for _, i := range idx {
			if blocked[group[i]] {
				continue
			}
			if p, ok := r.paused[recs[i].Topic]; ok && now.Before(p.until) {
				blocked[group[i]] = true // untouched; its key waits
				out.skipped++
				continue
			}
			if !valid[recs[i].Shard] {
				blocked[group[i]] = true // lease lost: the new owner publishes it
				continue
			}
			batch = append(batch, msgs[i])
			which = append(which, i)
		}
		if len(batch) == 0 {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
		errs := r.pub.Publish(pctx, batch)
		timedOut := pctx.Err() != nil && ctx.Err() == nil
		cancel()
		if got := len(errs); got != len(batch) {
			r.log.Error("publisher returned a wrong number of results; treating the round as failed", "want", len(batch), "got", got)
			errs = make([]error, len(batch))
			for j := range errs {
				errs[j] = fmt.Errorf("%w: publisher returned %d results for %d records", ErrUnavailable, got, len(batch))
			}
		}
		for j, err := range errs {
			i := which[j]
			rec := &recs[i]
			switch {
			case err == nil:
				acks = append(acks, rec.RowID)
				okTopics[rec.Topic] = true
			case errors.Is(err, ErrUnavailable) || ctx.Err() != nil || timedOut:
				// Not the message's fault (the broker is unreachable or too
				// slow, or we are shutting down): leave the row untouched, no
				// attempt counted.
				if errors.Is(err, ErrUnavailable) || timedOut {
					if out.unavailable == nil {
						out.unavailable = err
					}
					unavailTopics[rec.Topic] = err
				}
				r.unavailable.Add(1)
				blocked[group[i]] = true
			case IsPermanent(err) || rec.Attempts+1 >= r.cfg.MaxAttempts:
				failures = append(failures, dialect.Failure{RowID: rec.RowID, Err: errText(err)})
				r.log.Warn("message dead-lettered", "message_id", rec.MessageID, "topic", rec.Topic,
					"attempts", rec.Attempts+1, "permanent", IsPermanent(err), "err", err)
				// A dead letter does not hold back its key: the next messages flow.
			default:
				retries = append(retries, dialect.Retry{RowID: rec.RowID, Delay: r.backoff(rec.Attempts + 1), Err: errText(err)})
				blocked[group[i]] = true
			}
		}
	}
	out.acks, out.retries, out.failures = acks, retries, failures
	out.published = len(acks)
	// Pause the topics that were unavailable while others got through; a
	// topic that got through is healthy again.
	for t := range okTopics {
		delete(r.paused, t)
	}
	if out.published > 0 {
		for t, err := range unavailTopics {
			if okTopics[t] {
				continue
			}
			p := r.paused[t]
			p.backoff = min(max(p.backoff*2, r.cfg.OutageBackoff), r.cfg.OutageBackoffMax)
			p.until = time.Now().Add(p.backoff)
			r.paused[t] = p
			r.log.Warn("topic unavailable while others are not: pausing it; its messages are untouched", "topic", t, "pause", p.backoff, "err", err)
		}
	}
	return out
}

// batchOutcome is what a batch did.
type batchOutcome struct {
	acks        []int64
	retries     []dialect.Retry
	failures    []dialect.Failure
	published   int
	skipped     int   // records of paused topics, left untouched
	unavailable error // first error that showed the broker unavailable
}

// settle records the outcome of a batch. Acks come first: a lost ack means a
// duplicate, never a loss. It returns the ids it could not delete, which the
// worker retries before reading again.
func (r *Relay) settle(work context.Context, out batchOutcome) (unacked []int64) {
	// The batch's writes get their own deadline, so a finished publish is
	// not thrown away for want of a DELETE; once the shutdown timeout is over
	// (work ends) they get two more seconds.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(work), 30*time.Second)
	defer cancel()
	stop := context.AfterFunc(work, func() { time.AfterFunc(2*time.Second, cancel) })
	defer stop()
	d := r.cfg.Dialect
	try := func(what string, fn func() error) bool {
		for attempt := 1; ; attempt++ {
			err := fn()
			if err == nil {
				return true
			}
			if attempt == 3 || dctx.Err() != nil {
				r.log.Error("recording the batch outcome failed", "step", what, "err", err)
				return false
			}
			sleep(dctx, time.Duration(attempt)*100*time.Millisecond)
		}
	}
	if len(out.acks) > 0 {
		if try("ack", func() error { _, err := d.Ack(dctx, r.db, out.acks); return err }) {
			r.published.Add(int64(len(out.acks)))
		} else {
			unacked = out.acks
		}
	}
	if len(out.failures) > 0 && try("dead-letter", func() error { return d.DeadLetter(dctx, r.db, out.failures) }) {
		r.deadLettered.Add(int64(len(out.failures)))
	}
	if len(out.retries) > 0 && try("retry", func() error { return d.Retry(dctx, r.db, out.retries) }) {
		r.retried.Add(int64(len(out.retries)))
	}
	return unacked
}

// backoff is the wait before attempt n+1: RetryBackoff * 2^(n-1), capped at
// RetryBackoffMax, minus up to a fifth of jitter so that failed messages
// spread out.
func (r *Relay) backoff(n int) time.Duration {
	d := r.cfg.RetryBackoff
	for i := 1; i < n && d < r.cfg.RetryBackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.cfg.RetryBackoffMax)
	if d > 0 {
		d -= time.Duration(rand.Int64N(int64(d)/5 + 1))
	}
	return d
}

// errText makes an error fit the last_error column: valid UTF-8, no NUL,
// at most 2000 bytes.
func errText(err error) string {
	s := strings.ToValidUTF8(err.Error(), "?")
	s = strings.ReplaceAll(s, "\x00", "?")
	if len(s) > 2000 {
		s = strings.ToValidUTF8(s[:2000], "")
	}
	return s
}

// sleep waits d or until ctx ends; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
