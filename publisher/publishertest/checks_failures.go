package publishertest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
)

// oversize returns a record of topic larger than the harness's limit.
func (h Harness) oversize(topic, id string) outbox.Record {
	return outbox.Record{MessageID: id, Topic: topic, Key: []byte("key-" + id), Value: bytes.Repeat([]byte("x"), h.MaxMessageBytes+1)}
}

// checkOversizeIsPermanent: a record over the backend's limit fails
// permanently, and does not reach the backend.
func checkOversizeIsPermanent(tb testing.TB, h Harness) {
	if h.MaxMessageBytes <= 0 {
		tb.Skip("publishertest: Harness.MaxMessageBytes is 0: the backend has no limit")
	}
	p, b := h.start(tb)
	const topic = "publishertest-oversize"
	big := h.oversize(topic, "big")
	errs := h.publish(tb, p, []outbox.Record{big})
	if !outbox.IsPermanent(errs[0]) {
		tb.Errorf("publishertest: a record of %d bytes over a limit of %d failed with %v, want an error marked outbox.Permanent",
			len(big.Value), h.MaxMessageBytes, errs[0])
	}
	if errors.Is(errs[0], outbox.ErrUnavailable) {
		tb.Errorf("publishertest: the oversize record's error %v also wraps outbox.ErrUnavailable", errs[0])
	}
	// The publisher goes on working, and the backend holds only the small one.
	small := records(topic, "small", 1)
	requireAllNil(tb, small, h.publish(tb, p, small))
	h.requireReceived(tb, b, topic, small)
}

// checkResultsInOrder: in a call that mixes records that succeed and
// records that fail, each result belongs to the record at its position.
func checkResultsInOrder(tb testing.TB, h Harness) {
	if h.MaxMessageBytes <= 0 {
		tb.Skip("publishertest: Harness.MaxMessageBytes is 0: no record can be made to fail")
	}
	p, b := h.start(tb)
	const topic = "publishertest-mixed"
	pattern := "ok big ok ok big big ok big ok" // a pattern no rotation or reversal keeps
	var recs, oks []outbox.Record
	for i, kind := range bytes.Fields([]byte(pattern)) {
		r := records(topic, "m", i+1)[i]
		if string(kind) == "big" {
			r = h.oversize(topic, r.MessageID)
		} else {
			oks = append(oks, r)
		}
		recs = append(recs, r)
	}
	errs := h.publish(tb, p, recs)
	for i, err := range errs {
		big := len(recs[i].Value) > h.MaxMessageBytes
		switch {
		case big && !outbox.IsPermanent(err):
			tb.Errorf("publishertest: result %d (oversize record %s) is %v, want a permanent error: results out of order or lost",
				i, recs[i].MessageID, err)
		case !big && err != nil:
			tb.Errorf("publishertest: result %d (record %s, small) is %v, want nil: results out of order or misattributed",
				i, recs[i].MessageID, err)
		}
	}
	h.requireReceived(tb, b, topic, oks)
}

// checkCanceledContext: a call with a context that has ended fails every
// record with the context's error, not marked permanent.
func checkCanceledContext(tb testing.TB, h Harness) {
	p, _ := h.start(tb)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	recs := records("publishertest-canceled", "c", 3)
	errs := p.Publish(ctx, recs)
	if len(errs) != len(recs) {
		tb.Fatalf("publishertest: Publish of %d records returned %d results", len(recs), len(errs))
	}
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) || outbox.IsPermanent(err) {
			tb.Errorf("publishertest: record %d with a canceled context: %v, want context.Canceled, not permanent", i, err)
		}
	}
}

// checkContextEndsInFlight: while the backend holds the records, Publish
// waits; when ctx ends it returns promptly, failing every record without
// an outcome with ctx's error.
func checkContextEndsInFlight(tb testing.TB, h Harness) {
	p, b := h.start(tb)
	if b.Hold == nil {
		tb.Skip("publishertest: Backend.Hold is nil")
	}
	release := b.Hold(tb)
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	const wait = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	recs := records("publishertest-inflight", "f", 3)
	start := time.Now()
	done := make(chan []error, 1)
	go func() { done <- p.Publish(ctx, recs) }()
	var errs []error
	select {
	case errs = <-done:
	case <-time.After(wait + 10*time.Second):
		release()
		released = true
		tb.Fatalf("publishertest: Publish did not return within 10s after its context ended")
	}
	took := time.Since(start)
	if len(errs) != len(recs) {
		tb.Fatalf("publishertest: Publish of %d records returned %d results", len(recs), len(errs))
	}
	if took < wait/2 {
		tb.Errorf("publishertest: Publish returned after %s while the backend held the records; it must wait for outcomes", took)
	}
	if took > wait+2*time.Second {
		tb.Errorf("publishertest: Publish returned %s after its context ended, want promptly", took-wait)
	}
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) || outbox.IsPermanent(err) {
			tb.Errorf("publishertest: record %d held by the backend when ctx ended: %v, want context.DeadlineExceeded, not permanent", i, err)
		}
	}
	release()
	released = true
	// Held records may still land; the publisher goes on working.
	more := records("publishertest-inflight-after", "a", 2)
	requireAllNil(tb, more, h.publish(tb, p, more))
}

// checkUnavailable: while the backend is down every record fails with an
// error wrapping outbox.ErrUnavailable, not marked permanent; once it is
// back, publishing works again.
func checkUnavailable(tb testing.TB, h Harness) {
	p, b := h.start(tb)
	if b.Unavailable == nil {
		tb.Skip("publishertest: Backend.Unavailable is nil")
	}
	const topic = "publishertest-unavailable"
	restore := b.Unavailable(tb)
	recs := records(topic, "down", 3)
	for i, err := range h.publish(tb, p, recs) {
		if !errors.Is(err, outbox.ErrUnavailable) || outbox.IsPermanent(err) {
			tb.Errorf("publishertest: record %d while the backend is down: %v, want an error wrapping outbox.ErrUnavailable, not permanent", i, err)
		}
	}
	restore()
	deadline := time.Now().Add(h.timeout())
	for n := 0; ; n++ {
		rec := records(topic, "up", n+1)[n : n+1]
		err := h.publish(tb, p, rec)[0]
		if err == nil {
			h.requireReceived(tb, b, topic, rec)
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("publishertest: publishing still fails %s after the backend came back: %v", h.timeout(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkClose: Close returns nil and is idempotent; the records acknowledged
// before it are on the backend; records published after it fail with an
// error wrapping outbox.ErrUnavailable (the relay leaves them for later).
func checkClose(tb testing.TB, h Harness) {
	p, b := h.start(tb)
	const topic = "publishertest-close"
	before := records(topic, "before", 2)
	requireAllNil(tb, before, h.publish(tb, p, before))
	if err := p.Close(); err != nil {
		tb.Errorf("publishertest: Close: %v", err)
	}
	if err := p.Close(); err != nil {
		tb.Errorf("publishertest: a second Close: %v, want nil (Close is idempotent)", err)
	}
	after := records(topic, "after", 2)
	for i, err := range h.publish(tb, p, after) {
		if !errors.Is(err, outbox.ErrUnavailable) || outbox.IsPermanent(err) {
			tb.Errorf("publishertest: record %d published after Close: %v, want an error wrapping outbox.ErrUnavailable, not permanent", i, err)
		}
	}
	h.requireReceived(tb, b, topic, before)
}
