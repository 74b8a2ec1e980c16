package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/internal/netdelay"
	"github.com/outboxrelay/outbox/migrations"
)

// Defaults shared by the scenarios.
const (
	defaultTopic      = "outbox.bench"
	defaultNamespace  = "outbox_bench"
	defaultPartitions = 8
	// loadTxSize is how many messages the load phases enqueue per
	// transaction.
	loadTxSize = 1000
	// relayMaxConns is the pool size of every relay, as cmd/relay's default.
	relayMaxConns = 4
)

// ---------------------------------------------------------------------------
// The environment of a run

// env is what a scenario runs in: a migrated namespace, an application
// pool on it, and a broker with the run's topics.
type env struct {
	*database
	scenario   string
	opts       *commonOpts
	started    time.Time // before the setup: total_seconds counts from here
	db         *sql.DB   // the application's pool
	brokers    []string
	kfake      *localkafka.Broker   // nil with --brokers
	delayed    []*netdelay.Listener // kfake's listeners, with --broker-rtt or needs.switchable
	switchable bool                 // kfake's listeners can be taken down (the outage scenario)
	partitions int                  // of opts.topic
	log        *slog.Logger         // warn level, to stderr: for the relays
	instr      *instruments         // --observe; nil: off
	stderr     io.Writer
	closers    []func()
}

// setup prepares the environment of the scenario name: the namespace
// (migrated), an application pool of n.pool connections, and the broker
// holding n.topics (kfake, or the --brokers cluster where missing topics
// are created). With no topics it starts no broker.
func setup(ctx context.Context, name string, o *commonOpts, n needs, stderr io.Writer) (_ *env, err error) {
	e := &env{scenario: name, opts: o, started: time.Now(), stderr: stderr, switchable: n.switchable}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	e.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.dialect == "mysql" {
		_ = mysql.SetLogger(log.New(stderr, "[mysql] ", log.LstdFlags))
	}
	if err := e.openNamespace(ctx, n.pool); err != nil {
		return nil, err
	}
	if o.observe != "" {
		// The gauges' refresh gets a pool of its own, as it has the
		// relay's in relay run, not the application's.
		gdb, err := e.open(1)
		if err != nil {
			return nil, err
		}
		e.instr = newInstruments(ctx, e.dialect, gdb, o.observe == observeAll)
		e.closers = append(e.closers, func() { e.instr.close(); gdb.Close() })
	}
	if len(n.topics) == 0 {
		return e, nil
	}
	return e, e.startBroker(n.topics)
}

// openNamespace creates the run's namespace, migrates it and opens the
// application's pool of poolSize connections on it.
func (e *env) openNamespace(ctx context.Context, poolSize int) (err error) {
	if e.database, err = openDatabase(ctx, e.opts); err != nil {
		return err
	}
	e.closers = append(e.closers, func() {
		if err := e.drop(); err != nil {
			fmt.Fprintf(e.stderr, "dropping the benchmark namespace: %v\n", err)
		}
	})
	// Migrate on a pool of its own: on SQLite the migration lock needs a
	// second connection, which a pool of one would never give.
	mdb, err := e.open(4)
	if err != nil {
		return err
	}
	err = migrations.Up(ctx, mdb, e.dialect)
	mdb.Close()
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if e.db, err = e.open(poolSize); err != nil {
		return err
	}
	e.closers = append(e.closers, func() { e.db.Close() })
	fmt.Fprintf(e.stderr, "bench: %s database %s (namespace %s), migrated\n", e.name, e.display, e.opts.namespace)
	return nil
}

// startBroker starts kfake with topics or, with --brokers, creates those
// missing on the cluster.
func (e *env) startBroker(topics []string) (err error) {
	o := e.opts
	if o.brokers == "" {
		if e.kfake, err = localkafka.Start(int32(o.partitions), topics, e.kfakeOpts()...); err != nil {
			return err
		}
		e.closers = append(e.closers, e.kfake.Close)
		e.brokers, e.partitions = e.kfake.Addrs, o.partitions
		fmt.Fprintf(e.stderr, "bench: in-process kfake broker at %v, topics %v (%d partitions)%s\n", e.brokers, topics, o.partitions, e.rttNote())
		if o.brokerRTT > 0 {
			e.closers = append(e.closers, e.reportDelayed)
		}
		return nil
	}
	e.brokers = o.brokerList()
	if e.partitions, err = ensureTopics(e.brokers, o.partitions, topics); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "bench: Kafka at %v, topics %v (%s: %d partitions)\n", e.brokers, topics, o.topic, e.partitions)
	return nil
}

