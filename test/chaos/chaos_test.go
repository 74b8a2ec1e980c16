//go:build unix

package chaos

// TestChaos runs, for each dialect, three relay processes, a broker and
// writers (about 150 transactions a second, some held open for seconds),
// with a snapshot held open on another connection all along (dead rows stay), for
// a while, injecting faults on a random schedule that the run prints: two
// overlapping streams of faults, then every kind of fault alone. Then it
// checks every record the broker holds against the ledger tables the
// writers filled in their business transactions, and the timeline of
// commits, deliveries and faults against the liveness bounds
// (limitsFor).
//
// Knobs (environment):
//
//	OUTBOX_CHAOS_DURATION    how long to inject faults per dialect (default 40s;
//	                         give go test a -timeout of about 3x this plus 5m)
//	OUTBOX_CHAOS_SEED        the seed of the schedules and the writers (default: the clock)
//	OUTBOX_CHAOS_RELAY_ARGS  extra flags for every relay, after the suite's own
//	                         (e.g. "--max-attempts 1" to see the checker fail)
//	OUTBOX_CHAOS_RELAY_BIN   a relay binary to run instead of building cmd/relay
//	                         (an older release, or a deliberately broken build)
//	OUTBOX_CHAOS_LOG_DIR     keep the relays' logs there (default: a temporary
//	                         directory, removed after the test; their tails are
//	                         printed when it fails)

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

const (
	topic                 = "chaos.events"
	numPartitions         = 8
	brokerMaxMessageBytes = 64 << 10 // the broker's message.max.bytes
	outboxMaxMessageBytes = 1 << 20  // outbox.Config.MaxMessageBytes: poison passes Enqueue
	poisonBytes           = 96 << 10 // between the two: the broker refuses it for good
	poisonEvery           = 200      // one transaction in this many enqueues a poison message
	numKeys               = 200
	numLateKeys           = 40  // keys of the transactions held open for seconds
	numWriters            = 32  // 2 % of transactions held 2-5 s tie a writer up: enough that the rest keep the rate
	sqliteWriters         = 2   // SQLite has one write lock: more writers only queue for it
	sqliteTxRate          = 50  // and every write, the relays' included, takes it in turn
	txRate                = 150 // business transactions a second, at most
	numRelays             = 3
	leaseDuration         = 3 * time.Second
	sqliteLease           = 10 * time.Second // see limitsFor
	relayBatch            = 250              // the relays' --batch-size: a crash may send one batch again
	calmDuration          = 5 * time.Second  // writers go on without faults at the end
	shutdownTimeout       = 3 * time.Second
	shortDuration         = 40 * time.Second // faults per dialect by default
	recoveryTimeout       = 90 * time.Second // from the writers' end to an empty outbox
)

