package main

import (
	"encoding/json"
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
		Retrying: 10_000, RetryingCapped: true, SampledFrom: 1_000, DeadLetters: 10_000, DeadLettersCapped: true,
		Topics:  []admin.TopicStats{{Topic: "orders", Pending: 1_990_000, OldestAge: 90 * time.Second}},
		Waiting: []admin.Waiting{{RowID: 7, MessageID: "m\x1b[31mred", Topic: "ord\x1b[2Jers", Attempts: 2, LastError: "boom\x07"}},
		Errors:  []admin.ErrorCount{{Err: "boom", Count: 1_000}},
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
		"WAITING FOR A RETRY (1 of >=10000, taken from 1000 of them in no particular order, the next attempt of those first)",
		"LAST ERROR OF MESSAGES WAITING (of 1000 of them)",
		"SHARDS: ? (could not be read)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("printStats lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("printStats prints control characters:\n%q", out)
	}
}

// TestPrintStatsUnknown: the figures of a part that could not be read
// print as "?", not as a zero to believe; in JSON they are null.
func TestPrintStatsUnknown(t *testing.T) {
	s := admin.Stats{At: time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC), Pending: 3, OldestAge: time.Minute,
		Topics: []admin.TopicStats{{Topic: "orders", Pending: 3, OldestAge: time.Minute}},
		Shards: []admin.ShardStats{{Shard: 1, Pending: 3, OldestAge: time.Minute}},
		Failed: []admin.StepFailure{{Step: admin.StepDeadLetters, Err: "no table"}, {Step: admin.StepRetries, Err: "timeout"}, {Step: admin.StepRelays, Err: "timeout"}}}
	var b strings.Builder
	printStats(&b, "db", s, false)
	out := b.String()
	for _, want := range []string{
		"pending 3  oldest 1m0s  retrying ?  dead letters ?  relays alive ?\n",
		"\norders  3        1m0s    ?             ?\n",
		"WAITING FOR A RETRY: ? (could not be read)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("printStats lacks %q:\n%s", want, out)
		}
	}
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"pending":3,`, `"retrying":null`, `"dead_letters":null`, `"relays_alive":null`, `"waiting":null`,
		`"errors":null`, `"relays":null`, `"topic":"orders","pending":3,"oldest_age_ns":60000000000,"dead_letters":null,"last_dead_age_ns":null`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
	s.Failed = []admin.StepFailure{{Step: admin.StepPending, Err: "timeout"}}
	js, _ = json.Marshal(s)
	for _, want := range []string{`"pending":null,"oldest_age_ns":null,"retrying":0,`, `"shard":1,`, `"topic":"orders","pending":null`, `"waiting":[]`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON with pending failed lacks %s:\n%s", want, js)
		}
	}
	if strings.Contains(string(js), `"pending":3`) {
		t.Errorf("JSON with pending failed shows a pending count:\n%s", js)
	}
}
