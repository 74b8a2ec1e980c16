package main

import (
	"context"
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxotel"
	"github.com/outboxrelay/outbox/prommetrics"
)

const observeHelp = `metrics or all: run with what relay run --http-addr (metrics) and also
OTEL_EXPORTER_OTLP_ENDPOINT (all) turn on, to measure their cost. metrics:
the relays get prommetrics (registered, the backlog gauges refreshed every
15s on a pool of their own). all: also an OpenTelemetry producer span per
record (SDK, always sampled, batched to an exporter that drops them), and
Enqueue writes the trace context of a request span into every message
(default: neither)`

// The values of --observe.
const (
	observeMetrics = "metrics"
	observeAll     = "all"
)

// instruments are the metrics and tracing of --observe. A nil
// *instruments is off: its methods then change nothing.
type instruments struct {
	metrics *prommetrics.Metrics
	tp      *sdktrace.TracerProvider
	prop    propagation.TextMapPropagator
	tracer  *outboxotel.Tracer
	stop    context.CancelFunc
}

// newInstruments starts the instruments of --observe; the backlog gauges
// are refreshed from db until close.
func newInstruments(ctx context.Context, d dialect.Dialect, db *sql.DB, tracing bool) *instruments {
	in := &instruments{metrics: prommetrics.New(prommetrics.Options{})}
	prometheus.NewRegistry().MustRegister(in.metrics)
	ctx, in.stop = context.WithCancel(ctx)
	go in.metrics.RefreshBacklog(ctx, d, db, 0, nil)
	if !tracing {
		return in
	}
	in.tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	in.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	in.tracer = outboxotel.NewTracer(in.tp, in.prop)
	return in
}

func (in *instruments) close() {
	if in != nil {
		in.stop()
		if in.tp != nil {
			_ = in.tp.Shutdown(context.Background())
		}
	}
}

// relay sets the relay's observer and tracer.
func (in *instruments) relay(cfg *outbox.RelayConfig) {
	if in != nil {
		cfg.Observer = in.metrics
		if in.tracer != nil {
			cfg.Tracer = in.tracer
		}
	}
}

// outbox sets Enqueue's trace context hook.
func (in *instruments) outbox(cfg *outbox.Config) {
	if in != nil && in.prop != nil {
		cfg.ContextHeaders = outboxotel.ContextHeaders(in.prop)
	}
}

// request returns ctx within a request span (ended by end), as an
// application's handler has it.
func (in *instruments) request(ctx context.Context) (_ context.Context, end func()) {
	if in == nil || in.tp == nil {
		return ctx, func() {}
	}
	ctx, span := in.tp.Tracer("bench").Start(ctx, "POST /bench", trace.WithSpanKind(trace.SpanKindServer))
	return ctx, func() { span.End() }
}
