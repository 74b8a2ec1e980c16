package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/dialect/pqnotify"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

// ---------------------------------------------------------------------------
// Relays

// relaySettings configures a relay as the benchmark runs it.
type relaySettings struct {
	driver, dsn string
	dialect     dialect.Dialect
	brokers     []string
	id          string
	numShards   int
	batchSize   int // 0: the relay's default
	// pollInterval is RelayConfig.PollInterval (0: the relay's default).
	pollInterval time.Duration
	instr        *instruments // --observe; nil: off
}

// relayRig is a relay with its own pool, publisher and (on PostgreSQL)
// LISTEN/NOTIFY wake-ups, as cmd/relay wires them.
type relayRig struct {
	db       *sql.DB
	pub      *kafka.Publisher
	timed    *timedPublisher
	listener *pqnotify.Listener
	relay    *outbox.Relay
	done     chan struct{}
	cancel   context.CancelFunc
}

// newRelayRig builds a relay: a pool of relayMaxConns connections, a
// kafka.Publisher of its own, and pqnotify wake-ups where the dialect
// supports them.
func newRelayRig(ctx context.Context, s relaySettings, log *slog.Logger) (_ *relayRig, err error) {
	r := &relayRig{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if r.db, err = sql.Open(s.driver, s.dsn); err != nil {
		return nil, err
	}
	r.db.SetMaxOpenConns(relayMaxConns)
	r.db.SetMaxIdleConns(relayMaxConns)
	if r.pub, err = kafka.New(kafka.Config{Brokers: s.brokers, ClientID: s.id}); err != nil {
		return nil, err
	}
	r.timed = &timedPublisher{Publisher: r.pub}
	cfg := outbox.RelayConfig{Dialect: s.dialect, NumShards: s.numShards, ID: s.id, BatchSize: s.batchSize,
		PollInterval: s.pollInterval, Logger: log}
	s.instr.relay(&cfg)
	if s.dialect.SupportsNotify() {
		if r.listener, err = pqnotify.New(ctx, s.dsn, log); err != nil {
			return nil, err
		}
		cfg.Wake = r.listener.Wake()
	}
	if r.relay, err = outbox.NewRelay(r.db, r.timed, cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// start runs the relay in a goroutine until stop.
func (r *relayRig) start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		_ = r.relay.Run(ctx)
	}()
}

// stop ends Run and waits for it.
func (r *relayRig) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// close stops the relay and closes its publisher, listener and pool.
func (r *relayRig) close() {
	r.stop()
	if r.pub != nil {
		_ = r.pub.Close()
	}
	if r.listener != nil {
		_ = r.listener.Close()
	}
	if r.db != nil {
		_ = r.db.Close()
	}
}

// relaySettings returns the settings of a relay on e's database and
// brokers.
func (e *env) relaySettings(id string, numShards, batchSize int) relaySettings {
	return relaySettings{driver: e.driver, dsn: e.dsn, dialect: e.dialect, brokers: e.brokers,
		id: id, numShards: numShards, batchSize: batchSize, instr: e.instr}
}

// fleet is relays running side by side in this process.
type fleet []*relayRig

// newFleet builds n relays on e, named bench-relay-<i>.
func newFleet(ctx context.Context, e *env, n, numShards, batchSize int) (fleet, error) {
	f := make(fleet, 0, n)
	for i := 0; i < n; i++ {
		r, err := newRelayRig(ctx, e.relaySettings("bench-relay-"+strconv.Itoa(i), numShards, batchSize), e.log)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("relay %d: %w", i, err)
		}
		f = append(f, r)
	}
	return f, nil
}

// start starts every relay.
func (f fleet) start(ctx context.Context) {
	for _, r := range f {
		r.start(ctx)
	}
}

// stop stops every relay and waits for them.
func (f fleet) stop() {
	for _, r := range f {
		r.stop()
	}
}

// close stops and closes every relay.
func (f fleet) close() {
	for _, r := range f {
		r.close()
	}
}

// published returns how many messages the relays have published.
func (f fleet) published() (n int64) {
	for _, r := range f {
		n += r.relay.Stats().Published
	}
	return n
}

// fleetTotals are the relays' statistics added up.
type fleetTotals struct {
	published, batches, deadLettered, retried int64
	publishTime                               time.Duration // in Publish
	publishCalls                              int64
}

// totals adds up the relays' statistics.
func (f fleet) totals() fleetTotals {
	var t fleetTotals
	for _, r := range f {
		s := r.relay.Stats()
		t.published += s.Published
		t.batches += s.Batches
		t.deadLettered += s.DeadLettered
		t.retried += s.Retried
		d, calls := r.timed.spent()
		t.publishTime += d
		t.publishCalls += calls
	}
	return t
}

// timedPublisher adds up the time the relay spends in Publish, so that a
// run can tell broker time from database time.
type timedPublisher struct {
	outbox.Publisher
	nanos, calls atomic.Int64
}

// Publish calls the wrapped publisher and counts the time it took.
func (p *timedPublisher) Publish(ctx context.Context, recs []outbox.Record) []error {
	start := time.Now()
	errs := p.Publisher.Publish(ctx, recs)
	p.nanos.Add(int64(time.Since(start)))
	p.calls.Add(1)
	return errs
}

// OrdersKeys forwards the wrapped publisher's answer, so that the relay
// gives an OrderedPublisher whole batches through the wrapper too.
func (p *timedPublisher) OrdersKeys() bool {
	op, ok := p.Publisher.(outbox.OrderedPublisher)
	return ok && op.OrdersKeys()
}

// Probe forwards to the wrapped publisher when it is an outbox.Prober; for
// one that is not it fails, so the relay sleeps out its backoff as it would
// without the wrapper.
func (p *timedPublisher) Probe(ctx context.Context) error {
	if pr, ok := p.Publisher.(outbox.Prober); ok {
		return pr.Probe(ctx)
	}
	return fmt.Errorf("%w: the publisher cannot be probed", outbox.ErrUnavailable)
}

// spent returns the time spent in Publish and the number of calls.
func (p *timedPublisher) spent() (time.Duration, int64) {
	return time.Duration(p.nanos.Load()), p.calls.Load()
}

// startProfile starts a CPU profile into path ("" does nothing) and returns
// the function that stops it.
func startProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