// relayArgs are the flags of every relay process: short timings, and
// enough attempts that only poison is dead-lettered.
func relayArgs(id string, lease time.Duration) []string {
	args := []string{"run", "--relay-id", id,
		"--lease-duration", lease.String(), "--poll-interval", "100ms",
		"--outage-backoff", "200ms", "--outage-backoff-max", "2s",
		"--retry-backoff", "50ms", "--retry-backoff-max", "1s",
		"--max-attempts", "1000", "--shutdown-timeout", shutdownTimeout.String(),
		"--batch-size", strconv.Itoa(relayBatch),
	}
	// The flag package keeps the last value of a repeated flag.
	return append(args, strings.Fields(os.Getenv("OUTBOX_CHAOS_RELAY_ARGS"))...)
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("fault-injection suite with real relay processes: skipped in -short mode")
	}
	dur := shortDuration
	if v := os.Getenv("OUTBOX_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("OUTBOX_CHAOS_DURATION=%q: want a positive duration such as 10m", v)
		}
		dur = d
	}
	if dl, ok := t.Deadline(); ok {
		// The dialects run in parallel, -parallel at a time: overlapping
		// faults, each kind alone (about 2 minutes a round on SQLite, whose
		// lease is longest), the calm, then drain and checks (a minute).
		batches := 1
		if f := flag.Lookup("test.parallel"); f != nil {
			if p, err := strconv.Atoi(f.Value.String()); err == nil && p > 0 {
				batches = (len(dbtest.Names) + p - 1) / p
			}
		}
		need := time.Duration(batches)*(dur+time.Duration(isolatedRounds(dur))*120*time.Second+20*time.Second+calmDuration) + time.Minute
		if time.Until(dl) < need {
			t.Fatalf("faults of %s need about %s; the test deadline is in %s: run go test with -timeout %s",
				dur, need.Round(time.Second), time.Until(dl).Round(time.Second), (need + 2*time.Minute).Round(time.Minute))
		}
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("OUTBOX_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("OUTBOX_CHAOS_SEED=%q: want an unsigned integer", v)
		}
		seed = s
	}
	t.Logf("faults for %s per dialect; seed %d (OUTBOX_CHAOS_SEED=%d repeats the schedules); extra relay flags %q",
		dur, seed, seed, os.Getenv("OUTBOX_CHAOS_RELAY_ARGS"))
	// The writers' pools see their connections killed: keep the MySQL
	// driver's own log lines about it out of the output.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	bin := relayBinary(t)
	for i, name := range dbtest.Names {
		t.Run(string(name), func(t *testing.T) {
			t.Parallel()
			runChaos(t, string(name), bin, dur, seed+uint64(i)*1000)
		})
	}
}

// harness is one dialect's run.
type harness struct {
	t       *testing.T
	name    string
	db      *dbtest.DB
	admin   *sql.Conn // monitoring and connection kills; never killed itself
	dir     string
	bin     string
	appName string // PostgreSQL application_name of the relays and writers
	dbURL   string // the relays' OUTBOX_DATABASE_URL
	start   time.Time
	broker  *broker
	relays  *relays
	writers *writers
	limits  limits // the relays' lease and the liveness bounds

	faults     atomic.Int64 // faults injected
	killedConn atomic.Int64 // database connections killed
	mu         sync.Mutex
	schedule   []string       // the faults as they were injected
	windows    []*faultWindow // and when each began and ended
}

// elapsed is the time since the start of the run, for the logs.
func (h *harness) elapsed() float64 { return time.Since(h.start).Seconds() }

func (h *harness) logf(format string, args ...any) {
	h.t.Logf("%s t=%.1fs: %s", h.name, h.elapsed(), fmt.Sprintf(format, args...))
}

// fault logs and counts one injected fault of kind, and opens its window
// in the timeline; ended closes it.
func (h *harness) fault(kind, format string, args ...any) *faultWindow {
	line := fmt.Sprintf("fault t=%.1fs: %s", h.elapsed(), fmt.Sprintf(format, args...))
	h.faults.Add(1)
	f := &faultWindow{kind: kind, start: time.Now()}
	h.mu.Lock()
	h.schedule = append(h.schedule, line)
	h.windows = append(h.windows, f)
	h.mu.Unlock()
	h.t.Logf("%s %s", h.name, line)
	return f
}

// ended records the end of fault f, which cut off cut relays in the middle
// of their work.
func (h *harness) ended(f *faultWindow, cut int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f.end, f.cut = time.Now(), cut
}

// faultWindows returns the faults injected so far.
func (h *harness) faultWindows() []faultWindow {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]faultWindow, 0, len(h.windows))
	for _, f := range h.windows {
		out = append(out, *f)
	}
	return out
}

