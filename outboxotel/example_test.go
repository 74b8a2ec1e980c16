package outboxotel_test

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/outboxotel"
)

// The application's side: Enqueue writes the trace context of its ctx into
// each message's headers. The relay's side is
//
//	outbox.RelayConfig{..., Tracer: outboxotel.NewTracer(nil, nil)}
//
// with the global TracerProvider and propagator.
func Example() {
	prop := propagation.TraceContext{}
	cfg := outbox.Config{ContextHeaders: outboxotel.ContextHeaders(prop)}

	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("app").Start(context.Background(), "POST /orders")
	defer span.End()
	for _, h := range cfg.ContextHeaders(ctx) {
		fmt.Println(h.Key, len(h.Value))
	}
	// Output: traceparent 55
}
