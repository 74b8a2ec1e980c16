package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
)

const pressureAbout = `Measures the relay on a database under pressure: dead rows that vacuum
cannot remove because another session holds an old snapshot.

  hold      with --hold (the default), a connection of its own opens a
            transaction and takes a snapshot that it holds until the end of
            the run: PostgreSQL BEGIN ISOLATION LEVEL REPEATABLE READ;
            SELECT txid_current(); MySQL START TRANSACTION WITH CONSISTENT
            SNAPSHOT; SELECT COUNT(*) FROM outbox_messages; SQLite BEGIN;
            SELECT COUNT(*) FROM outbox_messages (a WAL read mark: checkpoints
            cannot pass it). A row committed into bench_hold right after must
            stay invisible to it until the end (snapshot_held), or the run
            fails
  churn     --churn messages loaded as drain loads them (transactions of
            1000, then VACUUM ANALYZE / ANALYZE TABLE / ANALYZE), then
            drained by a relay to the broker: each leaves a dead row and dead
            index entries, which vacuum cannot remove while the snapshot is
            held
  measure   --measure drain: -n messages loaded as drain loads them (VACUUM
            ANALYZE included), then one relay drains them, timed from its
            start until it has published them all, and the topic is read
            back as drain does (lost, duplicates, order); the rate of every
            --window as well as overall.
            --measure latency: VACUUM ANALYZE (or ANALYZE) again, then the
            latency scenario's open-loop load (--rate,
            --duration, --writers, ...) and its commit-to-consume latency,
            overall and for every --window of the measured load (by commit
            time: count, p50, p99, max, lost)

dead_tuples (PostgreSQL: pg_stat_user_tables.n_dead_tup of outbox_messages)
and history_list_length (MySQL: InnoDB's trx_rseg_history_len) are read
right before the measured phase: what the snapshot held back. Compare a run
with the defaults against --hold=false --churn 0, the fresh table of the
drain and latency scenarios.`

const pressureExamples = `  go run ./cmd/outbox-bench pressure --dialect postgres
  go run ./cmd/outbox-bench pressure --dialect postgres --hold=false --churn 0
  go run ./cmd/outbox-bench pressure --dialect mysql --measure latency --rate 1000 --duration 60s
  go run ./cmd/outbox-bench pressure --dialect postgres --churn 20000 -n 20000 --window 1s`

// What pressure measures after the churn (--measure).
const (
	measureDrain   = "drain"
	measureLatency = "latency"
)

// pressureDrain are the figures of --measure drain.
type pressureDrain struct {
	LoadSeconds      float64       `json:"load_seconds"`
	RelaySeconds     float64       `json:"relay_seconds"`
	RelayMsgsPerSec  float64       `json:"relay_msgs_per_sec"`
	RelayPublished   int64         `json:"relay_published"`
	RelayBatches     int64         `json:"relay_batches"`
	RelayPublishSecs float64       `json:"relay_publish_seconds"`
	RelayTopicGrowth int64         `json:"relay_topic_records"`
	PendingAfter     int64         `json:"pending_after_relay"`
	Windows          []drainWindow `json:"windows"`
	deliveryCheck
}

