package main

// End-to-end tests of relay run's --http-addr and --liveness-file: the
// binary against PostgreSQL (through a proxy the test can cut) and kfake,
// scraped with the Prometheus text parser.

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// TestE2EMetricsAndProbes runs a relay with --http-addr and checks, by
// scraping /metrics: the lag gauge above 0 while a backlog waits (the
// broker refuses every produce request), 0 once it is published; the
// published and dead-lettered counters equal to what the test enqueued.
// Then /readyz fails while the database is cut off and recovers, and
// /healthz fails while the work loop is stuck on a locked table and
// recovers when the lock goes, and the same with the lease keeper stuck in
// a heartbeat.
func TestE2EMetricsAndProbes(t *testing.T) {
	t.Parallel()
	relayBinary(t)
	db := dbtest.Open(t, "postgres")
	dbURL, _ := databaseURL(t, "postgres", db)
	proxiedURL, proxy := behindProxy(t, dbURL)
	proxy.Start()
	broker, err := localkafka.Start(1, []string{e2eTopic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	var refuse atomic.Bool
	refuse.Store(true)
	broker.Cluster.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		broker.Cluster.KeepControl()
		if !refuse.Load() {
			return nil, nil, false
		}
		return localkafka.RefuseProduce(kr.(*kmsg.ProduceRequest), kerr.NotEnoughReplicas.Code), nil, true
	})

	const n = 20
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []outbox.Message{{Topic: e2eTopic, Key: []byte("big"), Value: []byte(strings.Repeat("x", 5000))}}
	for i := range n {
		msgs = append(msgs, outbox.Message{Topic: e2eTopic, Key: fmt.Appendf(nil, "k%d", i%5), Value: []byte(e2ePayloadMarker)})
	}
	if err := ob.Enqueue(context.Background(), db.DB, msgs...); err != nil {
		t.Fatal(err)
	}

	p := startRelay(t, "relay-metrics", []string{
		"OUTBOX_DATABASE_URL=" + proxiedURL,
		"OUTBOX_KAFKA_BROKERS=" + strings.Join(broker.Addrs, ","),
		"OUTBOX_LOG_FORMAT=json",
	}, "run", "--http-addr", "127.0.0.1:0", "--poll-interval", "50ms", "--lease-duration", "6s",
		"--outage-backoff", "50ms", "--outage-backoff-max", "200ms", "--kafka-max-message-bytes", "2000",
		"--metrics-refresh-interval", "100ms", "--health-max-stall", "1500ms", "--db-max-conns", "6")
	base := "http://" + serverAddr(t, p)
	topic := map[string]string{"topic": e2eTopic}

	// The broker refuses everything: the backlog waits, and says so.
	scrapeUntil(t, p, base, "the lag gauge above 0 and the big record dead-lettered", func(s scrape) bool {
		return s.value("outbox_oldest_pending_age_seconds", nil) > 0 &&
			s.value("outbox_pending_messages", nil) == n &&
			s.value("outbox_records_dead_lettered_total", map[string]string{"topic": e2eTopic, "reason": "permanent"}) == 1 &&
			s.value("outbox_records_failed_total", map[string]string{"topic": e2eTopic, "kind": "unavailable"}) > 0
	})
	refuse.Store(false)
	s := scrapeUntil(t, p, base, "everything published and the lag back to 0", func(s scrape) bool {
		return s.value("outbox_records_published_total", topic) == n &&
			s.value("outbox_pending_messages", nil) == 0 && s.value("outbox_oldest_pending_age_seconds", nil) == 0
	})
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"outbox_records_dead_lettered_total", map[string]string{"topic": e2eTopic, "reason": "permanent"}, 1},
		{"outbox_dead_letters", nil, 1},
		{"outbox_records_retried_total", topic, 0},
		{"outbox_shards_held", nil, outbox.DefaultNumShards},
		{"outbox_shard_lease_changes_total", map[string]string{"change": "acquired"}, outbox.DefaultNumShards},
	} {
		if got := s.value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := s.count("outbox_commit_to_publish_delay_seconds"); got != n {
		t.Errorf("commit-to-publish delay observed %d times, want %d", got, n)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %s, want 200", code, body)
	}

	// The database is cut off: not ready; back: ready.
	proxy.Stop()
	waitHTTP(t, p, base+"/readyz", http.StatusServiceUnavailable)
	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while the database is down: %d %s; want 200 (the relay backs off as it should)", code, body)
	}
	proxy.Start()
	waitHTTP(t, p, base+"/readyz", http.StatusOK)

	// The work loop is stuck on a locked table: unhealthy; unlocked: healthy.
	waitHTTP(t, p, base+"/healthz", http.StatusOK)
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("LOCK TABLE outbox_messages IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, p, base+"/healthz", http.StatusServiceUnavailable)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, p, base+"/healthz", http.StatusOK)

	// The lease keeper hangs in its heartbeat, behind a frozen connection:
	// the work loop turns on (idle once the leases expire) but /healthz
	// fails, naming the keeper; the heartbeat goes through: healthy.
	proxy.StallOn("INSERT INTO outbox_relays")
	waitHTTP(t, p, base+"/healthz", http.StatusServiceUnavailable)
	if _, body := get(t, base+"/healthz"); !strings.Contains(body, "lease keeper") {
		t.Errorf("/healthz with the lease keeper stuck: %q, want it named", body)
	}
	proxy.Release()
	waitHTTP(t, p, base+"/healthz", http.StatusOK)

	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM\n%s", code, p.stderr.String())
	}
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Errorf("the metrics server still answers after the relay exited")
	}
	if strings.Contains(p.stderr.String(), e2ePayloadMarker) {
		t.Errorf("the logs show message payloads")
	}
}

