package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/internal/proctest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// TestMain lets the test binary act as the relay child of the memory and
// idle scenarios: they re-execute os.Executable(), which under go test is
// this binary, with the child command and OUTBOX_BENCH_CHILD=1.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// run runs the command line in process and returns its exit status, its
// stdout and its stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr proctest.Buffer
	code := realMain(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// runScenario runs a scenario that must succeed and returns its JSON line,
// decoded.
func runScenario(t *testing.T, args ...string) map[string]any {
	t.Helper()
	start := time.Now()
	code, stdout, stderr := run(t, args...)
	t.Logf("%s: exit %d in %.1fs", strings.Join(args, " "), code, time.Since(start).Seconds())
	if code != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if len(lines) != 1 || lines[0] == "" {
		t.Fatalf("want exactly one line on stdout, got %d:\n%s", len(lines), stdout)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	for _, k := range []string{"scenario", "dialect", "go", "cpus", "time", "revision", "ok", "problems"} {
		if _, ok := res[k]; !ok {
			t.Errorf("field %q missing from %s", k, lines[0])
		}
	}
	if res["scenario"] != args[0] || res["ok"] != true || res["go"] != runtime.Version() || res["cpus"] != float64(runtime.NumCPU()) {
		t.Errorf("bad header fields in %s", lines[0])
	}
	if _, err := time.Parse(time.RFC3339, str(res["time"])); err != nil {
		t.Errorf("time: %v", err)
	}
	if strings.Contains(stdout, "password") {
		t.Errorf("the output mentions a password: %s", stdout)
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr)
	}
	return res
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// num returns the number at the dotted path in res, failing if there is
// none.
func num(t *testing.T, res map[string]any, path string) float64 {
	t.Helper()
	var v any = res
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object at %q", path, k)
		}
		v = m[k]
	}
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%s: want a number, got %#v", path, v)
	}
	return f
}

// want checks a condition on a figure.
func want(t *testing.T, res map[string]any, path string, ok func(float64) bool, what string) {
	t.Helper()
	if v := num(t, res, path); !ok(v) {
		t.Errorf("%s = %v, want %s", path, v, what)
	}
}

func positive(v float64) bool { return v > 0 }
func zero(v float64) bool     { return v == 0 }
func atLeast(n float64) func(float64) bool {
	return func(v float64) bool { return v >= n }
}
func equal(n float64) func(float64) bool {
	return func(v float64) bool { return v == n }
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"nope"}, 2},
		{[]string{"help"}, 0},
		{[]string{"drain", "--help"}, 0},
		{[]string{"latency", "-h"}, 0},
		{[]string{"drain", "--dialect", "oracle"}, 2},
		{[]string{"drain", "-n", "0"}, 2},
		{[]string{"drain", "--bogus"}, 2},
		{[]string{"drain", "extra"}, 2},
		{[]string{"drain", "--topic", "bad topic"}, 2},
		{[]string{"drain", "--namespace", "Robert'); DROP"}, 2},
		{[]string{"drain", "--dsn", "mysql://x"}, 2},
		{[]string{"drain", "--dialect", "mysql", "--dsn", "not a dsn"}, 2},
		{[]string{"drain", "--broker-rtt", "2ms", "--brokers", "127.0.0.1:9092"}, 2},
		{[]string{"drain", "--broker-rtt", "-1ms"}, 2},
		{[]string{"drain", "--key-skew", "pareto"}, 2},
		{[]string{"enqueue", "--broker-rtt", "2ms"}, 2}, // publishes nothing
		{[]string{"latency", "--rate", "0"}, 2},
		{[]string{"latency", "--fetch-max-wait", "1ms"}, 2},
		{[]string{"enqueue", "--iterations", "0"}, 2},
		{[]string{"commit", "--writers", "1,0"}, 2},
		{[]string{"commit", "--writers", "8,x"}, 2},
		{[]string{"commit", "--rounds", "0"}, 2},
		{[]string{"commit", "--wakes", "0"}, 2},
		{[]string{"pressure", "--measure", "vacuum"}, 2},
		{[]string{"pressure", "--window", "0s"}, 2},
		{[]string{"pressure", "--churn", "-1"}, 2},
		{[]string{"pressure", "--measure", "latency", "--rate", "0"}, 2},
		{[]string{"memory", "--batch-size", "-1"}, 2},
		{[]string{"idle", "--duration", "0s"}, 2},
		{[]string{childCommand}, 2}, // without its environment
	} {
		code, stdout, stderr := run(t, tc.args...)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d\nstderr: %s", tc.args, code, tc.code, stderr)
		}
		if tc.code == 2 && stdout != "" {
			t.Errorf("%q: a usage error printed on stdout: %s", tc.args, stdout)
		}
		if tc.code == 2 && len(tc.args) > 1 && !strings.Contains(stderr, "outbox-bench "+tc.args[0]+":") {
			t.Errorf("%q: no clear message on stderr: %s", tc.args, stderr)
		}
	}
	_, _, stderr := run(t, "drain", "--help")
	for _, f := range []string{"--dialect", "--dsn", "--brokers", "--topic", "--partitions", "-n", "--value-bytes", "--keys", "--key-skew", "--broker-rtt", "--relays", "--batch-size", "--shards"} {
		if !strings.Contains(stderr, "\n  "+f+"\n") {
			t.Errorf("drain --help does not list %s:\n%s", f, stderr)
		}
	}
}

