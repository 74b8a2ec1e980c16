package outbox

import (
	"context"
	"time"
)

// Record is a committed outbox message on its way to the broker.
type Record struct {
	// MessageID is the message's ID (Message.ID, or the UUIDv7 Enqueue
	// made); publishers send it as the outbox-id header.
	MessageID string
	Topic     string
	Key       []byte // nil: no key
	Value     []byte // nil: null value
	Headers   []Header
	// Attempts counts the earlier failed attempts to publish it.
	Attempts int
	// CreatedAt is when it was enqueued (database clock).
	CreatedAt time.Time
}

// Publisher sends records to a broker. publisher/kafka is the Kafka
// implementation; outboxtest has a fake with failure injection.
//
// Contract:
//   - Publish returns one error per record, in the same order (nil: the
//     broker has the record durably). It blocks until every record has an
//     outcome or ctx ends (then the records without an outcome fail with
//     ctx's error).
//   - The records of one call never share a key, unless the publisher is
//     an OrderedPublisher: the relay publishes a key's messages one call
//     after another, so a publisher may send the records of a call in
//     parallel and in any order.
//   - A failure marked with Permanent goes to the dead-letter table; one
//     that wraps ErrUnavailable leaves the message untouched and backs the
//     relay off; any other is retried with backoff, up to MaxAttempts.
//   - Every record is sent with the header outbox-id = Record.MessageID.
//   - Publish is called by one goroutine at a time per relay; Close is
//     called by the owner of the publisher, not by the relay. Close is
//     idempotent; the records of a Publish after Close fail with an error
//     wrapping ErrUnavailable.
//
// Package publisher/publishertest checks this contract: every publisher,
// including the fakes, must pass its Run.
type Publisher interface {
	Publish(ctx context.Context, recs []Record) []error
	Close() error
}

// OrderedPublisher is a Publisher that keeps the order of a key's records
// within one call, so that the relay can give it a whole batch at once: a
// hot key then costs one broker round trip per batch, not one per message.
//
// When OrdersKeys reports true, Publish may get many records of one key, in
// the order they were enqueued, and must keep this rule: a record is
// appended only after every earlier record of its key in the call was
// appended or failed permanently (outbox.Permanent). A record that cannot
// be sent under the rule, because an earlier record of its key failed
// otherwise, fails with an error wrapping ErrNotSent and is not appended,
// now or later. publisher/kafka implements it with Kafka's own rules (see
// docs/design.md, "Hot keys"); package publisher/publishertest checks it.
type OrderedPublisher interface {
	Publisher
	// OrdersKeys reports whether Publish keeps the rule above. A wrapper
	// of an OrderedPublisher should forward it.
	OrdersKeys() bool
}

// Prober is implemented by a Publisher that can tell cheaply whether its
// broker is reachable again. While the broker is unavailable the relay
// probes it every ProbeInterval and resumes as soon as Probe returns nil,
// instead of sleeping out the whole outage backoff.
type Prober interface {
	// Probe returns nil when the broker answers. It must return by the
	// end of ctx.
	Probe(ctx context.Context) error
}
