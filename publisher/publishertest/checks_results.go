package publishertest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/outboxrelay/outbox"
)

// checkEmptyCall: Publish of no records returns no results.
func checkEmptyCall(tb testing.TB, h Harness) {
	p, _ := h.start(tb)
	if errs := p.Publish(context.Background(), nil); len(errs) != 0 {
		tb.Errorf("publishertest: Publish of no records returned %d results", len(errs))
	}
}

// checkOneResultPerRecord: a call of many records, keyed and not, gets one
// nil result per record, and the backend holds every one of them.
func checkOneResultPerRecord(tb testing.TB, h Harness) {
	p, b := h.start(tb)
	const topic = "publishertest-results"
	recs := records(topic, "r", 300)
	for i := range recs {
		if i%10 == 0 {
			recs[i].Key = nil // no key: spread anywhere
		}
	}
	requireAllNil(tb, recs, h.publish(tb, p, recs))
	h.requireReceived(tb, b, topic, recs)
}

// roundTripRecords exercise what a record can carry: null and empty keys,
// values and header values, repeated header names, all byte values.
func roundTripRecords(topic string) []outbox.Record {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return []outbox.Record{
		{MessageID: "rt-headers", Topic: topic, Key: []byte("k1"), Value: []byte("v1"), Headers: []outbox.Header{
			{Key: "a", Value: []byte("1")}, {Key: "null", Value: nil}, {Key: "a", Value: []byte("2")}, {Key: "empty", Value: []byte{}},
		}},
		{MessageID: "rt-null", Topic: topic, Key: nil, Value: nil},
		{MessageID: "rt-empty", Topic: topic, Key: []byte("k-empty"), Value: []byte{}},
		{MessageID: "rt-binary", Topic: topic, Key: all[:32], Value: all, Headers: []outbox.Header{{Key: "bin", Value: all}}},
		{MessageID: "01890a5d-ac96-774b-bcce-b302099a8057", Topic: topic, Key: []byte("k-uuid"), Value: []byte("v")},
	}
}

// checkRoundTrip: the backend holds each record's key, value and headers
// as given (null distinct from empty, headers in order) and its ID in the
// outbox-id header.
func checkRoundTrip(tb testing.TB, h Harness) {
	p, b := h.start(tb)
	const topic = "publishertest-roundtrip"
	recs := roundTripRecords(topic)
	requireAllNil(tb, recs, h.publish(tb, p, recs))
	_, got := h.requireReceived(tb, b, topic, recs)
	for _, want := range recs {
		r, ok := got[want.MessageID]
		if !ok {
			continue // reported
		}
		if r.Topic != want.Topic {
			tb.Errorf("publishertest: record %s: topic %q, want %q", want.MessageID, r.Topic, want.Topic)
		}
		if !sameBytes(r.Key, want.Key) {
			tb.Errorf("publishertest: record %s: key %s, want %s", want.MessageID, describe(r.Key), describe(want.Key))
		}
		if !sameBytes(r.Value, want.Value) {
			tb.Errorf("publishertest: record %s: value %s, want %s", want.MessageID, describe(r.Value), describe(want.Value))
		}
		same := len(r.Headers) == len(want.Headers)
		for i := 0; same && i < len(r.Headers); i++ {
			same = r.Headers[i].Key == want.Headers[i].Key && sameBytes(r.Headers[i].Value, want.Headers[i].Value)
		}
		if !same {
			tb.Errorf("publishertest: record %s: headers %s, want %s (then %s)", want.MessageID,
				describeHeaders(r.Headers), describeHeaders(want.Headers), outbox.HeaderID)
		}
	}
}

