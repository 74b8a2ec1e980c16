package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq"  // the postgres driver
	_ "modernc.org/sqlite" // the sqlite driver

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/kafkatest"
	"github.com/outboxrelay/outbox/migrations"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
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
// Flags

// newFlagSet returns a flag set whose --help prints about, examples and
// every flag with its default, to out.
func newFlagSet(name, about, examples string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: outbox-bench %s [flags]\n\n%s\n", name, about)
		if examples != "" {
			fmt.Fprintf(out, "\nExamples:\n%s\n", examples)
		}
		fmt.Fprintf(out, "\nFlags:\n")
		var flags []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
		sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
		for _, f := range flags {
			def := ""
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			dash := "--"
			if len(f.Name) == 1 {
				dash = "-"
			}
			fmt.Fprintf(out, "  %s%s\n      %s%s\n", dash, f.Name, strings.ReplaceAll(f.Usage, "\n", "\n      "), def)
		}
	}
	return fs
}

// parseFlags parses args and rejects positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// usagef returns a usage error (exit status 2).
func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// commonOpts are the flags every scenario has.
type commonOpts struct {
	dialect    string
	dsn        string
	brokers    string
	topic      string
	partitions int
	namespace  string
	cpuprofile string
}

const dsnHelp = `database: a postgres:// URL (default $OUTBOX_TEST_POSTGRES_DSN or
postgres://postgres@127.0.0.1:5432/test?sslmode=disable), a go-sql-driver/mysql
DSN (default $OUTBOX_TEST_MYSQL_DSN or root@tcp(127.0.0.1:3306)/test), or for
sqlite the directory of the temporary database file (default: the system's
temporary directory). The run creates and drops its own namespace there`

// addCommon registers the common flags on fs.
func addCommon(fs *flag.FlagSet) *commonOpts {
	var o commonOpts
	fs.StringVar(&o.dialect, "dialect", "postgres", "postgres, mysql or sqlite")
	fs.StringVar(&o.dsn, "dsn", "", dsnHelp)
	fs.StringVar(&o.brokers, "brokers", "", "comma-separated Kafka bootstrap brokers (default: an in-process kfake broker)")
	fs.StringVar(&o.topic, "topic", defaultTopic, "topic to publish to (created if missing)")
	fs.IntVar(&o.partitions, "partitions", defaultPartitions, "partitions of the topics the benchmark creates")
	fs.StringVar(&o.namespace, "namespace", defaultNamespace, "schema (postgres) or database (mysql) created empty for the run and dropped at its end")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile (go tool pprof) of the measured phase to this file:\nthe relay phase (drain), the load (latency), the timed calls (enqueue),\nthe relay child's life (memory, idle)")
	return &o
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// check validates the common flags.
func (o *commonOpts) check() error {
	switch o.dialect {
	case "postgres", "mysql", "sqlite":
	default:
		return usagef("--dialect must be postgres, mysql or sqlite; got %q", o.dialect)
	}
	if err := outbox.Validate(0, outbox.Message{Topic: o.topic}); err != nil {
		return usagef("--topic: %v", err)
	}
	if o.partitions < 1 {
		return usagef("--partitions must be at least 1; got %d", o.partitions)
	}
	if !identRE.MatchString(o.namespace) {
		return usagef("--namespace must match %s; got %q", identRE, o.namespace)
	}
	if o.brokers != "" && len(o.brokerList()) == 0 {
		return usagef("--brokers must list host:port addresses; got %q", o.brokers)
	}
	if o.dialect == "postgres" && o.dsn != "" {
		if u, err := url.Parse(o.dsn); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return usagef("--dsn must be a postgres:// URL for --dialect postgres")
		}
	}
	if o.dialect == "mysql" && o.dsn != "" {
		if _, err := mysql.ParseDSN(o.dsn); err != nil {
			return usagef("--dsn must be a go-sql-driver/mysql DSN (user:pass@tcp(host:3306)/db) for --dialect mysql")
		}
	}
	return nil
}

