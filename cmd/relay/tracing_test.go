package main

import (
	"errors"
	"testing"
)

func TestCheckOtelEnv(t *testing.T) {
	for _, tc := range []struct {
		env map[string]string
		ok  bool
	}{
		{map[string]string{}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, true},
		{map[string]string{"OTEL_PROPAGATORS": "tracecontext, baggage"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false},
		{map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, false},
		{map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, false},
		{map[string]string{"OTEL_PROPAGATORS": "tracecontext,b3"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4318", "OTEL_EXPORTER_OTLP_TIMEOUT": "5000", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "not a url"}, false},
		{map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "-1"}, false},
	} {
		err := checkOtelEnv(func(k string) string { return tc.env[k] })
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrUsage)) {
			t.Errorf("%v: %v, want ok=%v (a usage error otherwise)", tc.env, err, tc.ok)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://collector:4318":             "http://collector:4318",
		"https://user:secret@collector:443": "https://REDACTED@collector:443",
	} {
		if got := redactEndpoint(in); got != want {
			t.Errorf("redactEndpoint(%q) = %q, want %q", in, got, want)
		}
	}
}
