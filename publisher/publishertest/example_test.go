package publishertest_test

import (
	"fmt"

	"github.com/outboxrelay/outbox/publisher/publishertest"
)

// A publisher's own test hands Run a Harness, as outboxtest's does for
// FakePublisher:
//
//	func TestConformance(t *testing.T) {
//		publishertest.Run(t, publishertest.Harness{
//			MaxMessageBytes: 64 << 10, // the backend refuses larger records
//			Concurrent:      true,
//			New: func(tb testing.TB) (outbox.Publisher, publishertest.Backend) {
//				p := outboxtest.NewFakePublisher()
//				p.SetMaxMessageBytes(64 << 10)
//				return p, publishertest.Backend{
//					Received: func(_ testing.TB, topic string, _ int, _ time.Duration) []outbox.Record {
//						return recordsOf(p.Published(), topic)
//					},
//					Hold: func(testing.TB) func() { p.Block(); return p.Unblock },
//				}
//			},
//		})
//	}
//
// Run then runs these checks as subtests; those that need a capability the
// harness lacks (Backend.Unavailable here) are skipped.
func Example() {
	for _, name := range publishertest.Checks() {
		fmt.Println(name)
	}
	// Output:
	// EmptyCall
	// OneResultPerRecord
	// RoundTrip
	// KeyOrderAcrossCalls
	// KeyOrderWithinCall
	// OversizeIsPermanent
	// ResultsInOrder
	// CanceledContext
	// ContextEndsInFlight
	// Unavailable
	// ConcurrentPublish
	// Close
}