// TestUsageErrorNamesFlag: a bad flag value is a *usageError that names
// the flag and wraps errUsage (exit status 2).
func TestUsageErrorNamesFlag(t *testing.T) {
	err := drainScenario.run(context.Background(), []string{"--relays", "0"}, io.Discard, io.Discard)
	var ue *usageError
	if !errors.As(err, &ue) || ue.Flag != "--relays" || !errors.Is(err, errUsage) {
		t.Fatalf("got %#v (%v), want a usage error naming --relays", err, err)
	}
	if err.Error() != "usage: --relays must be at least 1; got 0" {
		t.Errorf("message: %q", err)
	}
}

// TestFailedCheckExitsOne: a scenario whose own check fails still prints
// its JSON line, with "ok": false, and exits 1.
func TestFailedCheckExitsOne(t *testing.T) {
	scenarios["test-failing"] = func(_ context.Context, _ []string, stdout, _ io.Writer) error {
		var c checks
		c.failf("%d messages lost", 3)
		if err := emit(stdout, struct{ verdict }{c.verdict()}); err != nil {
			return err
		}
		return c.err()
	}
	defer delete(scenarios, "test-failing")
	code, stdout, stderr := run(t, "test-failing")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if stdout != `{"ok":false,"problems":["3 messages lost"]}`+"\n" {
		t.Errorf("stdout: %q", stdout)
	}
	if !strings.Contains(stderr, "check failed: 3 messages lost") {
		t.Errorf("stderr: %q", stderr)
	}
}

func TestScrubWriter(t *testing.T) {
	registerSecret("s3cr3t-pw")
	var b bytes.Buffer
	w := newScrubWriter(&b)
	if _, err := w.Write([]byte("dial postgres://u:s3cr3t-pw@h/db failed\n")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "s3cr3t-pw") {
		t.Errorf("password not masked: %s", b.String())
	}
}

