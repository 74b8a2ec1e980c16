package outboxtest_test

import (
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/publisher/publishertest"
)

// TestFakePublisherConformance: FakePublisher keeps the Publisher contract
// that publisher/kafka keeps, so tests against it can be trusted.
func TestFakePublisherConformance(t *testing.T) {
	publishertest.Run(t, publishertest.Harness{
		MaxMessageBytes: 64 << 10,
		Concurrent:      true,
		Timeout:         5 * time.Second,
		New: func(tb testing.TB) (outbox.Publisher, publishertest.Backend) {
			p := outboxtest.NewFakePublisher()
			p.SetMaxMessageBytes(64 << 10)
			return p, publishertest.Backend{
				Received: func(_ testing.TB, topic string, _ int, _ time.Duration) []outbox.Record {
					var out []outbox.Record
					for _, r := range p.Published() {
						if r.Topic == topic {
							out = append(out, r)
						}
					}
					return out
				},
				Unavailable: func(testing.TB) func() {
					p.SetHook(func(outbox.Record) error { return outboxtest.ErrUnavailable })
					return func() { p.SetHook(nil) }
				},
				Hold: func(testing.TB) func() {
					p.Block()
					return p.Unblock
				},
			}
		},
	})
}
