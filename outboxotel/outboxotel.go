// Package outboxotel carries OpenTelemetry traces through the outbox: the
// request that enqueues a message, the relay that publishes it and the
// consumer that handles it share one trace.
//
//   - Enqueue itself writes the W3C trace context of its ctx (traceparent,
//     tracestate, baggage) into the message's headers, through
//     outbox.Config.Propagator (the global one by default).
//     ContextHeaders does the same as an outbox.Config.ContextHeaders
//     hook, for code that combines it with other values.
//   - NewTracer is an outbox.RelayConfig.Tracer: the relay starts a
//     producer span per record (OpenTelemetry messaging semantic
//     conventions for Kafka) as a child of the enqueuing span, and sends
//     its context in the record's headers, so a consumer that extracts them
//     continues the same trace.
//
// The root package depends on OpenTelemetry's API only (propagation);
// the SDK comes with this package's users (and tests), and only they pay
// for it.
package outboxotel

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/outboxrelay/outbox"
)

// ScopeName is the instrumentation scope of the relay's spans.
const ScopeName = "github.com/outboxrelay/outbox/outboxotel"

// ContextHeaders returns an outbox.Config.ContextHeaders hook that injects
// the trace context of Enqueue's ctx with p (nil: the global propagator,
// looked up at each call, so it may be set after the Outbox is made). It
// returns no header when ctx carries nothing to propagate or no propagator
// is set, so the messages stay as they were.
func ContextHeaders(p propagation.TextMapPropagator) func(context.Context) []outbox.Header {
	return func(ctx context.Context) []outbox.Header {
		prop := p
		if prop == nil {
			prop = otel.GetTextMapPropagator()
		}
		if len(prop.Fields()) == 0 {
			return nil // no propagator set
		}
		var c HeaderCarrier
		prop.Inject(ctx, &c)
		return c
	}
}

// Tracer is an outbox.RecordTracer that starts a producer span per record.
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	fields map[string]bool // the headers prop writes, replaced in each record
}

// NewTracer returns a RecordTracer whose spans come from tp (nil: the
// global TracerProvider) and whose context travels with p (nil: the global
// propagator).
func NewTracer(tp trace.TracerProvider, p propagation.TextMapPropagator) *Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if p == nil {
		p = otel.GetTextMapPropagator()
	}
	fields := map[string]bool{}
	for _, f := range p.Fields() {
		fields[f] = true
	}
	return &Tracer{tracer: tp.Tracer(ScopeName), prop: p, fields: fields}
}

// StartPublish implements outbox.RecordTracer: a span "send <topic>" of
// kind producer, child of the context in rec's headers (the enqueuing
// span), whose own context replaces it in rec's headers. A span that is not
// recorded (its trace not sampled) leaves the headers as they are, so the
// trace id and the sampling decision travel on at little cost.
//
// A record enqueued without a trace context gets no span at all, whatever
// the sampler: the relay continues traces, it does not start them (a root
// span per record would make a one-span trace of every untraced message,
// at the full cost of a sampled span).
func (t *Tracer) StartPublish(ctx context.Context, rec *outbox.Record) func(error) {
	in := HeaderCarrier(rec.Headers)
	parent := t.prop.Extract(ctx, &in)
	if !trace.SpanContextFromContext(parent).IsValid() {
		return endNothing
	}
	ctx, span := t.tracer.Start(parent, "send "+rec.Topic, producer)
	if !span.IsRecording() {
		span.End()
		return endNothing
	}
	span.SetAttributes(
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("send"),
		semconv.MessagingDestinationName(rec.Topic),
		semconv.MessagingMessageID(rec.MessageID),
	)
	hs := make(HeaderCarrier, 0, len(rec.Headers)+2)
	for _, h := range rec.Headers {
		if !t.fields[h.Key] {
			hs = append(hs, h)
		}
	}
	t.prop.Inject(ctx, &hs)
	rec.Headers = hs
	return func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "publish failed")
		}
		span.End()
	}
}

// producer is the start option of every span.
var producer = trace.WithSpanKind(trace.SpanKindProducer)

// endNothing ends a span that was not recorded.
func endNothing(error) {}

var _ outbox.RecordTracer = (*Tracer)(nil)
