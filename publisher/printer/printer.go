// Package printer is an outbox.Publisher that prints each record instead of
// sending it to a broker, for examples and demos. In production use
// publisher/kafka.
package printer

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/outboxrelay/outbox"
)

// Publisher prints one line per record to its writer and reports every
// record as delivered. It is safe for concurrent use.
type Publisher struct {
	w         io.Writer
	published chan outbox.Record

	mu sync.Mutex
	n  int
}

// New returns a Publisher printing to w. Published gets the first 100
// records, for a caller that waits for one.
func New(w io.Writer) *Publisher {
	return &Publisher{w: w, published: make(chan outbox.Record, 100)}
}

// Publish prints recs, one line each, and reports them all as delivered.
func (p *Publisher) Publish(_ context.Context, recs []outbox.Record) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		p.n++
		fmt.Fprintf(p.w, "published: topic=%s key=%s %s=%s value=%s\n", r.Topic, r.Key, outbox.HeaderID, r.MessageID, r.Value)
		select {
		case p.published <- r:
		default:
		}
	}
	return make([]error, len(recs))
}

// Published delivers the records published so far, up to 100 not yet
// received; later ones are printed and counted but not delivered.
func (p *Publisher) Published() <-chan outbox.Record { return p.published }

// Count returns how many records were published.
func (p *Publisher) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Close implements outbox.Publisher; it does nothing.
func (p *Publisher) Close() error { return nil }