// brokerList splits --brokers.
func (o *commonOpts) brokerList() []string {
	var out []string
	for _, b := range strings.Split(o.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// The database namespace

// database is the namespace of one run: a fresh schema, database or file.
type database struct {
	name    string // postgres, mysql or sqlite
	dialect dialect.Dialect
	driver  string
	dsn     string // DSN of the namespace; holds the password: never print it
	display string // dsn with the password masked
	// base is the DSN as given (PostgreSQL, MySQL), without the namespace.
	base string
	drop func() error
}

// openDatabase creates the run's namespace, empty, on the database that
// o names. Its drop removes it again.
func openDatabase(ctx context.Context, o *commonOpts) (*database, error) {
	d := &database{name: o.dialect, dialect: dbtest.Dialect(dialect.Name(o.dialect)), driver: o.dialect}
	switch o.dialect {
	case "postgres":
		d.base = o.dsn
		if d.base == "" {
			d.base = dbtest.PostgresDSN()
		}
		u, err := url.Parse(d.base)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, usagef("the PostgreSQL DSN must be a postgres:// URL")
		}
		if pw, ok := u.User.Password(); ok {
			registerSecret(pw)
		}
		registerSecret(u.Query().Get("password"))
		admin, err := adminConn(ctx, "postgres", d.base, "PostgreSQL at "+u.Redacted(),
			"SELECT pg_try_advisory_lock(hashtext('outbox-bench.' || current_database() || '.' || $1))", o.namespace)
		if err != nil {
			return nil, err
		}
		for _, q := range []string{"DROP SCHEMA IF EXISTS " + o.namespace + " CASCADE", "CREATE SCHEMA " + o.namespace} {
			if _, err := admin.ExecContext(ctx, q); err != nil {
				admin.Close()
				return nil, fmt.Errorf("%s: %w", q, err)
			}
		}
		q := u.Query()
		q.Set("search_path", o.namespace) // lib/pq sends unknown keys as run-time parameters
		u.RawQuery = q.Encode()
		d.dsn = u.String()
		d.display = u.Redacted()
		d.drop = func() error {
			defer admin.Close()
			_, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+o.namespace+" CASCADE")
			return err
		}
	case "mysql":
		d.base = o.dsn
		if d.base == "" {
			d.base = dbtest.MySQLDSN()
		}
		cfg, err := mysql.ParseDSN(d.base)
		if err != nil {
			return nil, usagef("the MySQL DSN is not a go-sql-driver/mysql DSN")
		}
		registerSecret(cfg.Passwd)
		shown := cfg.Clone()
		if shown.Passwd != "" {
			shown.Passwd = "xxxxx"
		}
		admin, err := adminConn(ctx, "mysql", d.base, "MySQL at "+shown.FormatDSN(),
			"SELECT GET_LOCK(LEFT(CONCAT('outbox-bench.', ?), 64), 0) = 1", o.namespace)
		if err != nil {
			return nil, err
		}
		for _, q := range []string{"DROP DATABASE IF EXISTS " + o.namespace, "CREATE DATABASE " + o.namespace} {
			if _, err := admin.ExecContext(ctx, q); err != nil {
				admin.Close()
				return nil, fmt.Errorf("%s: %w", q, err)
			}
		}
		cfg.DBName, shown.DBName = o.namespace, o.namespace
		d.dsn, d.display = cfg.FormatDSN(), shown.FormatDSN()
		d.drop = func() error {
			defer admin.Close()
			_, err := admin.ExecContext(context.Background(), "DROP DATABASE "+o.namespace)
			return err
		}
	case "sqlite":
		dir, err := os.MkdirTemp(o.dsn, "outbox-bench-")
		if err != nil {
			return nil, fmt.Errorf("temporary directory for SQLite: %w", err)
		}
		path := filepath.Join(dir, "outbox.db")
		d.dsn, d.display = dbtest.SQLiteDSN(path), path
		d.drop = func() error { return os.RemoveAll(dir) }
	}
	return d, nil
}

// adminSession is the connection that creates and drops a run's namespace.
// It holds a session lock on the namespace for the whole run, so that two
// runs never share one.
type adminSession struct {
	*sql.Conn
	pool *sql.DB
}

// Close ends the session (releasing the lock) and its pool.
func (a *adminSession) Close() {
	_ = a.Conn.Close()
	_ = a.pool.Close()
}

// adminConn connects to dsn and takes the namespace lock with lockQuery
// (which returns true when it got the lock, at once).
func adminConn(ctx context.Context, driver, dsn, what, lockQuery, namespace string) (*adminSession, error) {
	pool, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pool.Conn(pctx)
	if err == nil {
		err = conn.PingContext(pctx)
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: cannot connect (check --dsn, or start the server): %w", what, err)
	}
	a := &adminSession{Conn: conn, pool: pool}
	var got bool
	if err := conn.QueryRowContext(pctx, lockQuery, namespace).Scan(&got); err != nil {
		a.Close()
		return nil, fmt.Errorf("%s: locking the namespace %s: %w", what, namespace, err)
	}
	if !got {
		a.Close()
		return nil, fmt.Errorf("another outbox-bench run is using the namespace %s on %s: wait for it, or give --namespace", namespace, what)
	}
	return a, nil
}

