package outboxtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/outboxrelay/outbox"
)

// ErrInjected is the failure FakePublisher injects unless told otherwise.
var ErrInjected = errors.New("outboxtest: injected publish failure")

// Failure kinds for FakePublisher's injections, as the relay classifies
// them.
var (
	// ErrRetriable fails an attempt; the relay retries it with backoff.
	ErrRetriable = ErrInjected
	// ErrPermanent is rejected for good; the relay dead-letters it.
	ErrPermanent = outbox.Permanent(fmt.Errorf("%w (permanent)", ErrInjected))
	// ErrUnavailable is a broker outage; the relay leaves the message
	// untouched and backs off.
	ErrUnavailable = fmt.Errorf("%w: %w", outbox.ErrUnavailable, ErrInjected)
)

// FakePublisher is an in-memory outbox.Publisher with failure injection, for
// tests of code that runs a Relay. It records what it accepted, in order.
// It is an outbox.OrderedPublisher: within a call, once a record of a key
// fails other than permanently, the later records of that key fail with
// outbox.ErrNotSent and are not published. SetOrdersKeys(false) makes it a
// plain Publisher that checks the contract the relay must keep then (no two
// records of one key in a call). It is safe for concurrent use.
type FakePublisher struct {
	mu         sync.Mutex
	unordered  bool
	published  []outbox.Record
	calls      int
	failNext   int
	failErr    error
	topics     map[string]error
	hook       func(outbox.Record) error
	violations []string
	closed     bool
	maxBytes   int           // 0: no limit
	blocked    chan struct{} // non-nil: Publish waits until it is closed
}

// NewFakePublisher returns a FakePublisher that accepts everything.
func NewFakePublisher() *FakePublisher {
	return &FakePublisher{topics: map[string]error{}}
}

// FailNext makes the next n records fail with err (ErrRetriable, ErrPermanent,
// ErrUnavailable or any error).
func (p *FakePublisher) FailNext(n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext, p.failErr = n, err
}

// FailTopic makes every record of topic fail with err until called again
// with a nil err.
func (p *FakePublisher) FailTopic(topic string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		delete(p.topics, topic)
		return
	}
	p.topics[topic] = err
}

// SetHook calls fn for every record before the other injections; a non-nil
// error fails the record. fn runs with the publisher's lock held: it must
// not call the publisher.
func (p *FakePublisher) SetHook(fn func(outbox.Record) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hook = fn
}

// SetMaxMessageBytes makes later records whose key, value and headers
// (names and values) add up to more than n bytes fail with an error marked
// outbox.Permanent that wraps outbox.ErrMessageTooLarge, as a broker
// refuses a record over its message.max.bytes. 0, the default, means no
// limit.
func (p *FakePublisher) SetMaxMessageBytes(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.maxBytes = n
}

// Block holds every later Publish call in flight, as a broker that does
// not answer, until Unblock: a call returns when Unblock is called (and
// then publishes as usual) or, with every record failed with ctx's error,
// when its ctx ends. Blocking a blocked publisher does nothing.
func (p *FakePublisher) Block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked == nil {
		p.blocked = make(chan struct{})
	}
}

// Unblock lets the calls held by Block, and later ones, proceed.
func (p *FakePublisher) Unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked != nil {
		close(p.blocked)
		p.blocked = nil
	}
}

// SetOrdersKeys sets what OrdersKeys reports (true by default): false makes
// a relay publish a key's records one call after another, and the fake
// report two records of one key in a call as a violation. The relay asks
// once, in NewRelay: call it before.
func (p *FakePublisher) SetOrdersKeys(ordered bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unordered = !ordered
}

// OrdersKeys implements outbox.OrderedPublisher.
func (p *FakePublisher) OrdersKeys() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.unordered
}

// Publish implements outbox.Publisher.
func (p *FakePublisher) Publish(ctx context.Context, recs []outbox.Record) []error {
	errs := make([]error, len(recs))
	p.mu.Lock()
	blocked := p.blocked
	p.mu.Unlock()
	if blocked != nil {
		select {
		case <-blocked:
		case <-ctx.Done():
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	keys := make(map[string]bool, len(recs))
	failed := map[string]bool{} // keys with a record that did not get through
	for i, rec := range recs {
		if rec.Key != nil {
			k := string(rec.Key)
			if keys[k] && p.unordered {
				p.violations = append(p.violations, fmt.Sprintf("call %d: two records of key %q in one Publish", p.calls, k))
			}
			keys[k] = true
			if failed[k] {
				errs[i] = fmt.Errorf("%w (outboxtest: key %q)", outbox.ErrNotSent, k)
				continue
			}
		}
		errs[i] = p.one(ctx, rec)
		if errs[i] != nil && !outbox.IsPermanent(errs[i]) && rec.Key != nil {
			failed[string(rec.Key)] = true
		}
	}
	return errs
}

// one publishes rec or returns the failure injected for it. p.mu is held.
func (p *FakePublisher) one(ctx context.Context, rec outbox.Record) error {
	var hookErr error
	if p.hook != nil {
		hookErr = p.hook(rec)
	}
	switch {
	case p.closed:
		return fmt.Errorf("%w: publisher closed", outbox.ErrUnavailable)
	case ctx.Err() != nil:
		return ctx.Err()
	case hookErr != nil:
		return hookErr
	case p.failNext > 0:
		p.failNext--
		if p.failErr == nil {
			return ErrInjected
		}
		return p.failErr
	case p.topics[rec.Topic] != nil:
		return p.topics[rec.Topic]
	case p.maxBytes > 0 && recordBytes(rec) > p.maxBytes:
		return outbox.Permanent(fmt.Errorf("outboxtest: record %s has %d bytes, more than %d: %w",
			rec.MessageID, recordBytes(rec), p.maxBytes, outbox.ErrMessageTooLarge))
	}
	p.published = append(p.published, pubCloneRecord(rec))
	return nil
}

// recordBytes is what SetMaxMessageBytes counts of r.
func recordBytes(r outbox.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Published returns copies of the records accepted so far, in order.
func (p *FakePublisher) Published() []outbox.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]outbox.Record, len(p.published))
	for i, r := range p.published {
		out[i] = pubCloneRecord(r)
	}
	return out
}

// Calls returns how many times Publish was called.
func (p *FakePublisher) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// Violations lists breaches of the Publisher contract by the caller.
func (p *FakePublisher) Violations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.violations...)
}

// Close makes later records fail as unavailable. It is idempotent.
func (p *FakePublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

func pubCloneRecord(r outbox.Record) outbox.Record {
	r.Key = pubCloneBytes(r.Key)
	r.Value = pubCloneBytes(r.Value)
	hs := make([]outbox.Header, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = outbox.Header{Key: h.Key, Value: pubCloneBytes(h.Value)}
	}
	if r.Headers == nil {
		hs = nil
	}
	r.Headers = hs
	return r
}

func pubCloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// WaitPublished waits until at least n records were published and returns
// them, or fails tb after timeout listing how many arrived.
func (p *FakePublisher) WaitPublished(tb TB, n int, timeout time.Duration) []outbox.Record {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs := p.Published()
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			tb.Fatalf("outboxtest: %d of %d records published within %s (%d Publish calls)", len(recs), n, timeout, p.Calls())
			return recs
		}
		time.Sleep(5 * time.Millisecond)
	}
}
