package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxotel"
	"github.com/outboxrelay/outbox/prommetrics"
)

// nopPublisher acknowledges everything at once.
type nopPublisher struct{}

func (nopPublisher) Publish(_ context.Context, recs []outbox.Record) []error {
	return make([]error, len(recs))
}
func (nopPublisher) Close() error     { return nil }
func (nopPublisher) OrdersKeys() bool { return true }

// BenchmarkPublishBatchObserved is the relay's CPU cost per record of a
// batch of 1000 (decode, plan, publish to a publisher that does nothing,
// outcome), without an observer, with prommetrics, and with prommetrics and
// an OpenTelemetry producer span per record (spans dropped): "all" records
// every span, "all-unsampled" continues traces whose request was not
// sampled (parent-based sampling: the spans are not recorded, their context
// still travels).
// It isolates what the hooks cost from the database and the broker:
//
//	go test -run '^$' -bench PublishBatchObserved -benchmem .
func BenchmarkPublishBatchObserved(b *testing.B) {
	const n, shards = 1000, 64
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"
	for _, mode := range []string{"off", "metrics", "all", "all-unsampled"} {
		b.Run(mode, func(b *testing.B) {
			cfg := outbox.RelayConfig{Dialect: dialect.Postgres(), NumShards: shards,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			hs := []outbox.Header{{Key: "content-type", Value: []byte("json")}}
			if mode != "off" {
				cfg.Observer = prommetrics.New(prommetrics.Options{})
			}
			switch mode {
			case "all":
				cfg.Tracer = outboxotel.NewTracer(tp, prop)
				hs = append(hs, outbox.Header{Key: "traceparent", Value: []byte(traceparent + "1")})
			case "all-unsampled":
				cfg.Tracer = outboxotel.NewTracer(tp, prop)
				hs = append(hs, outbox.Header{Key: "traceparent", Value: []byte(traceparent + "0")})
			}
			r, err := outbox.NewRelay(&sql.DB{}, nopPublisher{}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			outbox.HoldShardsForBench(r, shards)
			recs := make([]dialect.Row, n)
			enc := encodedHeaders(b, hs)
			for i := range recs {
				key := fmt.Appendf(nil, "key-%d", i%100)
				recs[i] = dialect.Row{RowID: int64(i + 1), MessageID: fmt.Sprint("m", i), Topic: "orders", Key: key,
					Value: make([]byte, 256), Headers: enc, Shard: int(outbox.KeyHash(key) % shards)}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if got := outbox.PublishBatchForBench(r, recs); got != n {
					b.Fatalf("published %d, want %d", got, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}

// encodedHeaders returns hs as the outbox table stores them.
func encodedHeaders(b *testing.B, hs []outbox.Header) []byte {
	b.Helper()
	enc := outbox.EncodeHeadersForBench(hs)
	if _, err := outbox.DecodeHeaders(enc); err != nil {
		b.Fatal(err)
	}
	return enc
}
