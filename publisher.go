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
//   - The records of one call never share a key: the relay publishes a
//     key's messages one call after another, so a publisher may send the
//     records of a call in parallel and in any order.
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