// TestE2EHTTPAddrInUse: an address that cannot be bound fails relay run at
// start, before it touches the database or the broker.
func TestE2EHTTPAddrInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	db := dbtest.Open(t, "sqlite")
	dbURL, _ := databaseURL(t, "sqlite", db)
	p := runRelay(t, "relay-addr-in-use", []string{
		"OUTBOX_DATABASE_URL=" + dbURL, "OUTBOX_KAFKA_BROKERS=127.0.0.1:1",
	}, 20*time.Second, "run", "--http-addr", ln.Addr().String())
	logs := p.stderr.String()
	if p.ExitCode() != 1 || !strings.Contains(logs, "--http-addr "+ln.Addr().String()) || !strings.Contains(logs, "address already in use") {
		t.Errorf("exit status %d; want 1 naming --http-addr and the cause:\n%s", p.ExitCode(), logs)
	}
}

// TestE2ELivenessFile: the file appears and its time moves while the relay
// runs, also without --http-addr.
func TestE2ELivenessFile(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, "sqlite")
	dbURL, _ := databaseURL(t, "sqlite", db)
	broker, err := localkafka.Start(1, []string{e2eTopic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	file := filepath.Join(t.TempDir(), "alive")
	p := startRelay(t, "relay-liveness", []string{
		"OUTBOX_DATABASE_URL=" + dbURL, "OUTBOX_KAFKA_BROKERS=" + strings.Join(broker.Addrs, ","),
	}, "run", "--liveness-file", file, "--poll-interval", "50ms")
	var first time.Time
	if !waitFor(30*time.Second, func() bool {
		st, err := os.Stat(file)
		if err != nil {
			return false
		}
		if first.IsZero() {
			first = st.ModTime()
		}
		return st.ModTime().After(first)
	}) {
		t.Fatalf("the liveness file was not touched twice within 30s\n%s", p.stderr.String())
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit status %d\n%s", code, p.stderr.String())
	}
}

// serverAddr waits for the relay's "serving metrics and probes" line and
// returns the address it serves on.
func serverAddr(t *testing.T, p *proc) string {
	t.Helper()
	var addr string
	if !waitFor(30*time.Second, func() bool {
		for _, l := range logLines(t, p) {
			if l["msg"] == "serving metrics and probes" {
				addr, _ = l["addr"].(string)
				return addr != ""
			}
		}
		return false
	}) {
		t.Fatalf("no \"serving metrics and probes\" line within 30s\n%s", p.stderr.String())
	}
	return addr
}

// scrape is one parse of /metrics.
type scrape map[string]*dto.MetricFamily

// value returns the value of the counter or gauge name whose labels
// include labels, or -1 when there is none.
func (s scrape) value(name string, labels map[string]string) float64 {
	mf, ok := s[name]
	if !ok {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
				continue next
			}
		}
		if m.Counter != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return -1
}

// count returns the sample count of the histogram name.
func (s scrape) count(name string) uint64 {
	mf, ok := s[name]
	if !ok || len(mf.GetMetric()) == 0 {
		return 0
	}
	return mf.GetMetric()[0].GetHistogram().GetSampleCount()
}