// TestScenarios runs every scenario end to end, with tiny settings, on
// each dialect: SQLite always, PostgreSQL and MySQL when their servers
// answer (with CI set, an unreachable server fails the test). Dialects run
// in parallel, each in a namespace of its own.
func TestScenarios(t *testing.T) {
	for _, name := range dbtest.Names {
		t.Run(string(name), func(t *testing.T) {
			t.Parallel()
			if name != "sqlite" {
				dbtest.OpenEmpty(t, name) // skips (or, with CI, fails) when the server is down
			}
			var r [4]byte
			_, _ = rand.Read(r[:])
			ns := "outbox_bench_t" + hex.EncodeToString(r[:])
			common := []string{"--dialect", string(name), "--namespace", ns}
			scenario := func(t *testing.T, args ...string) map[string]any {
				t.Helper()
				res := runScenario(t, append(args, common...)...)
				if res["dialect"] != string(name) || res["namespace"] != ns {
					t.Errorf("dialect/namespace fields: %v, %v", res["dialect"], res["namespace"])
				}
				return res
			}

			t.Run("drain", func(t *testing.T) {
				res := scenario(t, "drain", "-n", "2000", "--keys", "100", "--relays", "2")
				for _, f := range []string{"raw_db_deleted", "relay_published", "relay_topic_records", "raw_broker_topic_records"} {
					want(t, res, f, atLeast(2000), ">= 2000")
				}
				want(t, res, "raw_db_deleted", equal(2000), "2000")
				want(t, res, "raw_slim_deleted", equal(2000), "2000")
				want(t, res, "pending_after_relay", zero, "0")
				want(t, res, "relay_dead_lettered", zero, "0")
				for _, f := range []string{"raw_db_msgs_per_sec", "raw_slim_msgs_per_sec", "relay_msgs_per_sec", "raw_broker_msgs_per_sec",
					"relay_over_raw_db", "relay_over_raw_slim", "relay_over_raw_broker", "load_seconds", "slim_load_seconds", "reload_seconds",
					"relay_seconds", "raw_db_seconds", "raw_slim_seconds", "raw_broker_seconds"} {
					want(t, res, f, positive, "> 0")
				}
				want(t, res, "relays", equal(2), "2")
				want(t, res, "broker_rtt_ms", zero, "0 (no --broker-rtt)")
				if res["key_skew"] != "uniform" {
					t.Errorf("key_skew = %v, want uniform, the default", res["key_skew"])
				}
				want(t, res, "batch_size", equal(1000), "the relay's default, 1000")
				// The read-back: exactly once, in order.
				want(t, res, "readback_records", equal(2000), "2000")
				for _, f := range []string{"lost", "duplicates", "unknown", "order_violations", "split_keys"} {
					want(t, res, f, zero, "0")
				}
				want(t, res, "check_seconds", positive, "> 0")
			})

			t.Run("drain_rtt_zipf", func(t *testing.T) {
				// A distant broker and a hot key: the relay pays a round trip
				// per batch; the read-back must still find every message once,
				// in its key's order.
				res := scenario(t, "drain", "-n", "1000", "--keys", "100", "--broker-rtt", "2ms", "--key-skew", "zipf")
				want(t, res, "broker_rtt_ms", equal(2), "2")
				if res["key_skew"] != "zipf" {
					t.Errorf("key_skew = %v, want zipf", res["key_skew"])
				}
				want(t, res, "relay_published", atLeast(1000), ">= 1000")
				want(t, res, "readback_records", equal(1000), "1000")
				for _, f := range []string{"lost", "duplicates", "unknown", "order_violations", "split_keys", "pending_after_relay"} {
					want(t, res, f, zero, "0")
				}
				// Every Publish waits for at least one produce round trip.
				perCall := num(t, res, "relay_publish_seconds") / num(t, res, "relay_publish_calls")
				if perCall < 0.002 {
					t.Errorf("relay_publish_seconds / relay_publish_calls = %.4fs, want at least the 2ms round trip", perCall)
				}
				want(t, res, "raw_broker_seconds", atLeast(0.002), ">= one round trip")
			})

			t.Run("outage", func(t *testing.T) {
				// --max-resume is loosened: under go test -race ./... the
				// figures mean nothing; the target (2s) is the default.
				res := scenario(t, "outage", "--down", "1500ms", "-n", "300", "--keys", "3", "--max-resume", "30s")
				want(t, res, "down_seconds", equal(1.5), "1.5")
				want(t, res, "unavailable_outcomes", positive, "> 0")
				want(t, res, "readback_records", equal(300), "300")
				for _, f := range []string{"published_during_outage", "retried", "dead_lettered", "pending_after",
					"lost", "duplicates", "unknown", "order_violations"} {
					want(t, res, f, zero, "0")
				}
				for _, f := range []string{"resume_seconds", "drain_seconds"} {
					want(t, res, f, positive, "> 0")
				}
				want(t, res, "outage_cpu_seconds", atLeast(0), ">= 0")
			})

			t.Run("latency", func(t *testing.T) {
				// The load checks are loosened: under go test -race ./... on two
				// cores the writers cannot keep a schedule; the figures of a
				// test run mean nothing anyway.
				res := scenario(t, "latency", "--rate", "400", "--duration", "2s", "--warmup", "500ms", "--writers", "4",
					"--min-rate-fraction", "0.25", "--max-writer-lag", "1m")
				want(t, res, "lost", zero, "0")
				want(t, res, "count", atLeast(700), ">= 700 (400/s for 2s)")
				want(t, res, "received", equal(num(t, res, "committed")), "= committed")
				// The run itself fails below --min-rate-fraction of --rate or
				// beyond --max-writer-lag (TestLatencyLoadChecks).
				want(t, res, "achieved_rate", atLeast(0.25*400), ">= 100 (25% of --rate)")
				want(t, res, "writer_lag_max_ms", func(v float64) bool { return v >= 0 }, ">= 0")
				p50, p90, p99, mx := num(t, res, "p50_ms"), num(t, res, "p90_ms"), num(t, res, "p99_ms"), num(t, res, "max_ms")
				if !(p50 <= p90 && p90 <= p99 && p99 <= mx && mx > 0) {
					t.Errorf("percentiles out of order: p50 %v p90 %v p99 %v max %v", p50, p90, p99, mx)
				}
				// Each message's stamp before Commit precedes its stamp after:
				// every percentile from it is at least as large.
				b50, b90, b99, bmx := num(t, res, "before_commit.p50_ms"), num(t, res, "before_commit.p90_ms"),
					num(t, res, "before_commit.p99_ms"), num(t, res, "before_commit.max_ms")
				if !(b50 <= b90 && b90 <= b99 && b99 <= bmx) || b50 < p50 || b90 < p90 || b99 < p99 || bmx < mx || b50 <= 0 {
					t.Errorf("before_commit percentiles %v %v %v %v against p50 %v p90 %v p99 %v max %v", b50, b90, b99, bmx, p50, p90, p99, mx)
				}
				want(t, res, "before_commit.negative_count", zero, "0")
				want(t, res, "negative_count", atLeast(0), ">= 0")
			})

			t.Run("enqueue", func(t *testing.T) {
				res := scenario(t, "enqueue", "--iterations", "20")
				for _, f := range []string{"ratio_1_median", "ratio_1_mean", "ratio_100_median", "ratio_100_mean",
					"enqueue_1.median_us", "plain_1.median_us", "enqueue_100.mean_us", "plain_100.mean_us"} {
					want(t, res, "dsn_as_given."+f, positive, "> 0")
				}
				if name == "sqlite" {
					given := res["dsn_as_given"].(map[string]any)
					if given["round_trips"] != nil || res["one_round_trip_option"] != nil {
						t.Errorf("SQLite has no round trips: %v, %v", given["round_trips"], res["one_round_trip_option"])
					}
					return
				}
				for _, f := range []string{"plain_1", "plain_100"} {
					want(t, res, "dsn_as_given.round_trips."+f, atLeast(1), ">= 1")
				}
				for _, f := range []string{"enqueue_1", "enqueue_100"} {
					// Enqueue takes one round trip with either DSN.
					want(t, res, "dsn_as_given.round_trips."+f, equal(1), "1")
				}
				for _, f := range []string{"enqueue_1", "plain_1", "enqueue_100", "plain_100"} {
					// The option sends the parameters with the statement.
					want(t, res, "one_round_trip_option.round_trips."+f, equal(1), "1")
				}
				want(t, res, "one_round_trip_option.ratio_1_median", positive, "> 0")
				want(t, res, "one_round_trip_option.ratio_100_mean", positive, "> 0")
			})

			t.Run("commit", func(t *testing.T) {
				res := scenario(t, "commit", "--writers", "1,3", "--duration", "400ms", "--rounds", "2",
					"--idle-before-wake", "300ms", "--wakes", "3", "--wake-idle", "100ms")
				points, _ := res["points"].([]any)
				if len(points) != 2 {
					t.Fatalf("points: %v, want one per writer count", res["points"])
				}
				for i, w := range []float64{1, 3} {
					p := "points." + strconv.Itoa(i)
					pt := map[string]any{"p": points[i]}
					want(t, pt, "p.writers", equal(w), strconv.Itoa(int(w)))
					for _, v := range []string{"none", "plain", "enqueue"} {
						for _, f := range []string{"tps", "transactions", "p50_ms", "p99_ms"} {
							want(t, pt, "p."+v+"."+f, positive, p+": > 0")
						}
						if r, _ := pt["p"].(map[string]any)[v].(map[string]any)["tps_rounds"].([]any); len(r) != 2 {
							t.Errorf("%s.%s.tps_rounds = %v, want one per round", p, v, r)
						}
					}
					want(t, pt, "p.enqueue_over_plain", positive, "> 0")
					want(t, pt, "p.enqueue_over_none", positive, "> 0")
				}
				enqueued := num(t, res, "enqueued")
				want(t, res, "enqueued", positive, "> 0")
				want(t, res, "relay_published", equal(enqueued), "= enqueued")
				want(t, res, "topic_records", equal(enqueued+3), "= enqueued + 3 wake-ups")
				want(t, res, "pending_after", zero, "0")
				want(t, res, "wake_received", equal(3), "3")
				if ms, _ := res["wake_ms"].([]any); len(ms) != 3 {
					t.Errorf("wake_ms = %v, want 3 latencies", res["wake_ms"])
				}
				p50, p99, mx := num(t, res, "wake_p50_ms"), num(t, res, "wake_p99_ms"), num(t, res, "wake_max_ms")
				if !(0 < p50 && p50 <= p99 && p99 <= mx) {
					t.Errorf("wake percentiles: p50 %v p99 %v max %v", p50, p99, mx)
				}
				if name == "postgres" {
					if res["wake"] != "pqnotify" || res["dsn_option"] != "binary_parameters=yes" {
						t.Errorf("wake %v, dsn_option %v: want pqnotify, binary_parameters=yes", res["wake"], res["dsn_option"])
					}
					want(t, res, "wake_poll_interval_ms", equal(30000), "30000: wake-ups, not polls")
				}
			})

			t.Run("pressure_drain", func(t *testing.T) {
				res := scenario(t, "pressure", "--churn", "600", "-n", "500", "--keys", "50", "--window", "50ms")
				if res["hold"] != true || res["snapshot_held"] != true || str(res["hold_statement"]) == "" {
					t.Errorf("hold %v, snapshot_held %v, hold_statement %q: want the snapshot held to the end", res["hold"], res["snapshot_held"], res["hold_statement"])
				}
				want(t, res, "churn_relay_msgs_per_sec", positive, "> 0")
				want(t, res, "drain.relay_published", equal(500), "500")
				want(t, res, "drain.readback_records", equal(500), "500")
				for _, f := range []string{"lost", "duplicates", "unknown", "order_violations", "split_keys", "pending_after_relay"} {
					want(t, res, "drain."+f, zero, "0")
				}
				want(t, res, "drain.relay_msgs_per_sec", positive, "> 0")
				windows, _ := res["drain"].(map[string]any)["windows"].([]any)
				sum := 0.0
				for i := range windows {
					sum += num(t, map[string]any{"w": windows[i]}, "w.published")
				}
				if len(windows) == 0 || sum != 500 {
					t.Errorf("windows %v: want the 500 messages spread over them", windows)
				}
				switch name {
				case "postgres":
					// The churn's dead rows: VACUUM cannot remove them under the
					// held snapshot.
					want(t, res, "dead_tuples", atLeast(600), ">= 600, the churn")
				case "mysql":
					want(t, res, "history_list_length", positive, "> 0")
				}
			})

			t.Run("pressure_latency", func(t *testing.T) {
				res := scenario(t, "pressure", "--measure", "latency", "--hold=false", "--churn", "300", "--rate", "200",
					"--duration", "1s", "--warmup", "200ms", "--writers", "2", "--window", "500ms",
					"--min-rate-fraction", "0.25", "--max-writer-lag", "1m")
				if res["hold"] != false || res["snapshot_held"] != false {
					t.Errorf("hold %v, snapshot_held %v: want neither", res["hold"], res["snapshot_held"])
				}
				want(t, res, "latency.lost", zero, "0")
				want(t, res, "latency.duplicates", zero, "0")
				want(t, res, "latency.count", atLeast(150), ">= 150 (200/s for 1s)")
				windows, _ := res["latency_windows"].([]any)
				if len(windows) != 2 {
					t.Fatalf("latency_windows %v: want 2 of 500ms", res["latency_windows"])
				}
				count := 0.0
				for i := range windows {
					w := map[string]any{"w": windows[i]}
					count += num(t, w, "w.count")
					p50, p99, mx := num(t, w, "w.p50_ms"), num(t, w, "w.p99_ms"), num(t, w, "w.max_ms")
					if !(p50 <= p99 && p99 <= mx && mx > 0) {
						t.Errorf("window %d: p50 %v p99 %v max %v", i, p50, p99, mx)
					}
				}
				want(t, res, "latency.count", equal(count), "the windows' counts added up")
			})

			t.Run("memory", func(t *testing.T) {
				res := scenario(t, "memory", "-n", "2000")
				want(t, res, "published", atLeast(2000), ">= 2000")
				want(t, res, "topic_records", atLeast(2000), ">= 2000")
				want(t, res, "pending_after", zero, "0")
				want(t, res, "readback_records", equal(num(t, res, "topic_records")), "= topic_records")
				for _, f := range []string{"lost", "unknown", "order_violations", "split_keys"} {
					want(t, res, f, zero, "0")
				}
				want(t, res, "duplicates", atLeast(0), "reported")
				want(t, res, "msgs_per_sec", positive, "> 0")
				want(t, res, "heap_sys_mib", positive, "> 0")
				if runtime.GOOS == "linux" {
					want(t, res, "peak_rss_mib", positive, "> 0")
				}
			})

			t.Run("idle", func(t *testing.T) {
				res := scenario(t, "idle", "--duration", "2s", "--settle", "500ms")
				want(t, res, "shards_held", equal(64), "64")
				want(t, res, "published", zero, "0")
				if runtime.GOOS == "linux" {
					want(t, res, "cpu_percent_of_one_core", func(v float64) bool { return v >= 0 && v < 100*float64(runtime.NumCPU()) }, "in [0, 100*cpus)")
					want(t, res, "window_seconds", atLeast(1.9), ">= 1.9")
				}
			})
		})
	}
}

