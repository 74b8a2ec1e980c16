package main

// End-to-end tests of the relay binary: they build it once, run it as
// separate processes against the real local databases and an in-process
// Kafka-protocol broker, and check what reaches the topic, the exit
// statuses and the logs.

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/internal/proctest"
	"github.com/outboxrelay/outbox/internal/verify"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

const (
	e2eTopic = "e2e.orders"
	// e2ePayloadMarker is in every message value; it must never reach the logs.
	e2ePayloadMarker = "PAYLOAD-MARKER-d41d8cd98f00"
	// e2eShutdownTimeout is the --shutdown-timeout of the e2e relays.
	e2eShutdownTimeout = 5 * time.Second
)

// relayBin is the relay binary under test, built once per test binary.
var relayBin = &proctest.Binary{Package: "github.com/outboxrelay/outbox/cmd/relay"}

func TestMain(m *testing.M) { proctest.Main(m, relayBin) }

// relayBinary builds the relay once per test binary and returns its path.
func relayBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test of the built binary: skipped in -short mode")
	}
	return relayBin.Path(t)
}

// proc is a running relay process and its output.
type proc struct {
	*proctest.Proc
	name           string
	stdout, stderr proctest.Buffer
}

// startRelay starts the binary with args and env (KEY=VALUE) on top of the
// test's environment stripped of OUTBOX_* variables. The process is killed
// at cleanup if it is still running.
func startRelay(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	bin := relayBinary(t)
	p := &proc{name: name}
	cmd := exec.Command(bin, args...)
	cmd.Env = proctest.Env("OUTBOX_", env...)
	cmd.Stdout = &p.stdout
	cmd.Stderr = &p.stderr
	var err error
	if p.Proc, err = proctest.Start(cmd); err != nil {
		t.Fatalf("%s: start: %v", name, err)
	}
	t.Cleanup(func() {
		if p.Kill(10 * time.Second) {
			t.Errorf("%s: still running at the end of the test: killed\nstderr:\n%s", name, p.stderr.String())
		}
	})
	return p
}

func (p *proc) signal(t *testing.T, s os.Signal) {
	t.Helper()
	if err := p.Signal(s); err != nil {
		t.Fatalf("%s: signal %v: %v", p.name, s, err)
	}
}

// wait waits up to timeout for the process to exit and returns its exit
// status, failing the test when it does not exit in time.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	if !p.Wait(timeout) {
		t.Fatalf("%s: did not exit within %s\nstderr:\n%s", p.name, timeout, p.stderr.String())
	}
	return p.ExitCode()
}

// runRelay runs the binary to completion (at most timeout) and returns its exit
// status.
func runRelay(t *testing.T, name string, env []string, timeout time.Duration, args ...string) *proc {
	t.Helper()
	p := startRelay(t, name, env, args...)
	p.wait(t, timeout)
	return p
}

// logLines parses the process's stderr as JSON lines, failing the test on a
// line that is not JSON.
func logLines(t *testing.T, p *proc) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("%s: stderr line is not JSON: %q", p.name, sc.Text())
			continue
		}
		out = append(out, m)
	}
	return out
}

