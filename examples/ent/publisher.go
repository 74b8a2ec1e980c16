package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/outboxrelay/outbox"
)

// printPublisher is an outbox.Publisher that prints each record instead of
// sending it to a broker. In production use publisher/kafka.
type printPublisher struct {
	published chan outbox.Record

	mu sync.Mutex
	n  int
}

func newPrintPublisher() *printPublisher {
	return &printPublisher{published: make(chan outbox.Record, 100)}
}

// Publish prints recs and reports them all as delivered.
func (p *printPublisher) Publish(_ context.Context, recs []outbox.Record) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		p.n++
		fmt.Printf("published: topic=%s key=%s %s=%s value=%s\n", r.Topic, r.Key, outbox.HeaderID, r.MessageID, r.Value)
		select {
		case p.published <- r:
		default:
		}
	}
	return make([]error, len(recs))
}

func (p *printPublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Close implements outbox.Publisher.
func (p *printPublisher) Close() error { return nil }
