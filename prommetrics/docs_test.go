package prommetrics_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/prommetrics"
)

// registered returns the names of the metrics Metrics registers.
func registered(t *testing.T) map[string]bool {
	t.Helper()
	ch := make(chan *prometheus.Desc, 100)
	go func() { prommetrics.New(prommetrics.Options{}).Describe(ch); close(ch) }()
	fq := regexp.MustCompile(`fqName: "([a-z0-9_]+)"`)
	names := map[string]bool{}
	for d := range ch {
		m := fq.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names[m[1]] = true
	}
	return names
}

// section returns the text of docs/operations.md from the heading to the
// next heading of its level or above.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("docs/operations.md has no %q", heading)
	}
	rest := doc[i+len(heading)+2:]
	if j := strings.Index(rest, "\n### "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// The dashboard and the alert rules of docs/operations.md use only metrics
// that Metrics registers (plus Prometheus's up), rate() and increase() only
// over counters, and label values the relay reports; the metrics table
// lists every metric Metrics registers. So the doc cannot drift from the
// code.
func TestOperationsDocMetrics(t *testing.T) {
	raw, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	names := registered(t)
	known := func(name string) bool {
		if names[name] || name == "up" {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && names[base] {
				return true
			}
		}
		return false
	}
	metric := regexp.MustCompile(`\b(outbox_[a-z0-9_]+|up)\{`)
	bare := regexp.MustCompile(`\boutbox_[a-z0-9_]+\b`)
	over := regexp.MustCompile(`\b(rate|increase|irate)\(([a-z0-9_]+)`)
	labels := regexp.MustCompile(`\b(reason|kind|change|result)="([a-z_]+)"`)
	values := map[string][]string{
		"reason": {string(outbox.BackoffUnavailable), string(outbox.BackoffTopicPaused), string(outbox.BackoffPausedOnly),
			string(outbox.BackoffReadFailed), string(outbox.BackoffAckFailed),
			string(outbox.ReasonPermanent), string(outbox.ReasonMaxAttempts), string(outbox.ReasonCorruptHeaders)},
		"kind": {string(outbox.FailureRetriable), string(outbox.FailurePermanent), string(outbox.FailureUnavailable),
			string(outbox.FailureNotSent), string(outbox.FailureAborted), string(outbox.FailureCorrupt)},
		"change": {string(outbox.LeaseAcquired), string(outbox.LeaseLost), string(outbox.LeaseHandedBack)},
		"result": {"ok", "failed", "up", "down"}, // prommetrics' own (publish calls, probes)
	}
	for _, heading := range []string{"### Grafana dashboard", "### Alert rules"} {
		text := section(t, doc, heading)
		used := len(metric.FindAllString(text, -1)) // metric{...} selectors
		for _, m := range bare.FindAllString(text, -1) {
			if !known(m) {
				t.Errorf("%s: %s is not a metric prommetrics registers", heading, m)
			}
		}
		if used == 0 {
			t.Errorf("%s: no metric found: the test reads the wrong text", heading)
		}
		for _, m := range over.FindAllStringSubmatch(text, -1) {
			if !strings.HasSuffix(m[2], "_total") && !strings.HasSuffix(m[2], "_bucket") {
				t.Errorf("%s: %s(%s...): not a counter", heading, m[1], m[2])
			}
		}
		for _, m := range labels.FindAllStringSubmatch(text, -1) {
			if !slices.Contains(values[m[1]], m[2]) {
				t.Errorf("%s: %s=%q is not a value the relay reports", heading, m[1], m[2])
			}
		}
	}
	rules := section(t, doc, "### Alert rules")
	if !strings.Contains(rules, "absent(up{") {
		t.Errorf("the alert rules do not catch a relay that is gone (absent(up{...}))")
	}
	table := section(t, doc, "### Metrics")
	for name := range names {
		if !strings.Contains(table, "`"+name+"`") {
			t.Errorf("the metrics table of docs/operations.md does not list %s", name)
		}
	}
}