func countMsg(lines []map[string]any, msg string) int {
	n := 0
	for _, l := range lines {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// databaseURL returns the URL the binary takes for db, and the password in
// it ("" when none).
func databaseURL(t *testing.T, name dialect.Name, db *dbtest.DB) (string, string) {
	t.Helper()
	switch name {
	case "postgres":
		// dbtest's DSN is a postgres:// URL isolating the test with a
		// search_path parameter, which lib/pq sends as a run-time parameter.
		u, err := url.Parse(db.DSN)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			t.Fatalf("dbtest's postgres DSN is not a postgres:// URL")
		}
		q := u.Query()
		if q.Get("sslmode") == "" {
			q.Set("sslmode", "disable")
			u.RawQuery = q.Encode()
		}
		pw, _ := u.User.Password()
		return u.String(), pw
	case "mysql":
		c, err := mysql.ParseDSN(db.DSN)
		if err != nil {
			t.Fatalf("dbtest's mysql DSN: %v", err)
		}
		u := &url.URL{Scheme: "mysql", Host: c.Addr, Path: "/" + c.DBName}
		if c.Passwd != "" {
			u.User = url.UserPassword(c.User, c.Passwd)
		} else if c.User != "" {
			u.User = url.User(c.User)
		}
		return u.String(), c.Passwd
	case "sqlite":
		path, _, _ := strings.Cut(strings.TrimPrefix(db.DSN, "file:"), "?")
		return "sqlite:" + path, ""
	}
	t.Fatalf("unknown dialect %q", name)
	return "", ""
}

// writer enqueues messages over a fixed set of keys in committed and
// rolled-back transactions, one transaction at a time, recording them in
// the ledger.
type writer struct {
	db        *sql.DB
	ob        *outbox.Outbox
	ledger    *verify.Ledger
	rng       *rand.Rand
	seq       map[string]int // key -> messages of the key committed so far
	keys      int
	committed int
}

// enqueue writes n messages (committed and rolled back) and returns how
// many committed.
func (w *writer) enqueue(t *testing.T, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := 0
	for sent := 0; sent < n; {
		size := min(1+w.rng.IntN(5), n-sent)
		abort := w.rng.IntN(8) == 0
		next := map[string]int{}
		msgs := make([]outbox.Message, size)
		for i := range msgs {
			key := fmt.Sprintf("customer-%02d", w.rng.IntN(w.keys))
			next[key]++
			s := w.seq[key] + next[key]
			msgs[i] = outbox.Message{
				ID: outbox.NewMessageID(), Topic: e2eTopic, Key: []byte(key),
				Value: fmt.Appendf(nil, `{"marker":%q,"customer":%q,"seq":%d}`, e2ePayloadMarker, key, s),
			}
			if abort {
				w.ledger.RolledBack(msgs[i].ID)
			} else {
				w.ledger.Committed(msgs[i].ID, key, s)
			}
		}
		tx, err := w.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatalf("begin: %v", err)
		}
		if err := w.ob.Enqueue(ctx, tx, msgs...); err != nil {
			tx.Rollback()
			t.Fatalf("enqueue: %v", err)
		}
		if abort {
			if err := tx.Rollback(); err != nil {
				t.Fatalf("rollback: %v", err)
			}
		} else {
			if err := tx.Commit(); err != nil {
				t.Fatalf("commit: %v", err)
			}
			for k, v := range next {
				w.seq[k] += v
			}
			done += size
		}
		sent += size
	}
	w.committed += done
	return done
}

// TestE2ERun runs two relay processes per dialect against one database and
// checks that every committed message reaches the topic in key order, that
// no rolled-back one does, that both stop with status 0 on SIGTERM, and
// what they log.
func TestE2ERun(t *testing.T) {
	relayBinary(t)
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		e2eRun(t, name)
	})
}

