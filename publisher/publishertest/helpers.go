package publishertest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
)

// defaultTimeout is Harness.Timeout's default.
const defaultTimeout = 30 * time.Second

func (h Harness) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return defaultTimeout
}

// start makes a publisher for one check; it is closed when the check ends.
func (h Harness) start(tb testing.TB) (outbox.Publisher, Backend) {
	tb.Helper()
	p, b := h.New(tb)
	if p == nil || b.Received == nil {
		tb.Fatalf("publishertest: Harness.New returned no publisher or a Backend without Received")
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p, b
}

// publish calls p.Publish with the harness's timeout and checks that it
// returns one result per record.
func (h Harness) publish(tb testing.TB, p outbox.Publisher, recs []outbox.Record) []error {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout())
	defer cancel()
	errs := p.Publish(ctx, recs)
	if len(errs) != len(recs) {
		tb.Fatalf("publishertest: Publish of %d records returned %d results, want one per record", len(recs), len(errs))
	}
	return errs
}

// requireAllNil fails tb for every record that did not succeed.
func requireAllNil(tb testing.TB, recs []outbox.Record, errs []error) {
	tb.Helper()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				tb.Errorf("publishertest: record %d (%s) failed: %v", i, recs[i].MessageID, err)
			}
		}
	}
	if failed > 0 {
		tb.Fatalf("publishertest: %d of %d records failed, want none", failed, len(recs))
	}
}

// records makes n keyed records of topic, with IDs prefix-0, prefix-1, ...
func records(topic, prefix string, n int) []outbox.Record {
	recs := make([]outbox.Record, n)
	for i := range recs {
		id := fmt.Sprintf("%s-%d", prefix, i)
		recs[i] = outbox.Record{MessageID: id, Topic: topic, Key: []byte("key-" + id), Value: []byte("value-" + id)}
	}
	return recs
}

// byID indexes recs by MessageID, failing tb on a record without one.
func byID(tb testing.TB, recs []outbox.Record) map[string]outbox.Record {
	tb.Helper()
	m := make(map[string]outbox.Record, len(recs))
	for _, r := range recs {
		if r.MessageID == "" {
			tb.Errorf("publishertest: the backend holds a record of topic %s without the %s header (key %q)", r.Topic, outbox.HeaderID, r.Key)
			continue
		}
		m[r.MessageID] = r
	}
	return m
}

// requireReceived waits for want on the backend and fails tb for each
// record that is missing, and for each other record of the topic.
// It returns the records the backend holds, in its order, and by ID.
func (h Harness) requireReceived(tb testing.TB, b Backend, topic string, want []outbox.Record) ([]outbox.Record, map[string]outbox.Record) {
	tb.Helper()
	recs := b.Received(tb, topic, len(want), h.timeout())
	got := byID(tb, recs)
	wanted := make(map[string]bool, len(want))
	for _, w := range want {
		wanted[w.MessageID] = true
		if _, ok := got[w.MessageID]; !ok {
			tb.Errorf("publishertest: record %s was acknowledged but the backend does not hold it", w.MessageID)
		}
	}
	for id := range got {
		if !wanted[id] {
			tb.Errorf("publishertest: the backend holds record %s of topic %s, which was not acknowledged", id, topic)
		}
	}
	return recs, got
}

// sameBytes compares two byte slices, nil (null) and empty being different.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

// describe shows b for a failure message, null as <nil>.
func describe(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	if len(b) > 40 {
		return fmt.Sprintf("%q... (%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// describeHeaders shows hs for a failure message.
func describeHeaders(hs []outbox.Header) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Key + "=" + describe(h.Value)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