// scrapeUntil scrapes /metrics until cond holds (30s at most) and returns
// the last scrape.
func scrapeUntil(t *testing.T, p *proc, base, what string, cond func(scrape) bool) scrape {
	t.Helper()
	var last scrape
	if !waitFor(30*time.Second, func() bool {
		last = scrapeMetrics(t, base)
		return cond(last)
	}) {
		var b strings.Builder
		for name, mf := range last {
			if strings.HasPrefix(name, "outbox_") {
				fmt.Fprintf(&b, "%s %v\n", name, mf.GetMetric())
			}
		}
		t.Fatalf("waiting for %s: not within 30s; last scrape:\n%s\nstderr:\n%s", what, b.String(), p.stderr.String())
	}
	return last
}

func scrapeMetrics(t *testing.T, base string) scrape {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return mfs
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// waitHTTP waits up to 30s for u to answer code.
func waitHTTP(t *testing.T, p *proc, u string, code int) {
	t.Helper()
	var got int
	var body string
	if !waitFor(30*time.Second, func() bool { got, body = get(t, u); return got == code }) {
		t.Fatalf("%s: %d %q, want %d within 30s\nstderr:\n%s", u, got, body, code, p.stderr.String())
	}
	t.Logf("%s: %d %s", u, got, body)
}

// TestE2ETraceExport: with OTEL_EXPORTER_OTLP_ENDPOINT set, the relay
// exports a producer span per record to the collector (OTLP over HTTP), in
// the trace of the traceparent header the message was enqueued with; an
// unsupported OTEL_* value fails relay run at start.
func TestE2ETraceExport(t *testing.T) {
	t.Parallel()
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	var mu sync.Mutex
	var bodies [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.URL.Path == "/v1/traces" {
			bodies = append(bodies, body)
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()

	db := dbtest.Open(t, "sqlite")
	dbURL, _ := databaseURL(t, "sqlite", db)
	broker, err := localkafka.Start(1, []string{e2eTopic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	env := []string{"OUTBOX_DATABASE_URL=" + dbURL, "OUTBOX_KAFKA_BROKERS=" + strings.Join(broker.Addrs, ","),
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.URL, "OTEL_BSP_SCHEDULE_DELAY=100"}

	bad := runRelay(t, "relay-bad-otel", append(env, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"), 20*time.Second, "run")
	if bad.ExitCode() != 2 || !strings.Contains(bad.stderr.String(), "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=grpc: exit %d, want 2 naming the variable:\n%s", bad.ExitCode(), bad.stderr.String())
	}

	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Enqueue(context.Background(), db.DB, outbox.Message{Topic: e2eTopic, Value: []byte("v"),
		Headers: []outbox.Header{{Key: "traceparent", Value: []byte("00-" + traceID + "-00f067aa0ba902b7-01")}}}); err != nil {
		t.Fatal(err)
	}
	p := startRelay(t, "relay-otel", env, "run", "--poll-interval", "50ms")
	want := mustHex(t, traceID)
	if !waitFor(30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bodies {
			if bytes.Contains(b, want) && bytes.Contains(b, []byte("send "+e2eTopic)) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no span \"send %s\" of trace %s reached the collector within 30s\n%s", e2eTopic, traceID, p.stderr.String())
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit status %d\n%s", code, p.stderr.String())
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestE2ETraceExportFailureLogged: the OpenTelemetry SDK's own errors (here
// a collector that refuses every export) reach the relay's log as JSON
// lines, not the standard logger's plain lines.
func TestE2ETraceExportFailureLogged(t *testing.T) {
	t.Parallel()
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "no", http.StatusBadRequest) // permanent: not retried
	}))
	defer collector.Close()
	db := dbtest.Open(t, "sqlite")
	dbURL, _ := databaseURL(t, "sqlite", db)
	broker, err := localkafka.Start(1, []string{e2eTopic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Enqueue(context.Background(), db.DB, outbox.Message{Topic: e2eTopic, Value: []byte("v"),
		Headers: []outbox.Header{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}}); err != nil {
		t.Fatal(err)
	}
	p := startRelay(t, "relay-otel-refused", []string{"OUTBOX_DATABASE_URL=" + dbURL,
		"OUTBOX_KAFKA_BROKERS=" + strings.Join(broker.Addrs, ","), "OUTBOX_LOG_FORMAT=json",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.URL, "OTEL_BSP_SCHEDULE_DELAY=100"}, "run", "--poll-interval", "50ms")
	if !waitFor(30*time.Second, func() bool { return strings.Contains(p.stderr.String(), "OpenTelemetry error") }) {
		t.Fatalf("no OpenTelemetry error logged within 30s\n%s", p.stderr.String())
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit status %d\n%s", code, p.stderr.String())
	}
	if n := countMsg(logLines(t, p), "OpenTelemetry error: spans may be lost"); n == 0 {
		t.Errorf("no JSON line for the refused export:\n%s", p.stderr.String())
	}
}
