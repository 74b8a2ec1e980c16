package outboxotel_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/outboxotel"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

const topic = "orders"

// One trace from the request that enqueues a message, through the relay's
// producer span, to the span of a consumer that extracts the record's
// headers; baggage travels too.
func TestTraceThroughTheOutbox(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
		broker, err := localkafka.Start(1, []string{topic})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(broker.Close)

		// The application: a request span, Enqueue in its transaction.
		ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, ContextHeaders: outboxotel.ContextHeaders(prop)})
		if err != nil {
			t.Fatal(err)
		}
		member, _ := baggage.NewMember("tenant", "acme")
		bag, _ := baggage.New(member)
		ctx := baggage.ContextWithBaggage(context.Background(), bag)
		ctx, request := tp.Tracer("app").Start(ctx, "POST /orders", trace.WithSpanKind(trace.SpanKindServer))
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ob.Enqueue(ctx, tx, outbox.Message{Topic: topic, Key: []byte("o-1"), Value: []byte("created"),
			Headers: []outbox.Header{{Key: "content-type", Value: []byte("json")}}}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		request.End()

		// The relay, with a producer span per record.
		pub, err := kafka.New(kafka.Config{Brokers: broker.Addrs})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pub.Close() })
		relay, err := outbox.NewRelay(db.DB, pub, outbox.RelayConfig{Dialect: db.Dialect, PollInterval: 20 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Tracer: outboxotel.NewTracer(tp, prop)})
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- relay.Run(rctx) }()
		defer func() { stop(); <-done }()

		// The consumer: extract the headers, continue the trace.
		c, err := localkafka.NewConsumer(broker.Addrs, topic)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var got outboxotel.HeaderCarrier
		for len(got) == 0 && pctx.Err() == nil {
			for _, r := range c.Poll(pctx) {
				for _, h := range r.Headers {
					got = append(got, outbox.Header{Key: h.Key, Value: h.Value})
				}
			}
		}
		if len(got) == 0 {
			t.Fatal("no record consumed within 30s")
		}
		cctx := prop.Extract(context.Background(), &got)
		_, consumer := tp.Tracer("consumer").Start(cctx, "process "+topic, trace.WithSpanKind(trace.SpanKindConsumer))
		consumer.End()

		if v := baggage.FromContext(cctx).Member("tenant").Value(); v != "acme" {
			t.Errorf("baggage tenant = %q at the consumer, want acme", v)
		}
		if got.Get("content-type") != "json" || got.Get("outbox-id") == "" {
			t.Errorf("the record lost its own headers: %v", got.Keys())
		}
		// The relay ends its span when Publish returns, which may be after
		// the consumer got the record.
		spans := map[string]sdktrace.ReadOnlySpan{}
		for deadline := time.Now().Add(10 * time.Second); spans["send "+topic] == nil && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			for _, s := range rec.Ended() {
				spans[s.Name()] = s
			}
		}
		req, send, proc := spans["POST /orders"], spans["send "+topic], spans["process "+topic]
		if req == nil || send == nil || proc == nil {
			t.Fatalf("spans %v: want the request's, the relay's and the consumer's", keys(spans))
		}
		traceID := req.SpanContext().TraceID()
		for _, s := range []sdktrace.ReadOnlySpan{send, proc} {
			if s.SpanContext().TraceID() != traceID {
				t.Errorf("span %q is in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), traceID)
			}
		}
		if send.Parent().SpanID() != req.SpanContext().SpanID() || proc.Parent().SpanID() != send.SpanContext().SpanID() {
			t.Errorf("parents: send's %s (want the request %s), process's %s (want send %s)",
				send.Parent().SpanID(), req.SpanContext().SpanID(), proc.Parent().SpanID(), send.SpanContext().SpanID())
		}
		if send.SpanKind() != trace.SpanKindProducer {
			t.Errorf("relay span kind %s, want producer", send.SpanKind())
		}
		attrs := map[attribute.Key]string{}
		for _, a := range send.Attributes() {
			attrs[a.Key] = a.Value.String()
		}
		for k, want := range map[attribute.Key]string{
			"messaging.system": "kafka", "messaging.operation.type": "send",
			"messaging.destination.name": topic, "messaging.message.id": got.Get("outbox-id"),
		} {
			if attrs[k] != want {
				t.Errorf("relay span attribute %s = %q, want %q", k, attrs[k], want)
			}
		}
	})
}

// Without a propagator set (the global default), the hook adds no header
// and allocates nothing.
func TestContextHeadersUnset(t *testing.T) {
	hook := outboxotel.ContextHeaders(nil) // the global propagator: none set
	ctx := context.Background()
	if hs := hook(ctx); hs != nil {
		t.Fatalf("headers %v without a propagator, want none", hs)
	}
	if n := testing.AllocsPerRun(100, func() { hook(ctx) }); n != 0 {
		t.Errorf("%v allocations per Enqueue without a propagator, want 0", n)
	}
}

// A record enqueued without a trace context gets no span, even with a
// sampler that samples every root, and its headers stay as they were; a
// record with one gets its producer span.
func TestNoRootSpanForUntracedRecords(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	tr := outboxotel.NewTracer(tp, propagation.TraceContext{})
	own := []outbox.Header{{Key: "request-id", Value: []byte("r1")}}
	untraced := outbox.Record{Topic: topic, MessageID: "m1", Headers: own}
	tr.StartPublish(context.Background(), &untraced)(nil)
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans for a record without a trace context, want none", n)
	}
	if len(untraced.Headers) != 1 || &untraced.Headers[0] != &own[0] {
		t.Errorf("headers of an untraced record changed: %v", untraced.Headers)
	}
	traced := outbox.Record{Topic: topic, MessageID: "m2", Headers: []outbox.Header{
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}}
	tr.StartPublish(context.Background(), &traced)(nil)
	if spans := rec.Ended(); len(spans) != 1 || spans[0].Parent().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("spans %v for a traced record, want one in its trace", spans)
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