// checkKeyOrderAcrossCalls: the records of a key, published one call
// after another, reach the backend in that order.
func checkKeyOrderAcrossCalls(tb testing.TB, h Harness) {
	p, b := h.start(tb)
	const topic, keys, calls = "publishertest-order", 8, 6
	var all []outbox.Record
	for c := range calls {
		recs := make([]outbox.Record, keys)
		for k := range recs {
			id := fmt.Sprintf("k%d-c%d", k, c)
			recs[k] = outbox.Record{MessageID: id, Topic: topic, Key: fmt.Appendf(nil, "k%d", k), Value: []byte(id)}
		}
		requireAllNil(tb, recs, h.publish(tb, p, recs))
		all = append(all, recs...)
	}
	got, _ := h.requireReceived(tb, b, topic, all)
	next := make(map[string]int) // key -> the call whose record comes next
	for _, r := range got {
		k := string(r.Key)
		want := fmt.Sprintf("%s-c%d", k, next[k])
		if r.MessageID != want {
			tb.Errorf("publishertest: key %s: the backend holds %s where %s comes next: a key's records are out of order", k, r.MessageID, want)
			return
		}
		next[k]++
	}
}

// checkConcurrentPublish: a publisher that says it is safe for concurrent
// use gets every record of concurrent calls through.
func checkConcurrentPublish(tb testing.TB, h Harness) {
	if !h.Concurrent {
		tb.Skip("publishertest: Harness.Concurrent is false")
	}
	p, b := h.start(tb)
	const topic, goroutines, calls, size = "publishertest-concurrent", 4, 5, 20
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		all []outbox.Record
	)
	for g := range goroutines {
		wg.Go(func() {
			for c := range calls {
				recs := records(topic, fmt.Sprintf("g%d-c%d", g, c), size)
				ctx, cancel := context.WithTimeout(context.Background(), h.timeout())
				errs := p.Publish(ctx, recs)
				cancel()
				if len(errs) != len(recs) {
					tb.Errorf("publishertest: Publish of %d records returned %d results", len(recs), len(errs))
					return
				}
				for i, err := range errs {
					if err != nil {
						tb.Errorf("publishertest: record %s: %v", recs[i].MessageID, err)
					}
				}
				mu.Lock()
				all = append(all, recs...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	h.requireReceived(tb, b, topic, all)
}

// checkKeyOrderWithinCall: an outbox.OrderedPublisher gets many records of
// a key in one call and the backend holds them in call order; an oversize
// record among them fails permanently and the records after it, of its key
// too, still go through.
func checkKeyOrderWithinCall(tb testing.TB, h Harness) {
	p, b := h.start(tb)
	if op, ok := p.(outbox.OrderedPublisher); !ok || !op.OrdersKeys() {
		tb.Skip("publishertest: not an outbox.OrderedPublisher: the relay gives it one record per key per call")
	}
	const topic, keys, perKey = "publishertest-hot", 3, 100
	var recs, oks []outbox.Record
	for i := range keys * perKey {
		id := fmt.Sprintf("k%d-%03d", i%keys, i/keys)
		r := outbox.Record{MessageID: id, Topic: topic, Key: fmt.Appendf(nil, "k%d", i%keys), Value: []byte(id)}
		if i == keys*perKey/2 && h.MaxMessageBytes > 0 {
			r = h.oversize(topic, id)
			r.Key = fmt.Appendf(nil, "k%d", i%keys)
		} else {
			oks = append(oks, r)
		}
		recs = append(recs, r)
	}
	errs := h.publish(tb, p, recs)
	for i, err := range errs {
		big := h.MaxMessageBytes > 0 && len(recs[i].Value) > h.MaxMessageBytes
		switch {
		case big && !outbox.IsPermanent(err):
			tb.Errorf("publishertest: oversize record %s: %v, want a permanent error", recs[i].MessageID, err)
		case !big && err != nil:
			tb.Errorf("publishertest: record %s: %v, want nil (a permanent failure of an earlier record does not hold its key back)", recs[i].MessageID, err)
		}
	}
	got, _ := h.requireReceived(tb, b, topic, oks)
	last := map[string]string{}
	for _, r := range got {
		k := string(r.Key)
		if r.MessageID <= last[k] {
			tb.Errorf("publishertest: key %s: the backend holds %s after %s: a key's records within one call are out of order", k, r.MessageID, last[k])
			return
		}
		last[k] = r.MessageID
	}
}