func runChaos(t *testing.T, name, bin string, dur time.Duration, seed uint64) {
	// A database of its own: the snapshot held all along would make the
	// migrations of other tests wait (CREATE INDEX CONCURRENTLY).
	db := dbtest.OpenOwnDatabase(t, dialect.Name(name))
	dir := t.TempDir()
	if keep := os.Getenv("OUTBOX_CHAOS_LOG_DIR"); keep != "" {
		dir = filepath.Join(keep, fmt.Sprintf("%s-%s", name, time.Now().Format("150405")))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("relay logs in %s", dir)
	}
	h := &harness{t: t, name: name, db: db, dir: dir, bin: bin, start: time.Now(), limits: limitsFor(name),
		appName: "chaos_" + strconv.FormatUint(seed%1e9, 36) + "_" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)}
	ctx := context.Background()
	admin, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	h.admin = admin
	h.dbURL = h.relayDatabaseURL()
	if err := h.createTables(ctx); err != nil {
		t.Fatalf("creating the ledger tables: %v", err)
	}

	h.broker, err = startBroker(t.TempDir(), seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.broker.stop)
	h.logf("broker on %s: topic %s, %d partitions, message.max.bytes %d", h.broker.addr(), topic, numPartitions, brokerMaxMessageBytes)

	h.relays = newRelays(h)
	t.Cleanup(h.relays.cleanup) // runs before the broker stops
	for i := 1; i <= numRelays; i++ {
		h.relays.start(fmt.Sprintf("relay-%d", i))
	}

	snap := startSnapshotHolder(h)
	t.Cleanup(func() { snap.stop() }) // idempotent

	h.writers, err = startWriters(h, seed+1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.writers.stop) // idempotent

	// Let the relays settle in before the first fault.
	waitUntil(20*time.Second, func() bool { return h.writers.commits.Load() > 50 })
	h.logf("faults start (%s); %d transactions committed so far", dur, h.writers.commits.Load())
	h.runFaults(dur, seed+2)
	settle := h.limits.recovery + max(h.limits.lease, h.limits.outage)
	h.logf("overlapping faults over: %d injected; each kind alone after %s", h.faults.Load(), settle)
	time.Sleep(settle)
	h.runIsolated(isolatedRounds(dur), seed+3)
	h.logf("faults over: %d injected; the writers go on for %s", h.faults.Load(), calmDuration)
	time.Sleep(calmDuration)

	h.writers.stop()
	writersEnd := time.Now()
	h.logf("writers stopped: %s", h.writers.summary())

	recovered, drained := h.waitDrained(writersEnd, recoveryTimeout)
	if drained {
		h.logf("outbox empty %.1fs after the writers stopped", recovered.Seconds())
	} else {
		t.Errorf("%s: the outbox is not empty %s after the writers stopped: %s", name, recoveryTimeout, h.pendingDetails(ctx))
	}

	h.relays.stopAll()
	if held, reopened := snap.stop(); held > 0 {
		h.logf("a snapshot was held open %.0fs of the run (taken again %d times after connection kills)", held.Seconds(), reopened)
	}

	// Restart the broker once more: everything it acknowledged must be
	// read back from its data directory.
	h.broker.stop()
	if err := h.broker.start(); err != nil {
		t.Fatalf("final broker restart: %v", err)
	}
	h.check(ctx, recovered, drained)
}

// relayDatabaseURL is OUTBOX_DATABASE_URL for the relays.
func (h *harness) relayDatabaseURL() string {
	switch h.name {
	case "postgres":
		u, err := url.Parse(h.db.DSN)
		if err != nil {
			h.t.Fatalf("dbtest's postgres DSN is not a URL")
		}
		q := u.Query()
		if q.Get("sslmode") == "" {
			q.Set("sslmode", "disable")
		}
		q.Set("application_name", h.appName)
		u.RawQuery = q.Encode()
		return u.String()
	case "mysql":
		c, err := mysql.ParseDSN(h.db.DSN)
		if err != nil {
			h.t.Fatalf("dbtest's mysql DSN: %v", err)
		}
		u := &url.URL{Scheme: "mysql", Host: c.Addr, Path: "/" + c.DBName}
		if c.Passwd != "" {
			u.User = url.UserPassword(c.User, c.Passwd)
		} else if c.User != "" {
			u.User = url.User(c.User)
		}
		return u.String()
	case "sqlite":
		path, _, _ := strings.Cut(strings.TrimPrefix(h.db.DSN, "file:"), "?")
		return "sqlite:" + path
	}
	h.t.Fatalf("unknown dialect %q", h.name)
	return ""
}