func e2eRun(t *testing.T, name dialect.Name) {
	db := dbtest.Open(t, name)
	dbURL, password := databaseURL(t, name, db)
	broker, err := localkafka.Start(4, []string{e2eTopic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)

	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	ledger := verify.New()
	w := &writer{db: db.DB, ob: ob, ledger: ledger, rng: rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano()))),
		seq: map[string]int{}, keys: 40}
	w.enqueue(t, 500)

	consumer, err := localkafka.NewConsumer(broker.Addrs, e2eTopic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(consumer.Close)
	cctx, stopConsumer := context.WithCancel(context.Background())
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			for _, r := range consumer.Poll(cctx) {
				ledger.Observe(string(localkafka.Header(r, outbox.HeaderID)))
			}
		}
	}()
	t.Cleanup(func() { stopConsumer(); <-consumed })

	env := []string{
		"OUTBOX_DATABASE_URL=" + dbURL,
		"OUTBOX_KAFKA_BROKERS=" + strings.Join(broker.Addrs, ","),
		"OUTBOX_LOG_FORMAT=json",
	}
	args := []string{"run", "--poll-interval", "50ms", "--lease-duration", "3s", "--shutdown-timeout", e2eShutdownTimeout.String()}
	relays := []*proc{
		startRelay(t, string(name)+"-relay-1", env, append(args, "--relay-id", "e2e-1")...),
		startRelay(t, string(name)+"-relay-2", env, append(args, "--relay-id", "e2e-2")...),
	}
	dump := func() string {
		var b strings.Builder
		for _, p := range relays {
			fmt.Fprintf(&b, "--- %s stderr:\n%s", p.name, p.stderr.String())
		}
		return b.String()
	}
	waitPublished := func(what string) {
		t.Helper()
		start := time.Now()
		ok := waitFor(60*time.Second, func() bool {
			for _, p := range relays {
				if p.Exited() {
					return true
				}
			}
			return ledger.Published() >= w.committed
		})
		for _, p := range relays {
			if p.Exited() {
				t.Fatalf("%s exited early with status %d\n%s", p.name, p.ExitCode(), dump())
			}
		}
		if !ok {
			t.Fatalf("%s: not all committed messages published within 60s: %s\n%s", what, ledger.Summary(), dump())
		}
		t.Logf("%s: %d committed messages published in %s", what, w.committed, time.Since(start).Round(time.Millisecond))
	}
	waitPublished("first batch")

	// The relays split the shards between them: 32 each.
	shares := map[string]int{}
	balanced := waitFor(20*time.Second, func() bool {
		rows, err := db.Query("SELECT owner, COUNT(*) FROM " + dialect.TableShards + " WHERE owner IS NOT NULL GROUP BY owner")
		if err != nil {
			t.Logf("reading the shard owners: %v", err)
			return false
		}
		defer rows.Close()
		clear(shares)
		for rows.Next() {
			var owner string
			var n int
			if err := rows.Scan(&owner, &n); err != nil {
				t.Logf("reading the shard owners: %v", err)
				return false
			}
			shares[owner] = n
		}
		return rows.Err() == nil && shares["e2e-1"] == 32 && shares["e2e-2"] == 32
	})
	if !balanced {
		t.Fatalf("shard owners %v within 20s; want 32 shards for each relay\n%s", shares, dump())
	}

	// More while the relays run.
	w.enqueue(t, 200)
	waitPublished("second batch")

	for _, p := range relays {
		p.signal(t, syscall.SIGTERM)
	}
	for _, p := range relays {
		if code := p.wait(t, e2eShutdownTimeout+5*time.Second); code != 0 {
			t.Errorf("%s: exit status %d after SIGTERM, want 0\n%s", p.name, code, p.stderr.String())
		}
	}

	stopConsumer()
	<-consumed
	s := ledger.Summary()
	t.Logf("%s: %s", name, s)
	if !s.OK() || s.Committed != w.committed || s.RolledBack == 0 {
		t.Errorf("ledger: %s unknown=%d rolled_back=%d (want committed=%d, nothing lost, reordered or unknown, some rolled back)",
			s, s.Unknown, s.RolledBack, w.committed)
	}

	for _, p := range relays {
		logs := p.stderr.String()
		if strings.Contains(logs, e2ePayloadMarker) {
			t.Errorf("%s: the logs show message payloads", p.name)
		}
		if password != "" && strings.Contains(logs, password) {
			t.Errorf("%s: the logs show the database password", p.name)
		}
		lines := logLines(t, p)
		for _, l := range lines {
			if l["msg"] == "outbox relay stopped" {
				t.Logf("%s published %v", p.name, l["published"])
				if n, _ := l["published"].(float64); n == 0 {
					t.Errorf("%s published nothing, though it held half the shards during the second batch", p.name)
				}
			}
		}
		for _, msg := range []string{"relay starting", "signal received: stopping (send it again to exit at once)", "outbox relay stopped"} {
			if countMsg(lines, msg) != 1 {
				t.Errorf("%s: %d log lines %q, want 1", p.name, countMsg(lines, msg), msg)
			}
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, logs)
		}
	}
}

