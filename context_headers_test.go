package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

type ctxKey struct{}

// requestID is a Config.ContextHeaders hook: the request id of ctx, if any.
func requestID(ctx context.Context) []outbox.Header {
	id, ok := ctx.Value(ctxKey{}).(string)
	if !ok {
		return nil
	}
	return []outbox.Header{{Key: "request-id", Value: []byte(id)}}
}

func TestContextHeaders(t *testing.T) {
	own := outbox.Header{Key: "request-id", Value: []byte("caller")}
	for _, tc := range []struct {
		name     string
		override bool
		ctxID    string // "" : none in ctx
		headers  []outbox.Header
		want     string
	}{
		{"added", false, "r-1", nil, "[request-id=r-1]"},
		{"no value in ctx", false, "", nil, "[]"},
		{"caller's header wins", false, "r-1", []outbox.Header{own}, "[request-id=caller]"},
		{"override", true, "r-1", []outbox.Header{own, {Key: "x", Value: []byte("y")}}, "[x=y request-id=r-1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := dbtest.Open(t, "sqlite")
			ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards,
				ContextHeaders: requestID, OverrideHeaders: tc.override})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tc.ctxID != "" {
				ctx = context.WithValue(ctx, ctxKey{}, tc.ctxID)
			}
			msg := outbox.Message{Topic: "t", Value: []byte("v"), Headers: tc.headers}
			if err := ob.Enqueue(ctx, db.DB, msg); err != nil {
				t.Fatal(err)
			}
			if len(msg.Headers) != len(tc.headers) {
				t.Errorf("Enqueue changed the caller's message: %v", msg.Headers)
			}
			recs := readAvailable(t, db)
			hs, err := outbox.DecodeHeaders(recs[0].Headers)
			if err != nil {
				t.Fatal(err)
			}
			got := "["
			for i, h := range hs {
				if i > 0 {
					got += " "
				}
				got += fmt.Sprintf("%s=%s", h.Key, h.Value)
			}
			if got += "]"; got != tc.want {
				t.Errorf("stored headers %s, want %s", got, tc.want)
			}
		})
	}
}

// A header from the hook is validated like any other: a bad one fails the
// call and nothing is written.
func TestContextHeadersValidated(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards,
		ContextHeaders: func(context.Context) []outbox.Header {
			return []outbox.Header{{Key: outbox.HeaderID, Value: []byte("forged")}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	err = ob.Enqueue(context.Background(), db.DB, outbox.Message{Topic: "t", Value: []byte("v")})
	if !errors.Is(err, outbox.ErrInvalidHeader) {
		t.Fatalf("Enqueue: %v, want ErrInvalidHeader", err)
	}
	if n := len(readAvailable(t, db)); n != 0 {
		t.Fatalf("%d messages written, want none", n)
	}
}

// Enqueue writes the trace context of its ctx through OpenTelemetry's
// global propagator by default; Config.Propagator replaces it (an empty
// composite turns it off); a message's own traceparent wins.
func TestEnqueueInjectsTraceContext(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		if len(prev.Fields()) == 0 {
			prev = propagation.NewCompositeTextMapPropagator() // the global default cannot be set back
		}
		otel.SetTextMapPropagator(prev)
	})
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	const want = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	own := outbox.Header{Key: "traceparent", Value: []byte("00-11111111111111111111111111111111-2222222222222222-01")}
	for _, tc := range []struct {
		name    string
		prop    propagation.TextMapPropagator
		headers []outbox.Header
		want    string // the stored traceparent, "" for none
	}{
		{"the global propagator by default", nil, nil, want},
		{"an explicit propagator", propagation.TraceContext{}, nil, want},
		{"turned off", propagation.NewCompositeTextMapPropagator(), nil, ""},
		{"the caller's own traceparent wins", nil, []outbox.Header{own}, string(own.Value)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := dbtest.Open(t, "sqlite")
			ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards, Propagator: tc.prop})
			if err != nil {
				t.Fatal(err)
			}
			if err := ob.Enqueue(ctx, db.DB, outbox.Message{Topic: "t", Value: []byte("v"), Headers: tc.headers}); err != nil {
				t.Fatal(err)
			}
			hs, err := outbox.DecodeHeaders(readAvailable(t, db)[0].Headers)
			if err != nil {
				t.Fatal(err)
			}
			got, n := "", 0
			for _, h := range hs {
				if h.Key == "traceparent" {
					got, n = string(h.Value), n+1
				}
			}
			if got != tc.want || n > 1 {
				t.Errorf("stored traceparent %q (%d of them), want %q", got, n, tc.want)
			}
		})
	}
}