// writerDSN is the DSN of a writer's own pool: on PostgreSQL it carries the
// application_name the connection kills look for.
func (h *harness) writerDSN() string {
	if h.name != "postgres" {
		return h.db.DSN
	}
	u, err := url.Parse(h.db.DSN)
	if err != nil {
		h.t.Fatalf("dbtest's postgres DSN is not a URL")
	}
	q := u.Query()
	q.Set("application_name", h.appName)
	u.RawQuery = q.Encode()
	return u.String()
}

// q rewrites ? placeholders as $n on PostgreSQL.
func (h *harness) q(s string) string {
	if h.name != "postgres" {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (h *harness) createTables(ctx context.Context) error {
	text := "TEXT"
	if h.name == "mysql" {
		text = "VARCHAR(64)"
	}
	for _, stmt := range []string{
		"CREATE TABLE chaos_keys (k " + text + " PRIMARY KEY, seq BIGINT NOT NULL)",
		"CREATE TABLE chaos_ledger (msg_id " + text + " PRIMARY KEY, k " + text + " NOT NULL, seq BIGINT NOT NULL)",
		"CREATE TABLE chaos_poison (msg_id " + text + " PRIMARY KEY, k " + text + " NOT NULL)",
	} {
		if _, err := h.admin.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	var b strings.Builder
	args := make([]any, 0, numKeys+numLateKeys)
	b.WriteString("INSERT INTO chaos_keys (k, seq) VALUES ")
	for i := range numKeys + numLateKeys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, 0)")
		args = append(args, keyName(i))
	}
	_, err := h.admin.ExecContext(ctx, h.q(b.String()), args...)
	return err
}

func keyName(i int) string { return fmt.Sprintf("key-%03d", i) }

// count runs a COUNT query on the admin connection.
func (h *harness) count(ctx context.Context, query string) (int64, error) {
	var n int64
	err := h.admin.QueryRowContext(ctx, query).Scan(&n)
	return n, err
}

// waitDrained waits until the outbox is empty and returns the time since
// faultsEnd. Relays that crashed meanwhile are reported and restarted.
func (h *harness) waitDrained(faultsEnd time.Time, timeout time.Duration) (time.Duration, bool) {
	deadline := faultsEnd.Add(timeout)
	lastLog := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := h.count(ctx, "SELECT COUNT(*) FROM outbox_messages")
		cancel()
		if err == nil && n == 0 {
			return time.Since(faultsEnd), true
		}
		if time.Now().After(deadline) {
			return time.Since(faultsEnd), false
		}
		if time.Since(lastLog) > 10*time.Second {
			h.logf("waiting for the outbox to drain: %d rows pending (err %v)", n, err)
			lastLog = time.Now()
		}
		h.relays.revive()
		time.Sleep(200 * time.Millisecond)
	}
}

// pendingDetails describes what is left in the outbox.
func (h *harness) pendingDetails(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var n, maxAttempts sql.NullInt64
	var shards sql.NullInt64
	err := h.admin.QueryRowContext(ctx, "SELECT COUNT(*), MAX(attempts), COUNT(DISTINCT shard) FROM outbox_messages").Scan(&n, &maxAttempts, &shards)
	if err != nil {
		return fmt.Sprintf("reading the outbox: %v", err)
	}
	var owners []string
	rows, err := h.admin.QueryContext(ctx, "SELECT COALESCE(owner, '-'), COUNT(*) FROM outbox_shards GROUP BY owner")
	if err == nil {
		for rows.Next() {
			var o string
			var c int
			if rows.Scan(&o, &c) == nil {
				owners = append(owners, fmt.Sprintf("%s:%d", o, c))
			}
		}
		rows.Close()
	}
	return fmt.Sprintf("%d rows pending in %d shards, max attempts %d; shard owners %v", n.Int64, shards.Int64, maxAttempts.Int64, owners)
}

// waitUntil polls cond every 50ms until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// sleepUntil sleeps until t (or not at all if t has passed).
func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}