// TestE2ESecretNotLogged starts the relay against an unreachable database
// whose URL holds a password: it must log its retries (not crash-loop or
// spin), never show the password, and exit 0 on SIGTERM.
func TestE2ESecretNotLogged(t *testing.T) {
	t.Parallel()
	const password = "SuperSecret123"
	p := startRelay(t, "relay-unreachable", []string{
		"OUTBOX_DATABASE_URL=postgres://user:" + password + "@127.0.0.1:1/x",
		"OUTBOX_KAFKA_BROKERS=127.0.0.1:1",
		"OUTBOX_LOG_FORMAT=json",
	}, "run")
	time.Sleep(2 * time.Second)
	if p.Exited() {
		t.Fatalf("exited with status %d instead of retrying\n%s", p.ExitCode(), p.stderr.String())
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	logs := p.stderr.String() + p.stdout.String()
	if strings.Contains(logs, password) {
		t.Errorf("the output shows the database password:\n%s", logs)
	}
	lines := logLines(t, p)
	if countMsg(lines, "relay starting") != 1 {
		t.Errorf("no (or several) \"relay starting\" lines")
	}
	retries := countMsg(lines, "database unreachable; retrying")
	if retries < 1 || len(lines) > 8 {
		t.Errorf("%d retry lines, %d lines in all in 2s: want at least one retry and a handful of lines\n%s", retries, len(lines), logs)
	}
}

// TestE2EMigrate runs relay migrate twice against a fresh empty database of
// each dialect.
func TestE2EMigrate(t *testing.T) {
	relayBinary(t)
	re := regexp.MustCompile(`^migrate: (\S+): applied (\d+), schema version (\d+)\n$`)
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		db := dbtest.OpenEmpty(t, name)
		dbURL, password := databaseURL(t, name, db)
		env := []string{"OUTBOX_DATABASE_URL=" + dbURL}
		var versions []string
		for i, wantApplied := range []string{"", "0"} {
			p := runRelay(t, fmt.Sprintf("%s-migrate-%d", name, i+1), env, 60*time.Second, "migrate")
			if code := p.ExitCode(); code != 0 {
				t.Fatalf("run %d: exit status %d\nstdout: %s\nstderr: %s", i+1, code, p.stdout.String(), p.stderr.String())
			}
			m := re.FindStringSubmatch(p.stdout.String())
			if m == nil {
				t.Fatalf("run %d: stdout %q does not match %s", i+1, p.stdout.String(), re)
			}
			if password != "" && strings.Contains(p.stdout.String()+p.stderr.String(), password) {
				t.Errorf("run %d: the output shows the database password", i+1)
			}
			if n, _ := strconv.Atoi(m[2]); (wantApplied == "" && n == 0) || (wantApplied != "" && m[2] != wantApplied) {
				t.Errorf("run %d: applied %s migrations; want some the first time and 0 the second", i+1, m[2])
			}
			versions = append(versions, m[3])
		}
		if versions[0] != versions[1] || versions[0] == "0" {
			t.Errorf("schema versions %v: want the same non-zero version twice", versions)
		}
		// The tables are there and usable.
		ob, err := outbox.New(outbox.Config{Dialect: db.Dialect})
		if err != nil {
			t.Fatal(err)
		}
		if err := ob.Enqueue(context.Background(), db.DB, outbox.Message{Topic: e2eTopic, Key: []byte("k"), Value: []byte("v")}); err != nil {
			t.Errorf("enqueue after relay migrate: %v", err)
		}
	})
}