// open returns a new pool on the namespace with at most maxConns
// connections.
func (d *database) open(maxConns int) (*sql.DB, error) {
	db, err := sql.Open(d.driver, d.dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	return db, nil
}

// ---------------------------------------------------------------------------
// The environment of a run

// env is what a scenario runs in: a migrated namespace, an application
// pool on it, and a broker with the run's topics.
type env struct {
	*database
	opts       *commonOpts
	db         *sql.DB // the application's pool
	brokers    []string
	kfake      *kafkatest.Broker // nil with --brokers
	partitions int               // of opts.topic
	log        *slog.Logger      // warn level, to stderr: for the relays
	stderr     io.Writer
	closers    []func()
}

// setup prepares the environment: the namespace (migrated), an application
// pool of poolSize connections, and the broker holding topics (kfake, or
// the --brokers cluster where missing topics are created). With no topics
// it starts no broker.
func setup(ctx context.Context, o *commonOpts, stderr io.Writer, poolSize int, topics ...string) (_ *env, err error) {
	e := &env{opts: o, stderr: stderr}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	e.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.dialect == "mysql" {
		_ = mysql.SetLogger(log.New(stderr, "[mysql] ", log.LstdFlags))
	}
	if e.database, err = openDatabase(ctx, o); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() {
		if err := e.drop(); err != nil {
			fmt.Fprintf(stderr, "dropping the benchmark namespace: %v\n", err)
		}
	})
	// Migrate on a pool of its own: on SQLite the migration lock needs a
	// second connection, which a pool of one would never give.
	mdb, err := e.open(4)
	if err != nil {
		return nil, err
	}
	err = migrations.Up(ctx, mdb, e.dialect)
	mdb.Close()
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	if e.db, err = e.open(poolSize); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { e.db.Close() })
	fmt.Fprintf(stderr, "bench: %s database %s (namespace %s), migrated\n", e.name, e.display, o.namespace)
	if len(topics) == 0 {
		return e, nil
	}
	if o.brokers == "" {
		if e.kfake, err = kafkatest.Start(int32(o.partitions), topics); err != nil {
			return nil, err
		}
		e.closers = append(e.closers, e.kfake.Close)
		e.brokers, e.partitions = e.kfake.Addrs, o.partitions
		fmt.Fprintf(stderr, "bench: in-process kfake broker at %v, topics %v (%d partitions)\n", e.brokers, topics, o.partitions)
		return e, nil
	}
	e.brokers = o.brokerList()
	if e.partitions, err = ensureTopics(e.brokers, o.partitions, topics); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "bench: Kafka at %v, topics %v (%s: %d partitions)\n", e.brokers, topics, o.topic, e.partitions)
	return e, nil
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
func (e *env) header(scenario string) header {
	h := header{
		Scenario: scenario, Dialect: e.opts.dialect, Database: e.display, Namespace: e.opts.namespace,
		Topic: e.opts.topic, Partitions: e.partitions,
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

// ---------------------------------------------------------------------------
// Results

// revision returns the VCS revision the binary was built from, from its
// build information, or else (go run with -buildvcs=false, go test) from
// git in the working directory; "" when neither knows.
var revision = sync.OnceValues(func() (string, bool) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			return rev, dirty
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	// Modified tracked files only: untracked ones are not part of the build
	// of the packages measured, as a rule.
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), err == nil && len(bytes.TrimSpace(st)) > 0
})

// header is the start of every scenario's JSON line.
type header struct {
	Scenario   string `json:"scenario"`
	Dialect    string `json:"dialect"`
	Database   string `json:"database"` // password masked
	Namespace  string `json:"namespace"`
	Broker     string `json:"broker,omitempty"` // "kfake" or the --brokers list
	Topic      string `json:"topic,omitempty"`
	Partitions int    `json:"partitions,omitempty"`
	Go         string `json:"go"`
	CPUs       int    `json:"cpus"`
	Time       string `json:"time"`
	// Revision is the commit of the code measured ("" when unknown), and
	// Dirty whether it had uncommitted changes.
	Revision string `json:"revision"`
	Dirty    bool   `json:"revision_dirty"`
}

