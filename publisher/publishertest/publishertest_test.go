package publishertest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
)

// memPublisher is a minimal correct publisher: an in-memory backend with a
// size limit, an outage switch and a hold.
type memPublisher struct {
	mu      sync.Mutex
	got     []outbox.Record
	down    bool
	held    chan struct{} // non-nil: Publish waits for it to close
	closed  bool
	maxSize int
}

func (m *memPublisher) Publish(ctx context.Context, recs []outbox.Record) []error {
	m.mu.Lock()
	held := m.held
	m.mu.Unlock()
	errs := make([]error, len(recs))
	if held != nil {
		select {
		case <-held:
		case <-ctx.Done():
			for i := range errs {
				errs[i] = ctx.Err()
			}
			return errs
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range recs {
		size := len(r.Key) + len(r.Value)
		switch {
		case ctx.Err() != nil:
			errs[i] = ctx.Err()
		case m.closed, m.down:
			errs[i] = fmt.Errorf("%w: mem", outbox.ErrUnavailable)
		case size > m.maxSize:
			errs[i] = outbox.Permanent(errors.New("mem: too large"))
		default:
			m.got = append(m.got, r)
		}
	}
	return errs
}

func (m *memPublisher) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func (m *memPublisher) received(_ testing.TB, topic string, _ int, _ time.Duration) []outbox.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []outbox.Record
	for _, r := range m.got {
		if r.Topic == topic {
			out = append(out, r)
		}
	}
	return out
}

// memHarness wraps each new memPublisher with wrap (nil: none).
func memHarness(wrap func(*memPublisher) outbox.Publisher) Harness {
	return Harness{
		MaxMessageBytes: 1000,
		Concurrent:      true,
		Timeout:         2 * time.Second,
		New: func(tb testing.TB) (outbox.Publisher, Backend) {
			m := &memPublisher{maxSize: 1000}
			var p outbox.Publisher = m
			if wrap != nil {
				p = wrap(m)
			}
			return p, Backend{
				Received: m.received,
				Unavailable: func(testing.TB) func() {
					m.mu.Lock()
					defer m.mu.Unlock()
					m.down = true
					return func() { m.mu.Lock(); m.down = false; m.mu.Unlock() }
				},
				Hold: func(testing.TB) func() {
					m.mu.Lock()
					defer m.mu.Unlock()
					ch := make(chan struct{})
					m.held = ch
					return func() { m.mu.Lock(); m.held = nil; m.mu.Unlock(); close(ch) }
				},
			}
		},
	}
}

func TestMemPublisherConforms(t *testing.T) {
	Run(t, memHarness(nil))
}

// broken wraps a correct publisher and breaks its Publish.
type broken struct {
	*memPublisher
	publish func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error
	close   func(m *memPublisher) error
}

func (b broken) Publish(ctx context.Context, recs []outbox.Record) []error {
	return b.publish(b.memPublisher, ctx, recs)
}

func (b broken) Close() error {
	if b.close != nil {
		return b.close(b.memPublisher)
	}
	return b.memPublisher.Close()
}

func breakPublish(fn func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error) func(*memPublisher) outbox.Publisher {
	return func(m *memPublisher) outbox.Publisher { return broken{memPublisher: m, publish: fn} }
}

// fakeTB records failures instead of reporting them; FailNow and SkipNow
// end the check's goroutine, as with a real test.
type fakeTB struct {
	testing.TB // the real test, for what fakeTB does not override
	mu         sync.Mutex
	failures   []string
	skipped    bool
	cleanups   []func()
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Log(...any)                {}
func (f *fakeTB) Logf(string, ...any)       {}
func (f *fakeTB) Cleanup(fn func())         { f.mu.Lock(); f.cleanups = append(f.cleanups, fn); f.mu.Unlock() }
func (f *fakeTB) Error(args ...any)         { f.fail(fmt.Sprint(args...)) }
func (f *fakeTB) Errorf(s string, a ...any) { f.fail(fmt.Sprintf(s, a...)) }
func (f *fakeTB) Fail()                     { f.fail("Fail") }
func (f *fakeTB) FailNow()                  { f.fail("FailNow"); runtime.Goexit() }
func (f *fakeTB) Fatal(args ...any)         { f.fail(fmt.Sprint(args...)); runtime.Goexit() }
func (f *fakeTB) Fatalf(s string, a ...any) { f.fail(fmt.Sprintf(s, a...)); runtime.Goexit() }
func (f *fakeTB) Skip(...any)               { f.SkipNow() }
func (f *fakeTB) Skipf(string, ...any)      { f.SkipNow() }
func (f *fakeTB) SkipNow()                  { f.mu.Lock(); f.skipped = true; f.mu.Unlock(); runtime.Goexit() }
func (f *fakeTB) Skipped() bool             { f.mu.Lock(); defer f.mu.Unlock(); return f.skipped }
func (f *fakeTB) Failed() bool              { f.mu.Lock(); defer f.mu.Unlock(); return len(f.failures) > 0 }

func (f *fakeTB) fail(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, msg)
}

// runChecks runs every check of the suite on h with a fakeTB and returns
// the names of the checks that failed, with their first message.
func runChecks(t *testing.T, h Harness) map[string]string {
	failed := map[string]string{}
	for _, c := range checks {
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() {
				for i := len(f.cleanups) - 1; i >= 0; i-- {
					f.cleanups[i]()
				}
			}()
			c.fn(f, h)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			failed[c.name] = "hung"
			continue
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.failures) > 0 {
			failed[c.name] = f.failures[0]
		}
	}
	return failed
}