// TestE2ESecondSignal checks that a second signal while the relay waits for
// its batch in flight exits at once. The broker never answers Produce
// requests, so after the first SIGTERM the relay keeps waiting (for up to
// --shutdown-timeout, here far longer than the test) until the second.
func TestE2ESecondSignal(t *testing.T) {
	t.Parallel()
	relayBinary(t)
	db := dbtest.Open(t, "sqlite")
	dbURL, _ := databaseURL(t, "sqlite", db)
	broker, err := localkafka.Start(1, []string{e2eTopic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	produced := make(chan struct{})
	var once sync.Once
	broker.Cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		broker.Cluster.KeepControl()
		once.Do(func() { close(produced) })
		return nil, nil, true // no response: the producer waits
	})

	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Enqueue(context.Background(), db.DB, outbox.Message{Topic: e2eTopic, Key: []byte("k"), Value: []byte(e2ePayloadMarker)}); err != nil {
		t.Fatal(err)
	}
	p := startRelay(t, "relay-stuck", []string{
		"OUTBOX_DATABASE_URL=" + dbURL,
		"OUTBOX_KAFKA_BROKERS=" + strings.Join(broker.Addrs, ","),
		"OUTBOX_LOG_FORMAT=json",
	}, "run", "--poll-interval", "50ms", "--shutdown-timeout", "2m", "--publish-timeout", "2m")

	select {
	case <-produced:
	case <-p.Done():
		t.Fatalf("exited with status %d\n%s", p.ExitCode(), p.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no Produce request within 30s\n%s", p.stderr.String())
	}
	p.signal(t, syscall.SIGTERM)
	if !waitFor(10*time.Second, func() bool { return strings.Contains(p.stderr.String(), "signal received") }) {
		t.Fatalf("no \"signal received\" line within 10s\n%s", p.stderr.String())
	}
	time.Sleep(300 * time.Millisecond)
	if p.Exited() {
		t.Fatalf("exited (status %d) while its batch was in flight: the test cannot check the second signal\n%s",
			p.ExitCode(), p.stderr.String())
	}
	start := time.Now()
	p.signal(t, syscall.SIGINT)
	code := p.wait(t, 5*time.Second)
	t.Logf("exited %s after the second signal, status %d", time.Since(start).Round(time.Millisecond), code)
	if code == 0 {
		t.Errorf("exit status 0 after a second signal; want non-zero")
	}
	if !strings.Contains(p.stderr.String(), "second signal") {
		t.Errorf("no \"second signal\" line:\n%s", p.stderr.String())
	}
	if strings.Contains(p.stderr.String(), e2ePayloadMarker) {
		t.Errorf("the logs show message payloads")
	}
}

// TestE2EKafkaAuthFailure checks that a relay whose Kafka credentials are
// refused says so and exits 1, without showing the password: against a
// broker that answers SASL_AUTHENTICATION_FAILED as Kafka does, and against
// one that just closes the connection (kfake, some proxies).
func TestE2EKafkaAuthFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		answer bool
	}{{"answers SASL_AUTHENTICATION_FAILED", true}, {"closes the connection", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const password = "WrongPassword99"
			db := dbtest.Open(t, "sqlite")
			dbURL, _ := databaseURL(t, "sqlite", db)
			broker, err := localkafka.Start(1, []string{e2eTopic}, kfake.EnableSASL(), kfake.Superuser("PLAIN", "relay", "right-password"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(broker.Close)
			if tc.answer {
				broker.Cluster.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
					broker.Cluster.KeepControl()
					resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
					resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
					msg := "Authentication failed: Invalid username or password"
					resp.ErrorMessage = &msg
					return resp, nil, true
				})
			}
			p := startRelay(t, "relay-bad-sasl", []string{
				"OUTBOX_DATABASE_URL=" + dbURL,
				"OUTBOX_KAFKA_BROKERS=" + strings.Join(broker.Addrs, ","),
				"OUTBOX_KAFKA_SASL_PASSWORD=" + password,
				"OUTBOX_LOG_FORMAT=json",
			}, "run", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-user", "relay")
			code := p.wait(t, 30*time.Second)
			logs := p.stderr.String()
			if code != 1 || !strings.Contains(logs, "SASL authentication failed") {
				t.Errorf("exit status %d; want 1 with the SASL failure on stderr:\n%s", code, logs)
			}
			if strings.Contains(logs, password) {
				t.Errorf("stderr shows the SASL password:\n%s", logs)
			}
		})
	}
}

// TestE2ESilentBroker: a broker that accepts connections and never answers
// gets a log line within 15s of the start, and more while it stays silent.
func TestE2ESilentBroker(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() }) // read nothing, answer nothing
		}
	}()
	db := dbtest.Open(t, "sqlite")
	dbURL, _ := databaseURL(t, "sqlite", db)
	p := startRelay(t, "relay-silent-broker", []string{
		"OUTBOX_DATABASE_URL=" + dbURL,
		"OUTBOX_KAFKA_BROKERS=" + ln.Addr().String(),
		"OUTBOX_LOG_FORMAT=json",
	}, "run")
	start := time.Now()
	for !strings.Contains(p.stderr.String(), "Kafka does not answer yet") {
		if time.Since(start) > 15*time.Second {
			t.Fatalf("no line about the silent broker within 15s:\n%s", p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("first line about the silent broker after %s", time.Since(start).Round(100*time.Millisecond))
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, p.stderr.String())
	}
}

