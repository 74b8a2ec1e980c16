package outboxtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/outboxtest"
)

// recorderWith returns a Recorder holding msgs.
func recorderWith(t *testing.T, msgs ...outbox.Message) *outboxtest.Recorder {
	t.Helper()
	rec := &outboxtest.Recorder{}
	if err := rec.Enqueue(context.Background(), outboxtest.NopExecer{}, msgs...); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestWantMatching(t *testing.T) {
	rec := recorderWith(t,
		outbox.Message{ID: "id-1", Topic: "orders", Key: []byte("o-1"), Value: []byte(`{"total":3}`),
			Headers: []outbox.Header{{Key: "type", Value: []byte("created")}, {Key: "trace", Value: nil}}},
		outbox.Message{ID: "id-2", Topic: "orders", Key: []byte{}, Value: nil},
		outbox.Message{ID: "id-3", Topic: "audit"},
	)
	tests := []struct {
		name string
		want outboxtest.Want
		n    int
	}{
		{"zero Want matches all", outboxtest.Want{}, 3},
		{"topic", outboxtest.Want{Topic: "orders"}, 2},
		{"unknown topic", outboxtest.Want{Topic: "payments"}, 0},
		{"id", outboxtest.Want{ID: "id-3"}, 1},
		{"key", outboxtest.Want{Key: []byte("o-1")}, 1},
		{"empty key matches only the empty key", outboxtest.Want{Key: []byte{}}, 1},
		{"value", outboxtest.Want{Value: []byte(`{"total":3}`)}, 1},
		{"empty value does not match a null value", outboxtest.Want{Value: []byte{}}, 0},
		{"wrong value", outboxtest.Want{Topic: "orders", Value: []byte("x")}, 0},
		{"header", outboxtest.Want{Headers: []outbox.Header{{Key: "type", Value: []byte("created")}}}, 1},
		{"headers in any order", outboxtest.Want{Headers: []outbox.Header{{Key: "trace"}, {Key: "type", Value: []byte("created")}}}, 1},
		{"header with another value", outboxtest.Want{Headers: []outbox.Header{{Key: "type", Value: []byte("deleted")}}}, 0},
		{"null header does not match empty", outboxtest.Want{Headers: []outbox.Header{{Key: "trace", Value: []byte{}}}}, 0},
		{"missing header", outboxtest.Want{Headers: []outbox.Header{{Key: "tenant", Value: []byte("a")}}}, 0},
		{"all fields", outboxtest.Want{ID: "id-1", Topic: "orders", Key: []byte("o-1"), Value: []byte(`{"total":3}`),
			Headers: []outbox.Header{{Key: "type", Value: []byte("created")}}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outboxtest.RequireEnqueuedCount(t, rec, tt.want, tt.n)
			if tt.n == 0 {
				outboxtest.RequireNotEnqueued(t, rec, tt.want)
				return
			}
			got := outboxtest.RequireEnqueued(t, rec, tt.want)
			if tt.want.ID != "" && got.ID != tt.want.ID {
				t.Errorf("RequireEnqueued returned %q", got.ID)
			}
		})
	}
}

func TestRequireEnqueuedReturnsFirstMatch(t *testing.T) {
	rec := recorderWith(t,
		outbox.Message{Topic: "a", ID: "1"},
		outbox.Message{Topic: "b", ID: "2"},
		outbox.Message{Topic: "b", ID: "3"},
	)
	if got := outboxtest.RequireEnqueued(t, rec, outboxtest.Want{Topic: "b"}); got.ID != "2" {
		t.Errorf("got message %q, want the first match %q", got.ID, "2")
	}
}

func TestHelperFailures(t *testing.T) {
	long := []byte(strings.Repeat("v", 100))
	rec := recorderWith(t,
		outbox.Message{ID: "id-1", Topic: "orders", Key: []byte("o-1"), Value: long},
		outbox.Message{ID: "id-2", Topic: "audit", Headers: []outbox.Header{{Key: "type", Value: []byte("x")}}},
	)
	tests := []struct {
		name     string
		call     func(tb outboxtest.TB)
		contains []string
		excludes []string
	}{
		{
			name: "RequireEnqueued with no match",
			call: func(tb outboxtest.TB) {
				if m := outboxtest.RequireEnqueued(tb, rec, outboxtest.Want{Topic: "orders", Key: []byte("o-2")}); m.Topic != "" {
					t.Errorf("returned %+v after failing", m)
				}
			},
			contains: []string{
				`no message matching {topic="orders" key="o-2"} was enqueued`,
				"recorded 2:",
				`[0] topic="orders" key="o-1" value="` + strings.Repeat("v", 64) + `"...(100 bytes)`,
				`[1] topic="audit" key=<nil> value=<nil> headers=["type":"x"] id="id-2"`,
			},
			excludes: []string{strings.Repeat("v", 65)},
		},
		{
			name: "RequireEnqueued on an empty Recorder",
			call: func(tb outboxtest.TB) {
				outboxtest.RequireEnqueued(tb, &outboxtest.Recorder{}, outboxtest.Want{})
			},
			contains: []string{"no message matching {any message} was enqueued; nothing was recorded"},
		},
		{
			name: "RequireNotEnqueued with a match",
			call: func(tb outboxtest.TB) {
				outboxtest.RequireNotEnqueued(tb, rec, outboxtest.Want{Topic: "audit"})
			},
			contains: []string{`expected no message matching {topic="audit"}, found 1`, `[1] topic="audit"`},
		},
		{
			name: "RequireEnqueuedCount mismatch",
			call: func(tb outboxtest.TB) {
				outboxtest.RequireEnqueuedCount(tb, rec, outboxtest.Want{Headers: []outbox.Header{{Key: "type", Value: []byte("x")}}}, 2)
			},
			contains: []string{`expected 2 messages matching {headers=["type":"x"]}, got 1`, "recorded 2:"},
		},
		{
			name: "RequireEnqueuedCount negative",
			call: func(tb outboxtest.TB) {
				outboxtest.RequireEnqueuedCount(tb, rec, outboxtest.Want{}, -1)
			},
			contains: []string{"RequireEnqueuedCount: n is negative (-1)"},
		},
		{
			name:     "nil Recorder",
			call:     func(tb outboxtest.TB) { outboxtest.RequireEnqueued(tb, nil, outboxtest.Want{}) },
			contains: []string{"RequireEnqueued: nil *Recorder"},
		},
		{
			name:     "nil Recorder, RequireNotEnqueued",
			call:     func(tb outboxtest.TB) { outboxtest.RequireNotEnqueued(tb, nil, outboxtest.Want{}) },
			contains: []string{"RequireNotEnqueued: nil *Recorder"},
		},
		{
			name:     "nil Recorder, RequireEnqueuedCount",
			call:     func(tb outboxtest.TB) { outboxtest.RequireEnqueuedCount(tb, nil, outboxtest.Want{}, 0) },
			contains: []string{"RequireEnqueuedCount: nil *Recorder"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := &fakeTB{}
			tt.call(tb)
			if len(tb.Fatals) != 1 {
				t.Fatalf("Fatalf called %d times, want once: %q", len(tb.Fatals), tb.Fatals)
			}
			if tb.Helpers == 0 {
				t.Error("Helper was not called")
			}
			msg := tb.Fatals[0]
			if !strings.HasPrefix(msg, "outboxtest: ") {
				t.Errorf("message does not start with %q:\n%s", "outboxtest: ", msg)
			}
			for _, s := range tt.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("message does not contain %q:\n%s", s, msg)
				}
			}
			for _, s := range tt.excludes {
				if strings.Contains(msg, s) {
					t.Errorf("message contains %q:\n%s", s, msg)
				}
			}
		})
	}
}

