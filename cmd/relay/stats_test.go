package main

import (
	"strings"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/admin"
)

// TestPrintStatsMarksWhatIsNotExact: estimated counts and ages carry "~"
// and a line says that topics come from a sample; capped counts read
// ">="; a part that failed is named; control characters are not printed.
func TestPrintStatsMarksWhatIsNotExact(t *testing.T) {
	s := admin.Stats{At: time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC), Estimated: true, Pending: 2_000_000, OldestAge: time.Minute,
		Retrying: 10_000, RetryingCapped: true, DeadLetters: 10_000, DeadLettersCapped: true,
		Topics:  []admin.TopicStats{{Topic: "orders", Pending: 1_990_000, OldestAge: 90 * time.Second}},
		Waiting: []admin.Waiting{{RowID: 7, MessageID: "m\x1b[31mred", Topic: "orders", Attempts: 2, LastError: "boom\x07"}},
		Failed:  []admin.StepFailure{{Step: "shards", Err: "context deadline exceeded"}}}
	var b strings.Builder
	printStats(&b, "db", s, false)
	out := b.String()
	for _, want := range []string{
		"pending ~2000000  oldest 1m0s  retrying >=10000  dead letters >=10000",
		"the topics come from the sample too: a small topic may be missing",
		"(dead letters per topic: of the newest 10000)",
		"could not read shards: context deadline exceeded",
		"\norders  ~1990000  ~1m30s",
		"WAITING FOR A RETRY (1 of >=10000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("printStats lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("printStats prints control characters:\n%q", out)
	}
}
