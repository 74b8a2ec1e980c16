package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/outboxotel"
)

// tracing is the span export of relay run: off unless
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is
// set, then OTLP over HTTP/protobuf, configured by the standard OTEL_*
// variables (read by the OpenTelemetry SDK itself). HTTP rather than gRPC:
// it is the protocol the OTLP specification makes the default, it goes
// through ordinary HTTP proxies and load balancers, and its module is the
// smaller of the two (both link the generated collector stubs, which import
// grpc-go, so the binaries differ by only about 0.1 MB: see
// docs/operations.md).
type tracing struct {
	tp *sdktrace.TracerProvider
}

// otelChoices are the values relay run accepts for the OTEL_* variables
// that choose behaviour; anything else fails relay run at start.
var otelChoices = map[string][]string{
	"OTEL_TRACES_EXPORTER":               {"otlp", "none"},
	"OTEL_EXPORTER_OTLP_PROTOCOL":        {"http/protobuf"},
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": {"http/protobuf"},
	"OTEL_TRACES_SAMPLER": {"always_on", "always_off", "traceidratio",
		"parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"},
	"OTEL_EXPORTER_OTLP_COMPRESSION":        {"gzip", "none"},
	"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": {"gzip", "none"},
	"OTEL_SDK_DISABLED":                     {"true", "false"},
}

// otelEndpoints are the OTEL_* variables that hold the collector's URL,
// and otelMillis those that hold a whole number of milliseconds (or, for
// the batch span processor's sizes, of spans). The SDK would ignore a bad
// value of either, with a line on the standard logger, and export to its
// default (localhost:4318) or with its default timing: relay run refuses
// them instead.
var (
	otelEndpoints = []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}
	otelMillis    = []string{"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
		"OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"}
)

// checkOtelEnv reports the first OTEL_* variable relay run cannot honour.
func checkOtelEnv(getenv func(string) string) error {
	for name, ok := range otelChoices {
		v := strings.TrimSpace(getenv(name))
		if v != "" && !contains(ok, v) {
			return fmt.Errorf("%w: %s=%q is not supported (use one of %s)", ErrUsage, name, v, strings.Join(ok, ", "))
		}
	}
	for _, p := range strings.Split(getenv("OTEL_PROPAGATORS"), ",") {
		if p = strings.TrimSpace(p); p != "" && !contains([]string{"tracecontext", "baggage", "none"}, p) {
			return fmt.Errorf("%w: OTEL_PROPAGATORS: %q is not supported (use tracecontext, baggage or none)", ErrUsage, p)
		}
	}
	for _, name := range otelEndpoints {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: %s=%q is not a collector URL (use http://host:port or https://host:port, e.g. http://otel-collector:4318)",
				ErrUsage, name, redactEndpoint(v))
		}
	}
	for _, name := range otelMillis {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				return fmt.Errorf("%w: %s=%q is not supported (use a whole number, of milliseconds for a delay or timeout)", ErrUsage, name, v)
			}
		}
	}
	if arg := getenv("OTEL_TRACES_SAMPLER_ARG"); arg != "" && strings.HasSuffix(getenv("OTEL_TRACES_SAMPLER"), "traceidratio") {
		if f, err := strconv.ParseFloat(arg, 64); err != nil || f < 0 || f > 1 {
			return fmt.Errorf("%w: OTEL_TRACES_SAMPLER_ARG=%q must be a ratio between 0 and 1", ErrUsage, arg)
		}
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// startTracing sets up the export and rcfg.Tracer when the environment
// asks for it; otherwise it returns a tracing that does nothing.
func startTracing(ctx context.Context, getenv func(string) string, rcfg *outbox.RelayConfig, log *slog.Logger) (*tracing, error) {
	if err := checkOtelEnv(getenv); err != nil {
		return nil, err
	}
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		endpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if endpoint == "" || getenv("OTEL_TRACES_EXPORTER") == "none" || getenv("OTEL_SDK_DISABLED") == "true" {
		return &tracing{}, nil
	}
	// The SDK's own errors (a failed export, a dropped span) go to the
	// relay's log, not to the standard logger.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("OpenTelemetry error: spans may be lost", "err", err)
	}))
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(serviceName(getenv))))
	if err != nil {
		return nil, fmt.Errorf("%w: OpenTelemetry resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME): %w", ErrUsage, err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	prop := propagators(getenv("OTEL_PROPAGATORS"))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)
	rcfg.Tracer = outboxotel.NewTracer(tp, prop)
	log.Info("exporting traces", "exporter", "otlp/http", "endpoint", redactEndpoint(endpoint))
	return &tracing{tp: tp}, nil
}

// close flushes the spans (within two seconds) and stops the export.
func (t *tracing) close(log *slog.Logger) {
	if t.tp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		log.Warn("flushing traces failed", "err", err)
	}
}

// serviceName is OTEL_SERVICE_NAME, or outbox-relay.
func serviceName(getenv func(string) string) string {
	if s := getenv("OTEL_SERVICE_NAME"); s != "" {
		return s
	}
	return "outbox-relay"
}

// propagators builds OTEL_PROPAGATORS (checked): tracecontext and baggage
// by default.
func propagators(env string) propagation.TextMapPropagator {
	var ps []propagation.TextMapPropagator
	if strings.TrimSpace(env) == "" {
		env = "tracecontext,baggage"
	}
	for _, p := range strings.Split(env, ",") {
		switch strings.TrimSpace(p) {
		case "tracecontext":
			ps = append(ps, propagation.TraceContext{})
		case "baggage":
			ps = append(ps, propagation.Baggage{})
		}
	}
	return propagation.NewCompositeTextMapPropagator(ps...)
}

// redactEndpoint drops the user information of an endpoint URL for the logs.
func redactEndpoint(s string) string {
	if at := strings.LastIndex(s, "@"); at >= 0 {
		if scheme := strings.Index(s, "://"); scheme >= 0 && scheme < at {
			return s[:scheme+3] + "REDACTED@" + s[at+1:]
		}
	}
	return s
}