// TestE2EShutdownBoundedWithStuckBroker checks that the relay exits within
// --shutdown-timeout (plus slack) of SIGTERM even when the broker never
// answers the batch in flight.
func TestE2EShutdownBoundedWithStuckBroker(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, "sqlite")
	dbURL, _ := databaseURL(t, "sqlite", db)
	broker, err := localkafka.Start(1, []string{e2eTopic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	produced := make(chan struct{})
	var once sync.Once
	broker.Cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		broker.Cluster.KeepControl()
		once.Do(func() { close(produced) })
		return nil, nil, true // no response: the producer waits
	})
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Enqueue(context.Background(), db.DB, outbox.Message{Topic: e2eTopic, Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	const shutdown = 2 * time.Second
	p := startRelay(t, "relay-stuck-shutdown", []string{
		"OUTBOX_DATABASE_URL=" + dbURL,
		"OUTBOX_KAFKA_BROKERS=" + strings.Join(broker.Addrs, ","),
		"OUTBOX_LOG_FORMAT=json",
	}, "run", "--poll-interval", "50ms", "--shutdown-timeout", shutdown.String())
	select {
	case <-produced:
	case <-p.Done():
		t.Fatalf("exited with status %d\n%s", p.ExitCode(), p.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no Produce request within 30s\n%s", p.stderr.String())
	}
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, shutdown+5*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	t.Logf("exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// TestE2EDatabaseRefused: credentials the database refuses, or a database
// that does not exist, end relay run with status 1 and a clear error at
// once (waiting cannot fix them), without the password.
func TestE2EDatabaseRefused(t *testing.T) {
	relayBinary(t)
	const password = "WrongPassword987"
	cases := map[string]string{
		"mysql wrong password":      "mysql://root:" + password + "@127.0.0.1:3306/test",
		"mysql unknown database":    "mysql://root@127.0.0.1:3306/outbox_no_such_db",
		"postgres unknown role":     "postgres://no_such_role_x:" + password + "@127.0.0.1:5432/test?sslmode=disable",
		"postgres unknown database": "postgres://postgres@127.0.0.1:5432/outbox_no_such_db?sslmode=disable",
	}
	for name, url := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := startRelay(t, "relay-refused", []string{"OUTBOX_DATABASE_URL=" + url, "OUTBOX_KAFKA_BROKERS=127.0.0.1:1"}, "run")
			if code := p.wait(t, 20*time.Second); code != 1 {
				t.Fatalf("exit status %d, want 1\n%s", code, p.stderr.String())
			}
			out := p.stderr.String() + p.stdout.String()
			if !strings.Contains(out, "refused the connection") {
				t.Errorf("no clear error:\n%s", out)
			}
			if strings.Contains(out, password) {
				t.Errorf("the output shows the password:\n%s", out)
			}
		})
	}
}

// TestE2EBrokerUnreachable: a relay whose database is fine but whose broker
// is not there waits for it with a few log lines, and stops cleanly.
func TestE2EBrokerUnreachable(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	dbURL, _ := databaseURL(t, "sqlite", db)
	p := startRelay(t, "relay-no-broker", []string{"OUTBOX_DATABASE_URL=" + dbURL, "OUTBOX_KAFKA_BROKERS=127.0.0.1:1", "OUTBOX_LOG_FORMAT=json"}, "run")
	time.Sleep(3 * time.Second)
	if p.Exited() {
		t.Fatalf("exited with status %d instead of waiting for the broker\n%s", p.ExitCode(), p.stderr.String())
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	lines := logLines(t, p)
	retries := countMsg(lines, "Kafka unreachable; retrying")
	if retries < 1 || len(lines) > 10 {
		t.Errorf("%d retry lines, %d lines in all in 3s: want at least one retry and a handful of lines\n%s", retries, len(lines), p.stderr.String())
	}
}
