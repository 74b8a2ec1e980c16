package outbox

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/outboxrelay/outbox/dialect"
)

// Reporting a published record (the hot path) allocates nothing, with an
// observer or without. (A failure's report costs what IsPermanent costs,
// which the relay pays for the failure anyway.)
func TestRecordEventAllocatesNothing(t *testing.T) {
	recs := []dialect.Row{{RowID: 1, MessageID: "m", Topic: "t", Shard: 3, CreatedAt: time.Now()}}
	for _, obs := range []RelayObserver{nil, NopObserver{}} {
		r := &Relay{obs: observing{obs: obs}}
		r.obs.clock.set(time.Millisecond)
		b := &batchRun{r: r, recs: recs}
		errs := []error{nil}
		allocs := testing.AllocsPerRun(100, func() {
			r.publishEvent(errs, time.Millisecond, false)
			b.recordEvent(0, OutcomePublished, FailureNone, "")
		})
		if allocs != 0 {
			t.Errorf("observer %T: %v allocations per record, want 0", obs, allocs)
		}
	}
}

// With no propagator set (OpenTelemetry's global default), Enqueue's trace
// step adds nothing and allocates nothing, even for a ctx with a span.
func TestTraceHeadersFreeWithoutPropagator(t *testing.T) {
	o := &Outbox{cfg: Config{}}
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled}))
	msgs := []Message{{Topic: "t", Value: []byte("v")}}
	if len(otel.GetTextMapPropagator().Fields()) != 0 {
		t.Fatal("a global propagator is set: this test needs none")
	}
	var out []Message
	allocs := testing.AllocsPerRun(100, func() { out = o.withContextHeaders(ctx, msgs) })
	if allocs != 0 || &out[0] != &msgs[0] {
		t.Errorf("%v allocations, messages copied %v; want none, the messages as they were", allocs, &out[0] != &msgs[0])
	}
}
