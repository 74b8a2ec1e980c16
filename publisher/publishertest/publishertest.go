// Package publishertest is the conformance suite of outbox.Publisher: one
// Run that every publisher (publisher/kafka, outboxtest.FakePublisher, and
// any later one) must pass, so that the relay, and the fakes users test
// against, can be trusted to behave alike.
//
// A publisher's test gives Run a Harness: a way to make a new publisher
// with its backend, to read back what the backend received and, where the
// backend can, to make it unavailable or hold a publish in flight. The
// checks that need a capability the harness lacks are skipped, as
// watermill's universal pub/sub tests do with their Features.
//
// The package imports no broker client: a harness for a real broker lives
// in that publisher's own tests.
package publishertest

import (
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
)

// Harness makes publishers for the suite and says what their backend can do.
type Harness struct {
	// New returns a new publisher and its backend, for one check. Each
	// check calls it once. Release what it starts with tb.Cleanup; the
	// suite closes the publisher itself (Close must be idempotent). Required.
	New func(tb testing.TB) (outbox.Publisher, Backend)
	// MaxMessageBytes is the backend's limit on a record: a record whose
	// key, value and headers add up to more fails with an error marked
	// outbox.Permanent, while records of a few hundred bytes pass. 0: the
	// backend has no limit, and the checks that need one (including the
	// order of mixed results) are skipped.
	MaxMessageBytes int
	// Concurrent says that the publisher is safe for concurrent Publish
	// calls (the relay makes one at a time, so it is not required).
	Concurrent bool
	// Timeout bounds each Publish call that should succeed, and the wait
	// for records to reach the backend. Default 30s.
	Timeout time.Duration
}

// Backend is the broker a publisher writes to, as the suite sees it. A
// nil capability means the backend lacks it; the checks that need it are
// skipped.
type Backend struct {
	// Received waits until the backend holds at least n records of topic,
	// and returns them (more if more are there) in the order the backend
	// keeps them: per key, the order a consumer would see. Each record's
	// MessageID is the value of its outbox-id header ("" if it has none)
	// and Headers are its other headers, in order; Attempts and CreatedAt
	// are not compared. It fails tb if fewer than n arrive within timeout.
	// Required.
	Received func(tb testing.TB, topic string, n int, timeout time.Duration) []outbox.Record
	// Unavailable, when set, makes the backend unavailable: every record
	// published until restore is called fails (after the publisher's own
	// retries) with an error wrapping outbox.ErrUnavailable. After restore,
	// publishing works again, perhaps after a while.
	Unavailable func(tb testing.TB) (restore func())
	// Hold, when set, makes the backend hold the records it receives
	// without answering until release is called, so that a Publish stays
	// in flight.
	Hold func(tb testing.TB) (release func())
}

// Run runs every check against publishers from h, each as a subtest of t
// named as in Checks.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("publishertest: Harness.New is required")
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, h) })
	}
}

// Checks returns the names of the checks Run runs, in order; run one alone
// with go test -run 'TestConformance/<name>'.
func Checks() []string {
	names := make([]string, len(checks))
	for i, c := range checks {
		names[i] = c.name
	}
	return names
}

// check is one requirement of the contract.
type check struct {
	name string
	fn   func(tb testing.TB, h Harness)
}

// checks are the suite, in the order Run runs them.
var checks = []check{
	{"EmptyCall", checkEmptyCall},
	{"OneResultPerRecord", checkOneResultPerRecord},
	{"RoundTrip", checkRoundTrip},
	{"KeyOrderAcrossCalls", checkKeyOrderAcrossCalls},
	{"KeyOrderWithinCall", checkKeyOrderWithinCall},
	{"OversizeIsPermanent", checkOversizeIsPermanent},
	{"ResultsInOrder", checkResultsInOrder},
	{"CanceledContext", checkCanceledContext},
	{"ContextEndsInFlight", checkContextEndsInFlight},
	{"Unavailable", checkUnavailable},
	{"ConcurrentPublish", checkConcurrentPublish},
	{"Close", checkClose},
}
