package outbox

import (
	"context"
	"database/sql"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

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
	// ordered: pub keeps a key's order within a call (OrderedPublisher),
	// so a batch goes in one call instead of rounds.
	ordered bool

	running atomic.Bool
	leases  *leaseBook // shared by the worker and the lease keeper

	// Worker-only state.
	paused     map[string]topicPause // topics unavailable while others are not
	probedBack bool                  // the last outage pause ended at a probe's answer
	outageLog  outageLog             // when the broker went away, when it was last said
	unacked    []int64               // published but not yet deleted
	floor      *readFloor            // where reads start (shared with the read ahead)
	arm        dialect.WakeArmer     // arms the wake-up before an idle wait; nil: none
	armAfter   time.Time             // no arming before (after a failure)
	wake       wakeState             // worker only
	// recordBytes is the mean size of a record of the last batch: reads ask
	// for no more rows than BatchBytes holds, so that the rows a read stops
	// short of (at BatchBytes) are not sent by the database for nothing.
	recordBytes int

	published, retried, deadLettered, unavailable, batches, pipelined atomic.Int64

	obs observing // RelayConfig.Observer and what it needs (relay_observer.go)
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
	op, ok := pub.(OrderedPublisher)
	return &Relay{
		db: db, pub: pub, cfg: cfg, ordered: ok && op.OrdersKeys(),
		log:    cfg.Logger.With("relay", cfg.ID),
		leases: newLeaseBook(),
		paused: map[string]topicPause{},
		obs:    observing{obs: cfg.Observer},
		floor:  newReadFloor(cfg.Dialect, db, cfg.Logger.With("relay", cfg.ID)),
		arm:    wakeArmer(cfg),
	}, nil
}

// ID returns the relay's id.
func (r *Relay) ID() string { return r.cfg.ID }

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	shards := r.leases.count()
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

	// The database clock, for commit-to-publish delays, before the first
	// shards are taken; then on its own schedule, off the lease rounds.
	cctx, cancel := context.WithTimeout(work, firstClockTimeout)
	r.measureClock(cctx)
	cancel()

	keeperDone := make(chan struct{})
	go func() {
		defer close(keeperDone)
		r.keepLeases(ctx, work)
	}()
	clockDone := make(chan struct{})
	go func() {
		defer close(clockDone)
		r.keepClock(work)
	}()
	r.work(ctx, work)
	stopWork()
	<-keeperDone
	<-clockDone
	r.floor.wait()

	// Hand everything back so other relays take over at once.
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	held := r.leases.takeAll()
	if err := r.cfg.Dialect.Release(cleanup, r.db, r.cfg.ID, held); err != nil {
		r.log.Warn("releasing leases at shutdown failed; they expire on their own", "err", err)
	}
	r.leaseEvent(LeaseHandedBack, len(held))
	if err := r.cfg.Dialect.Deregister(cleanup, r.db, r.cfg.ID); err != nil {
		r.log.Warn("deregistering failed", "err", err)
	}
	r.log.Info("outbox relay stopped", "published", r.published.Load())
	return nil
}