// latencyWindow are the latencies of the messages committed in one window
// of a latency run's measured load.
type latencyWindow struct {
	EndSeconds float64 `json:"end_seconds"` // since the measured load's start
	Count      int     `json:"count"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	Lost       int     `json:"lost"`
}

// pressureResult is the JSON line of the pressure scenario.
type pressureResult struct {
	header
	Measure       string  `json:"measure"`
	Hold          bool    `json:"hold"`
	HoldStatement string  `json:"hold_statement,omitempty"`
	Churn         int     `json:"churn"`
	N             int     `json:"n,omitempty"` // --measure drain
	ValueBytes    int     `json:"value_bytes"`
	Keys          int     `json:"keys"`
	KeySkew       string  `json:"key_skew"`
	Shards        int     `json:"shards"`
	BrokerRTTMs   float64 `json:"broker_rtt_ms"`
	WindowSeconds float64 `json:"window_seconds"`

	ChurnLoadSeconds  float64 `json:"churn_load_seconds"`
	ChurnRelaySeconds float64 `json:"churn_relay_seconds"`
	ChurnMsgsPerSec   float64 `json:"churn_relay_msgs_per_sec"`
	// DeadTuples (PostgreSQL) and HistoryLength (MySQL) are read before
	// the measured phase; null on the other dialects or when unreadable.
	DeadTuples    *int64 `json:"dead_tuples"`
	HistoryLength *int64 `json:"history_list_length"`

	Drain          *pressureDrain  `json:"drain,omitempty"`
	Latency        *latencyFigures `json:"latency,omitempty"`
	LatencyWindows []latencyWindow `json:"latency_windows,omitempty"`

	// SnapshotHeld: with --hold, the snapshot was still held at the end.
	SnapshotHeld bool    `json:"snapshot_held"`
	HeldSeconds  float64 `json:"held_seconds"`
	TotalSeconds float64 `json:"total_seconds"`
	verdict
}

// latencyNote marks the help of the flags of --measure latency.
const latencyNote = " (--measure latency)"

var pressureScenario = scenario{
	name:     "pressure",
	summary:  "drain rate or latency over time after a churn under a held snapshot",
	about:    pressureAbout,
	examples: pressureExamples,
	flags: func(fs *flag.FlagSet, co *commonOpts) benchmark {
		addBrokerRTT(fs, co)
		b := &pressureBench{co: co}
		fs.BoolVar(&b.hold, "hold", true, "hold a snapshot open on another connection for the whole run")
		fs.IntVar(&b.churn, "churn", 1_000_000, "messages enqueued and published before the measured phase (0: none)")
		fs.StringVar(&b.measure, "measure", measureDrain, "what to measure after the churn: drain or latency")
		fs.DurationVar(&b.window, "window", 10*time.Second, "length of the windows the figures are also reported for")
		b.load = addLoad(fs, 200_000, true)
		b.lat = addLatencyFlags(fs, co, time.Minute, latencyNote)
		b.lat.load = b.load
		return b
	},
}

// pressureBench is the pressure scenario with its flags.
type pressureBench struct {
	co      *commonOpts
	load    *loadOpts
	lat     *latencyBench // --measure latency
	hold    bool
	churn   int
	measure string
	window  time.Duration
}

func (b *pressureBench) check() error {
	var measure error
	switch b.measure {
	case measureDrain:
	case measureLatency:
		measure = b.lat.check()
	default:
		measure = flagErrorf("--measure", "must be %s or %s; got %q", measureDrain, measureLatency, b.measure)
	}
	return firstError(measure, checkNotNegativeInt("--churn", b.churn), checkPositive("--window", b.window), b.load.check(b.co.topic))
}

func (b *pressureBench) needs() needs {
	pool := 2
	if b.measure == measureLatency {
		pool = max(pool, b.lat.writers)
	}
	return needs{pool: pool, topics: []string{b.co.topic}}
}

// run holds the snapshot, churns, and measures.
func (b *pressureBench) run(ctx context.Context, e *env, c *checks) (result, error) {
	res := &pressureResult{header: e.header(), Measure: b.measure, Hold: b.hold, Churn: b.churn,
		ValueBytes: b.load.valueBytes, Keys: b.load.keys, KeySkew: b.load.skew, Shards: b.load.shards,
		BrokerRTTMs: e.brokerRTTMs(), WindowSeconds: secs(b.window)}
	var h *heldSnapshot
	if b.hold {
		var err error
		if h, err = holdSnapshot(ctx, e); err != nil {
			return nil, fmt.Errorf("holding a snapshot: %w", err)
		}
		defer h.close()
		res.HoldStatement = h.statement
	}
	if err := b.churnPhase(ctx, e, res, c); err != nil {
		return nil, err
	}
	var err error
	switch b.measure {
	case measureDrain:
		err = b.drain(ctx, e, res, c)
	case measureLatency:
		err = b.latency(ctx, e, res, c)
	}
	if err != nil {
		return nil, err
	}
	if h != nil {
		if res.SnapshotHeld, err = h.held(ctx); err != nil {
			return nil, fmt.Errorf("the held snapshot: %w", err)
		}
		res.HeldSeconds = secs(time.Since(h.since))
		if !res.SnapshotHeld {
			c.failf("the snapshot was not held to the end: the holding transaction sees a row committed after it began")
		}
	}
	res.TotalSeconds = e.elapsed()
	return res, nil
}

// churnPhase enqueues --churn messages and has a relay publish them; with
// --measure latency it then vacuums and analyzes the table (drain's load
// does it after its own).
func (b *pressureBench) churnPhase(ctx context.Context, e *env, res *pressureResult, c *checks) error {
	if b.churn > 0 {
		spec := b.load.spec(b.co.topic)
		spec.n = b.churn
		took, err := e.load(ctx, spec, "churn")
		if err != nil {
			return err
		}
		res.ChurnLoadSeconds = secs(took)
		relays, err := newFleet(ctx, e, 1, b.load.shards, 0)
		if err != nil {
			return err
		}
		defer relays.close()
		start := time.Now()
		relays.start(ctx)
		if err := waitPublished(ctx, e.stderr, int64(b.churn), start, relays.published, c); err != nil {
			return err
		}
		took = time.Since(start)
		relays.stop()
		res.ChurnRelaySeconds, res.ChurnMsgsPerSec = secs(took), rate(int64(b.churn), took)
		fmt.Fprintf(e.stderr, "bench: churn: %d messages published in %.2fs (%.0f msg/s)\n", b.churn, took.Seconds(), res.ChurnMsgsPerSec)
		if t := relays.totals(); t.deadLettered != 0 {
			c.failf("churn: %d messages dead-lettered", t.deadLettered)
		}
	}
	if b.measure == measureLatency {
		if err := e.analyze(ctx, dialect.TableMessages); err != nil {
			return fmt.Errorf("analyzing after the churn: %w", err)
		}
	}
	return nil
}

// drain is --measure drain: -n messages loaded and drained by a relay.
func (b *pressureBench) drain(ctx context.Context, e *env, res *pressureResult, c *checks) error {
	res.N = b.load.n
	took, err := e.load(ctx, b.load.spec(b.co.topic), "load")
	if err != nil {
		return err
	}
	b.heldBack(ctx, e, res)
	rb, err := e.startReadback(ctx, b.load.n, "the load", c)
	if err != nil {
		return err
	}
	d, err := drainLoaded(ctx, e, rb, drainSettings{relays: 1, shards: b.load.shards, batch: outbox.DefaultBatchSize, n: b.load.n, window: b.window}, c)
	if err != nil {
		return err
	}
	res.Drain = &pressureDrain{LoadSeconds: secs(took), RelaySeconds: secs(d.took), RelayMsgsPerSec: rate(int64(b.load.n), d.took),
		RelayPublished: d.totals.published, RelayBatches: d.totals.batches, RelayPublishSecs: secs(d.totals.publishTime),
		RelayTopicGrowth: d.records, PendingAfter: d.pending, Windows: d.windows, deliveryCheck: d.check}
	return nil
}

// latency is --measure latency: the latency scenario's load and figures,
// and the figures of every window.
func (b *pressureBench) latency(ctx context.Context, e *env, res *pressureResult, c *checks) error {
	b.heldBack(ctx, e, res)
	m, err := b.lat.measure(ctx, e, c)
	if err != nil {
		return err
	}
	res.Latency = &m.figures
	res.LatencyWindows = latencyWindows(m, b.window, b.lat.duration)
	if m.figures.Duplicates != 0 {
		c.failf("%d messages arrived more than once", m.figures.Duplicates)
	}
	return nil
}

// latencyWindows returns the latencies of the measured messages of m by
// window of their commit time, from the start of the measured load.
func latencyWindows(m *latencyRun, window, duration time.Duration) []latencyWindow {
	n := int((duration + window - 1) / window)
	lat := make([][]float64, n)
	lost := make([]int, n)
	for id, s := range m.w.sent {
		if !s.measured {
			continue
		}
		i := min(max(int(s.commit.Sub(m.w.measureFrom)/window), 0), n-1)
		if r, ok := m.arr.recv[id]; ok {
			lat[i] = append(lat[i], float64(r.Sub(s.commit))/float64(time.Millisecond))
		} else {
			lost[i]++
		}
	}
	out := make([]latencyWindow, n)
	for i := range out {
		slices.Sort(lat[i])
		out[i] = latencyWindow{EndSeconds: secs(min(time.Duration(i+1)*window, duration)), Count: len(lat[i]) + lost[i], Lost: lost[i],
			P50Ms: round(percentile(lat[i], 50), 3), P99Ms: round(percentile(lat[i], 99), 3)}
		if len(lat[i]) > 0 {
			out[i].MaxMs = round(lat[i][len(lat[i])-1], 3)
		}
	}
	return out
}

// heldBack reads what vacuum could not remove: PostgreSQL's dead tuples of
// the outbox table, MySQL's history list length. A failure is reported on
// stderr only (the figure is then null).
func (b *pressureBench) heldBack(ctx context.Context, e *env, res *pressureResult) {
	var q string
	var out **int64
	switch e.name {
	case "postgres":
		q, out = "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = '"+dialect.TableMessages+"'", &res.DeadTuples
	case "mysql":
		q, out = "SELECT `COUNT` FROM information_schema.INNODB_METRICS WHERE NAME = 'trx_rseg_history_len'", &res.HistoryLength
	default:
		return
	}
	var v int64
	if err := e.db.QueryRowContext(ctx, q).Scan(&v); err != nil {
		fmt.Fprintf(e.stderr, "bench: pressure: what vacuum could not remove: %v\n", err)
		return
	}
	*out = &v
	fmt.Fprintf(e.stderr, "bench: pressure: before the measured phase: %s %d\n", map[string]string{"postgres": "dead tuples", "mysql": "history list length"}[e.name], v)
}

// ---------------------------------------------------------------------------
// The held snapshot

// heldSnapshot is a transaction held open on a connection of its own.
type heldSnapshot struct {
	pool      *sql.DB
	conn      *sql.Conn
	statement string // what opened it
	since     time.Time
}

// holdSnapshot opens a transaction with a snapshot on a connection of its
// own, then commits a row into holdTable on another: held reports whether
// the transaction still does not see it.
func holdSnapshot(ctx context.Context, e *env) (_ *heldSnapshot, err error) {
	if err := e.exec(ctx, "CREATE TABLE "+holdTable+" (id INTEGER NOT NULL)"); err != nil {
		return nil, err
	}
	var stmts []string
	switch e.name {
	case "postgres":
		stmts = []string{"BEGIN ISOLATION LEVEL REPEATABLE READ", "SELECT txid_current()"}
	case "mysql":
		stmts = []string{"START TRANSACTION WITH CONSISTENT SNAPSHOT", "SELECT COUNT(*) FROM " + dialect.TableMessages}
	default:
		stmts = []string{"BEGIN", "SELECT COUNT(*) FROM " + dialect.TableMessages}
	}
	h := &heldSnapshot{statement: stmts[0] + "; " + stmts[1]}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	if h.pool, err = e.open(1); err != nil {
		return nil, err
	}
	if h.conn, err = h.pool.Conn(ctx); err != nil {
		return nil, err
	}
	if _, err := h.conn.ExecContext(ctx, stmts[0]); err != nil {
		return nil, fmt.Errorf("%s: %w", stmts[0], err)
	}
	var v int64
	if err := h.conn.QueryRowContext(ctx, stmts[1]).Scan(&v); err != nil {
		return nil, fmt.Errorf("%s: %w", stmts[1], err)
	}
	h.since = time.Now()
	if err := e.exec(ctx, "INSERT INTO "+holdTable+" (id) VALUES (1)"); err != nil {
		return nil, err
	}
	fmt.Fprintf(e.stderr, "bench: a snapshot is held (%s)\n", h.statement)
	return h, nil
}

// held reports whether the transaction is still open on its snapshot: it
// does not see the row committed after it began.
func (h *heldSnapshot) held(ctx context.Context) (bool, error) {
	var n int
	if err := h.conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+holdTable).Scan(&n); err != nil {
		return false, err
	}
	return n == 0, nil
}

// close ends the transaction and its connection.
func (h *heldSnapshot) close() {
	if h.conn != nil {
		_, _ = h.conn.ExecContext(context.Background(), "ROLLBACK")
		_ = h.conn.Close()
	}
	if h.pool != nil {
		_ = h.pool.Close()
	}
}