// TestCheckDelivery feeds the read-back the records of a broken relay: one
// message published twice, one never, one out of its key's order, one key
// on two partitions, records of no loaded message; and records before and
// after the relay phase that it must ignore.
func TestCheckDelivery(t *testing.T) {
	const topic = "check.delivery"
	b, err := localkafka.Start(2, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(partition int32, ids ...string) {
		t.Helper()
		for _, id := range ids {
			r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte("v")}
			if id != "-" { // "-": no outbox-id header
				r.Headers = []kgo.RecordHeader{{Key: outbox.HeaderID, Value: []byte(id)}}
			}
			if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Loaded: m0..m9 in id order, even ones of key k0, odd ones of k1.
	l := &loadedMessages{index: map[string]int32{}, keys: 2}
	for i := range 10 {
		l.index["m"+strconv.Itoa(i)] = int32(i)
		l.key = append(l.key, int32(i%2))
	}
	check := func(ids0, ids1 []string) deliveryCheck {
		t.Helper()
		produce(0, "m8", "old") // before the relay phase
		from, err := endOffsets(b.Addrs, topic)
		if err != nil {
			t.Fatal(err)
		}
		produce(0, ids0...)
		produce(1, ids1...)
		to, err := endOffsets(b.Addrs, topic)
		if err != nil {
			t.Fatal(err)
		}
		produce(0, "m8", "new") // after it
		var stderr proctest.Buffer
		d, err := checkDelivery(context.Background(), b.Addrs, topic, from, to, l, &stderr)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v %s", d, stderr.String())
		return d
	}

	got := check([]string{"m0", "m2", "m4", "m6", "m8"}, []string{"m1", "m3", "m5", "m7", "m9"})
	if got != (deliveryCheck{Records: 10, Read: 10}) {
		t.Errorf("clean delivery: %+v", got)
	}
	var c checks
	failDelivery(&c, got, topic, true)
	if len(c.problems) != 0 {
		t.Errorf("clean delivery: %v", c.problems)
	}

	got = check([]string{"m0", "m4", "m2", "m2", "m6", "zz", "-", "m9"}, []string{"m1", "m3", "m5", "m7"})
	if w := (deliveryCheck{Records: 12, Read: 12, Lost: 1, Duplicates: 1, Unknown: 2, OrderViolations: 1, SplitKeys: 1}); got != w {
		t.Errorf("broken delivery: got %+v, want %+v", got, w)
	}
	c = checks{}
	failDelivery(&c, got, topic, false)
	if len(c.problems) != 4 || strings.Contains(strings.Join(c.problems, ";"), "more than once") {
		t.Errorf("not strict: problems %q, want lost, unknown, order and split keys", c.problems)
	}
	c = checks{}
	failDelivery(&c, got, topic, true)
	if len(c.problems) != 5 {
		t.Errorf("strict: problems %q, want duplicates too", c.problems)
	}
}

// TestLatencyWindows: the measured messages go to the window of their
// commit time, those that did not arrive count as lost there, and the
// warm-up's are left out.
func TestLatencyWindows(t *testing.T) {
	t0 := time.Now()
	w := &written{sent: map[string]sentMsg{}, measureFrom: t0}
	arr := &arrivals{recv: map[string]time.Time{}}
	add := func(id string, commit, latency time.Duration, measured, arrived bool) {
		w.sent[id] = sentMsg{commit: t0.Add(commit), measured: measured}
		if arrived {
			arr.recv[id] = t0.Add(commit + latency)
		}
	}
	add("warm", -time.Second, time.Hour, false, true)
	for i := range 10 {
		add("a"+strconv.Itoa(i), time.Duration(i)*10*time.Millisecond, time.Duration(i+1)*time.Millisecond, true, true)
	}
	add("b0", 1500*time.Millisecond, 50*time.Millisecond, true, true)
	add("b1", 1600*time.Millisecond, 0, true, false)
	got := latencyWindows(&latencyRun{w: w, arr: arr}, time.Second, 2500*time.Millisecond)
	want := []latencyWindow{
		{EndSeconds: 1, Count: 10, P50Ms: 5, P99Ms: 10, MaxMs: 10},
		{EndSeconds: 2, Count: 2, P50Ms: 50, P99Ms: 50, MaxMs: 50, Lost: 1},
		{EndSeconds: 2.5},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestAchievedRate(t *testing.T) {
	t0 := time.Now()
	var commits []time.Time
	for i := range 100 {
		commits = append(commits, t0.Add(time.Duration(99-i)*10*time.Millisecond)) // any order
	}
	if r := achievedRate(commits); r < 101 || r > 101.02 {
		t.Errorf("100 commits over 990ms: %v/s, want 100/0.99", r)
	}
	if r := achievedRate(commits[:1]); r != 0 {
		t.Errorf("one commit: %v", r)
	}
}

// TestLatencyLoadChecks: a latency run whose writers could not keep their
// schedule fails (exit 1) instead of printing figures for a load it did
// not apply.
func TestLatencyLoadChecks(t *testing.T) {
	var r [4]byte
	_, _ = rand.Read(r[:])
	code, stdout, stderr := run(t, "latency", "--dialect", "sqlite", "--namespace", "outbox_bench_l"+hex.EncodeToString(r[:]),
		"--rate", "200", "--duration", "1s", "--warmup", "100ms", "--writers", "2", "--max-writer-lag", "1ns")
	if code != 1 || !strings.Contains(stdout, `"ok":false`) || !strings.Contains(stderr, "behind their schedule") {
		t.Fatalf("exit %d, want 1 with the lag named\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}