func TestHelpersPassWithoutFatalf(t *testing.T) {
	rec := recorderWith(t, outbox.Message{Topic: "orders"})
	tb := &fakeTB{}
	outboxtest.RequireEnqueued(tb, rec, outboxtest.Want{Topic: "orders"})
	outboxtest.RequireNotEnqueued(tb, rec, outboxtest.Want{Topic: "audit"})
	outboxtest.RequireEnqueuedCount(tb, rec, outboxtest.Want{}, 1)
	if len(tb.Fatals) != 0 {
		t.Errorf("Fatalf called: %q", tb.Fatals)
	}
}

func TestFailureListIsCapped(t *testing.T) {
	msgs := make([]outbox.Message, 25)
	for i := range msgs {
		msgs[i] = outbox.Message{Topic: fmt.Sprintf("t%d", i)}
	}
	rec := recorderWith(t, msgs...)
	tb := &fakeTB{}
	outboxtest.RequireEnqueued(tb, rec, outboxtest.Want{Topic: "missing"})
	if len(tb.Fatals) != 1 {
		t.Fatalf("Fatalf called %d times", len(tb.Fatals))
	}
	msg := tb.Fatals[0]
	for _, s := range []string{"recorded 25:", `[19] topic="t19"`, "... and 5 more"} {
		if !strings.Contains(msg, s) {
			t.Errorf("message does not contain %q:\n%s", s, msg)
		}
	}
	if strings.Contains(msg, `"t20"`) {
		t.Errorf("message lists more than 20 messages:\n%s", msg)
	}
}

// *testing.T must satisfy TB.
var _ outboxtest.TB = (*testing.T)(nil)
var _ outboxtest.TB = testing.TB(nil)