// TestSuiteCatchesBrokenPublishers: each way of breaking the contract is
// reported by the check meant to catch it.
func TestSuiteCatchesBrokenPublishers(t *testing.T) {
	if failed := runChecks(t, memHarness(nil)); len(failed) > 0 {
		t.Fatalf("the correct publisher fails %v", failed)
	}
	tests := []struct {
		name string
		wrap func(*memPublisher) outbox.Publisher
		want string // the check that must fail
	}{
		{"reverses results", breakPublish(func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error {
			errs := m.Publish(ctx, recs)
			slices.Reverse(errs)
			return errs
		}), "ResultsInOrder"},
		{"drops a result", breakPublish(func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error {
			errs := m.Publish(ctx, recs)
			if len(errs) > 1 {
				errs = errs[:len(errs)-1]
			}
			return errs
		}), "OneResultPerRecord"},
		{"marks nothing permanent", breakPublish(func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error {
			errs := m.Publish(ctx, recs)
			for i, err := range errs {
				if outbox.IsPermanent(err) {
					errs[i] = errors.New(err.Error())
				}
			}
			return errs
		}), "OversizeIsPermanent"},
		{"marks outages permanent", breakPublish(func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error {
			errs := m.Publish(ctx, recs)
			for i, err := range errs {
				if errors.Is(err, outbox.ErrUnavailable) {
					errs[i] = outbox.Permanent(err)
				}
			}
			return errs
		}), "Unavailable"},
		{"acknowledges what it drops", breakPublish(func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error {
			errs := m.Publish(ctx, recs[:len(recs)/2])
			return append(errs, make([]error, len(recs)-len(errs))...)
		}), "OneResultPerRecord"},
		{"ignores the context", breakPublish(func(m *memPublisher, _ context.Context, recs []outbox.Record) []error {
			return m.Publish(context.Background(), recs)
		}), "CanceledContext"},
		{"does not wait for the backend", breakPublish(func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error {
			go m.Publish(context.Background(), recs)
			return make([]error, len(recs))
		}), "ContextEndsInFlight"},
		{"loses the message ID", breakPublish(func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error {
			recs = slices.Clone(recs)
			for i := range recs {
				recs[i].MessageID = ""
			}
			return m.Publish(ctx, recs)
		}), "RoundTrip"},
		{"turns null into empty", breakPublish(func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error {
			recs = slices.Clone(recs)
			for i := range recs {
				if recs[i].Value == nil {
					recs[i].Value = []byte{}
				}
			}
			return m.Publish(ctx, recs)
		}), "RoundTrip"},
		{"drops headers", breakPublish(func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error {
			recs = slices.Clone(recs)
			for i := range recs {
				recs[i].Headers = nil
			}
			return m.Publish(ctx, recs)
		}), "RoundTrip"},
		{"publishes in reverse", breakPublish(func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error {
			// Each call's records go out in reverse, so a key's records
			// of two calls... stay in order; reverse across calls instead.
			m.mu.Lock()
			prev := slices.Clone(m.got)
			m.mu.Unlock()
			errs := m.Publish(ctx, recs)
			m.mu.Lock()
			added := slices.Clone(m.got[len(prev):])
			m.got = append(added, prev...)
			m.mu.Unlock()
			return errs
		}), "KeyOrderAcrossCalls"},
		{"keeps publishing after Close", func(m *memPublisher) outbox.Publisher {
			return broken{memPublisher: m,
				publish: func(m *memPublisher, ctx context.Context, recs []outbox.Record) []error {
					m.mu.Lock()
					m.closed = false
					m.mu.Unlock()
					return m.Publish(ctx, recs)
				}}
		}, "Close"},
		{"second Close fails", func(m *memPublisher) outbox.Publisher {
			return broken{memPublisher: m,
				publish: (*memPublisher).Publish,
				close: func(m *memPublisher) error {
					m.mu.Lock()
					defer m.mu.Unlock()
					if m.closed {
						return errors.New("already closed")
					}
					m.closed = true
					return nil
				}}
		}, "Close"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := runChecks(t, memHarness(tt.wrap))
			msg, ok := failed[tt.want]
			if !ok {
				t.Fatalf("check %s did not fail; failed: %v", tt.want, failed)
			}
			if !strings.HasPrefix(msg, "publishertest: ") {
				t.Errorf("failure message %q does not start with publishertest:", msg)
			}
		})
	}
}