// close releases everything setup made, in reverse order, and drops the
// namespace.
func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// header returns the fields every result line starts with.
func (e *env) header() header {
	h := header{
		Scenario: e.scenario, Dialect: e.opts.dialect, Database: e.display, Namespace: e.opts.namespace,
		Topic: e.opts.topic, Partitions: e.partitions, Observe: e.opts.observe,
		Go: runtime.Version(), CPUs: runtime.NumCPU(), Time: time.Now().Format(time.RFC3339),
	}
	h.Revision, h.Dirty = revision()
	switch {
	case e.kfake != nil:
		h.Broker = "kfake"
	case len(e.brokers) > 0:
		h.Broker = strings.Join(e.brokers, ",")
	}
	return h
}

// wake names how the relays of the run wake up: "pqnotify" where the
// dialect has notifications, else "poll".
func (e *env) wake() string {
	if e.dialect.SupportsNotify() {
		return "pqnotify"
	}
	return "poll"
}

// profile starts the CPU profile of --cpuprofile (if given) and returns the
// function that stops it.
func (e *env) profile() (stop func() error, err error) { return startProfile(e.opts.cpuprofile) }

// ---------------------------------------------------------------------------
// Loading the outbox

// loadSpec describes the messages of a load: keys of keys keys spread as
// skew says (see keyPicker), random values of valueBytes bytes.
type loadSpec struct {
	topic      string
	n          int
	valueBytes int
	keys       int
	skew       string
	numShards  int
}

// picker returns the keys of the load, the same for every load of spec.
func (spec loadSpec) picker() *keyPicker {
	return newKeyPicker(spec.skew, spec.keys, uint64(spec.n), 0, 1)
}

// load enqueues spec.n messages in transactions of loadTxSize, then
// analyzes the table so that the planner sees its real size.
func (e *env) load(ctx context.Context, spec loadSpec, what string) (time.Duration, error) {
	ocfg := outbox.Config{Dialect: e.dialect, NumShards: spec.numShards}
	e.instr.outbox(&ocfg)
	ob, err := outbox.New(ocfg)
	if err != nil {
		return 0, err
	}
	ctx, endRequest := e.instr.request(ctx)
	defer endRequest()
	keys, pick := keyBytes(spec.keys), spec.picker()
	rng := newRand(uint64(spec.n))
	msgs := make([]outbox.Message, 0, loadTxSize)
	start, lastReport := time.Now(), time.Now()
	for i := 0; i < spec.n; {
		m := min(loadTxSize, spec.n-i)
		values := make([]byte, m*spec.valueBytes)
		_, _ = rng.Read(values)
		msgs = msgs[:m]
		for j := range msgs {
			msgs[j] = outbox.Message{Topic: spec.topic, Key: keys[pick.pick()], Value: values[j*spec.valueBytes : (j+1)*spec.valueBytes]}
		}
		tx, err := e.db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		if err := ob.Enqueue(ctx, tx, msgs...); err != nil {
			_ = tx.Rollback()
			return 0, err
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
		i += m
		if time.Since(lastReport) >= 5*time.Second {
			fmt.Fprintf(e.stderr, "bench: %s: %d/%d messages enqueued (%.0f msg/s)\n", what, i, spec.n, float64(i)/time.Since(start).Seconds())
			lastReport = time.Now()
		}
	}
	if err := e.analyze(ctx, dialect.TableMessages); err != nil {
		return 0, fmt.Errorf("analyzing after the load: %w", err)
	}
	took := time.Since(start)
	fmt.Fprintf(e.stderr, "bench: %s: %d messages enqueued and analyzed in %.1fs\n", what, spec.n, took.Seconds())
	return took, nil
}

// analyze refreshes the planner statistics of table (and, on PostgreSQL,
// vacuums it).
func (e *env) analyze(ctx context.Context, table string) error {
	var q string
	switch e.name {
	case "postgres":
		q = "VACUUM ANALYZE " + table
	case "mysql":
		q = "ANALYZE TABLE " + table
	default:
		q = "ANALYZE " + table
	}
	rows, err := e.db.QueryContext(ctx, q) // ANALYZE TABLE returns a result set
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}

// newRand returns a fast random source for message values, seeded from
// seed: runs with the same settings write the same bytes.
func newRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

// pending counts the rows of the outbox table.
func (e *env) pending(ctx context.Context) (int64, error) {
	var n int64
	err := e.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+dialect.TableMessages).Scan(&n)
	return n, err
}

// shardsHeld counts the shards that have an owner.
func (e *env) shardsHeld(ctx context.Context) (int, error) {
	var held int
	err := e.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+dialect.TableShards+" WHERE owner IS NOT NULL").Scan(&held)
	return held, err
}