// verdict is the end of every scenario's JSON line: whether its own checks
// passed, and what failed.
type verdict struct {
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"`
}

// checks collects failed checks.
type checks struct{ problems []string }

// failf records a failed check.
func (c *checks) failf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// verdict returns the verdict of the checks so far.
func (c *checks) verdict() verdict {
	return verdict{OK: len(c.problems) == 0, Problems: append([]string{}, c.problems...)}
}

// err returns an error wrapping errCheck if a check failed.
func (c *checks) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", errCheck, strings.Join(c.problems, "; "))
}

// emit writes v as one JSON line to w.
func emit(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep DSNs' & readable
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes()) // one line, one write
	return err
}

// round rounds x to the given number of decimals (NaN and Inf become 0, so
// that the line stays valid JSON).
func round(x float64, decimals int) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

// rate returns n per second over d, rounded.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return round(float64(n)/d.Seconds(), 1)
}

// ratio returns a/b rounded, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round(a/b, 3)
}

// secs returns d in seconds, rounded to milliseconds.
func secs(d time.Duration) float64 { return round(d.Seconds(), 3) }

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, or 0 when it is empty.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// mean returns the mean of xs, or 0.
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// ---------------------------------------------------------------------------
// Loading the outbox

// loadSpec describes the messages of a load: keys "key-<i%keys>", random
// values of valueBytes bytes.
type loadSpec struct {
	topic      string
	n          int
	valueBytes int
	keys       int
	numShards  int
}

// load enqueues spec.n messages in transactions of loadTxSize, then
// analyzes the table so that the planner sees its real size.
func (e *env) load(ctx context.Context, spec loadSpec, what string) (time.Duration, error) {
	ob, err := outbox.New(outbox.Config{Dialect: e.dialect, NumShards: spec.numShards})
	if err != nil {
		return 0, err
	}
	keys := make([][]byte, spec.keys)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
	}
	rng := newRand(uint64(spec.n))
	msgs := make([]outbox.Message, 0, loadTxSize)
	start, lastReport := time.Now(), time.Now()
	for i := 0; i < spec.n; {
		m := min(loadTxSize, spec.n-i)
		values := make([]byte, m*spec.valueBytes)
		_, _ = rng.Read(values)
		msgs = msgs[:m]
		for j := range msgs {
			msgs[j] = outbox.Message{Topic: spec.topic, Key: keys[(i+j)%spec.keys], Value: values[j*spec.valueBytes : (j+1)*spec.valueBytes]}
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
	if err := e.analyze(ctx); err != nil {
		return 0, fmt.Errorf("analyzing after the load: %w", err)
	}
	took := time.Since(start)
	fmt.Fprintf(e.stderr, "bench: %s: %d messages enqueued and analyzed in %.1fs\n", what, spec.n, took.Seconds())
	return took, nil
}

// analyze refreshes the planner statistics of the outbox table (and, on
// PostgreSQL, vacuums it).
func (e *env) analyze(ctx context.Context) error {
	var q string
	switch e.name {
	case "postgres":
		q = "VACUUM ANALYZE " + dialect.TableMessages
	case "mysql":
		q = "ANALYZE TABLE " + dialect.TableMessages
	default:
		q = "ANALYZE"
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

// ---------------------------------------------------------------------------
// Secrets

// secrets are the passwords seen in DSNs; scrubWriter masks them.
var secrets struct {
	sync.Mutex
	list []string
}

// registerSecret adds s to the strings masked on stderr.
func registerSecret(s string) {
	if len(s) < 3 { // masking "a" everywhere would garble the output
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	for _, have := range secrets.list {
		if have == s {
			return
		}
	}
	secrets.list = append(secrets.list, s)
}

// scrubWriter serializes writes to w and masks registered secrets in them.
type scrubWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// newScrubWriter wraps w.
func newScrubWriter(w io.Writer) io.Writer {
	if s, ok := w.(*scrubWriter); ok {
		return s
	}
	return &scrubWriter{w: w}
}

// Write writes p, with secrets masked, in one call to the underlying writer.
func (s *scrubWriter) Write(p []byte) (int, error) {
	secrets.Lock()
	out := p
	for _, sec := range secrets.list {
		if bytes.Contains(out, []byte(sec)) {
			out = bytes.ReplaceAll(out, []byte(sec), []byte("xxxxx"))
		}
	}
	secrets.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
