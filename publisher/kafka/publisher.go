package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
)

// ErrClosed is the failure of records published after Close. Publish
// returns it wrapped with outbox.ErrUnavailable, so the relay leaves the
// messages for later.
var ErrClosed = errors.New("kafka: publisher closed")

// Publisher publishes outbox records to Kafka with one long-lived Sarama
// async producer. It implements outbox.Publisher and is safe for
// concurrent use.
type Publisher struct {
	producer        sarama.AsyncProducer
	maxMessageBytes int

	closing    chan struct{} // closed when Close starts
	dispatched chan struct{} // closed when the dispatcher has seen every outcome
	closeOnce  sync.Once

	// sending is held (read) while a Publish hands messages to the
	// producer, and by Close (write) before it closes the producer's input.
	sending sync.RWMutex
	// isolating is held (read) by every Publish while its records are in
	// flight, and (write) while records that the broker rejected with their
	// batch are sent again one by one, so that no other record shares their
	// batch.
	isolating sync.RWMutex
}

var _ outbox.Publisher = (*Publisher)(nil)

// New validates cfg and connects to the cluster. A wrong cfg gives an error
// wrapping ErrInvalidConfig that names the field; a cluster that cannot be
// reached gives one wrapping outbox.ErrUnavailable. With
// Config.MaxMessageBytes 0 it first asks the cluster for its limit (see
// Config.MaxMessageBytes).
func New(cfg Config) (*Publisher, error) {
	sc, err := cfg.sarama()
	if err != nil {
		return nil, err
	}
	if sc.Producer.MaxMessageBytes, err = maxMessageBytes(cfg, sc); err != nil {
		return nil, err
	}
	producer, err := sarama.NewAsyncProducer(cfg.Brokers, sc)
	if err != nil {
		return nil, connectError(err, cfg.SASL.Password)
	}
	p := &Publisher{
		producer:        producer,
		maxMessageBytes: sc.Producer.MaxMessageBytes,
		closing:         make(chan struct{}),
		dispatched:      make(chan struct{}),
	}
	go p.dispatch()
	return p, nil
}

// connectError describes why the producer could not be made.
func connectError(err error, password string) error {
	var ce sarama.ConfigurationError
	if errors.As(err, &ce) {
		return badField("Config", "is refused by Sarama: %s", redact(err.Error(), password))
	}
	msg := redact(err.Error(), password)
	if errors.Is(err, sarama.ErrSASLAuthenticationFailed) || errors.Is(err, sarama.ErrUnsupportedSASLMechanism) {
		// Wrong credentials do not get better by waiting: no ErrUnavailable.
		return fmt.Errorf("kafka: connecting: SASL authentication failed: %s", msg)
	}
	return fmt.Errorf("%w: kafka: connecting: %s", outbox.ErrUnavailable, msg)
}

// MaxMessageBytes returns the largest record the publisher sends: the
// Config.MaxMessageBytes given, or the one New read from the cluster, or
// outbox.DefaultMaxMessageBytes if the cluster did not say. Use it as
// outbox.Config.MaxMessageBytes so that Enqueue refuses, in the
// application's transaction, the messages the publisher would have to
// dead-letter:
//
//	ob, err := outbox.New(outbox.Config{Dialect: d, MaxMessageBytes: pub.MaxMessageBytes()})
func (p *Publisher) MaxMessageBytes() int { return p.maxMessageBytes }

// ticket is a message's Metadata: where its outcome goes.
type ticket struct {
	c *call
	i int
}

// call collects the outcomes of one Publish call.
type call struct {
	mu      sync.Mutex
	errs    []error
	settled []bool
	pending int
	done    chan struct{} // closed when pending reaches 0
}

func newCall(n int) *call {
	return &call{errs: make([]error, n), settled: make([]bool, n), pending: n, done: make(chan struct{})}
}

// settle records the outcome of record i, unless it has one.
func (c *call) settle(i int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.settled[i] {
		return
	}
	c.settled[i], c.errs[i] = true, err
	if c.pending--; c.pending == 0 {
		close(c.done)
	}
}

// finish gives every record without an outcome err and returns the outcomes.
func (c *call) finish(err error) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]error, len(c.errs))
	for i := range c.errs {
		if !c.settled[i] {
			c.settled[i], c.errs[i] = true, err
		}
		out[i] = c.errs[i]
	}
	return out
}

// dispatch routes every outcome the producer reports to its call. It ends
// when the producer, closed, has reported them all.
func (p *Publisher) dispatch() {
	defer close(p.dispatched)
	successes, failures := p.producer.Successes(), p.producer.Errors()
	for successes != nil || failures != nil {
		select {
		case msg, ok := <-successes:
			if !ok {
				successes = nil
				continue
			}
			if t, ok := msg.Metadata.(ticket); ok {
				t.c.settle(t.i, nil)
			}
		case pe, ok := <-failures:
			if !ok {
				failures = nil
				continue
			}
			if pe == nil || pe.Msg == nil {
				continue
			}
			if t, ok := pe.Msg.Metadata.(ticket); ok {
				t.c.settle(t.i, Classify(fmt.Errorf("kafka: producing to topic %s: %w", pe.Msg.Topic, pe.Err)))
			}
		}
	}
}

// Publish sends recs and waits until the broker has acknowledged or failed
// every one, or ctx ends. It returns one error per record, in order: nil
// when the broker has the record, an error marked by Classify when it does
// not, ctx's error for those without an outcome when ctx ended, and
// ErrClosed wrapped with outbox.ErrUnavailable after Close.
//
// Every record gets its headers in order and then outbox-id = Record.MessageID.
// The records are sent in parallel; those of one key keep their order only
// across calls, as the outbox.Publisher contract asks. Records that the
// broker rejects with their whole batch (MESSAGE_TOO_LARGE and the like) are
// sent again each on its own, and only then marked permanent.
//
// When ctx ends first, the records in flight may still reach the broker
// later, so Publish keeps using their byte slices: do not modify them.
func (p *Publisher) Publish(ctx context.Context, recs []outbox.Record) []error {
	if len(recs) == 0 {
		return []error{}
	}
	p.isolating.RLock()
	errs := p.publish(ctx, recs)
	p.isolating.RUnlock()
	if len(recs) == 1 || ctx.Err() != nil {
		return errs
	}
	var again []int
	for i, err := range errs {
		if err != nil && isBatchError(err) {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return errs
	}
	p.isolating.Lock()
	defer p.isolating.Unlock()
	for _, i := range again {
		if err := ctx.Err(); err != nil {
			errs[i] = err // the culprit is unknown: no outcome
			continue
		}
		errs[i] = p.publish(ctx, recs[i:i+1])[0]
	}
	return errs
}

// publish sends recs and waits for their outcomes or the end of ctx.
func (p *Publisher) publish(ctx context.Context, recs []outbox.Record) []error {
	c := newCall(len(recs))
	p.send(ctx, c, recs)
	select {
	case <-c.done:
		return c.finish(nil)
	case <-ctx.Done():
		return c.finish(ctx.Err())
	}
}

// send hands the records to the producer. Those it cannot hand over,
// because ctx ended or Close started, it settles with the reason.
func (p *Publisher) send(ctx context.Context, c *call, recs []outbox.Record) {
	p.sending.RLock()
	defer p.sending.RUnlock()
	closed := fmt.Errorf("%w: %w", outbox.ErrUnavailable, ErrClosed)
	rest := func(from int, err error) {
		for i := from; i < len(recs); i++ {
			c.settle(i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		rest(0, err)
		return
	}
	select {
	case <-p.closing:
		rest(0, closed)
		return
	default:
	}
	input := p.producer.Input()
	for i := range recs {
		r := &recs[i]
		if r.Topic == "" {
			c.settle(i, outbox.Permanent(fmt.Errorf("kafka: record %s has no topic: %w", r.MessageID, sarama.ErrInvalidTopic)))
			continue
		}
		select {
		case input <- message(r, ticket{c, i}):
		case <-ctx.Done():
			rest(i, ctx.Err())
			return
		case <-p.closing:
			rest(i, closed)
			return
		}
	}
}

// message builds the Sarama message of r.
func message(r *outbox.Record, t ticket) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: r.Topic, Metadata: t}
	if r.Key != nil {
		m.Key = sarama.ByteEncoder(r.Key)
	}
	if r.Value != nil {
		m.Value = sarama.ByteEncoder(r.Value)
	}
	m.Headers = make([]sarama.RecordHeader, 0, len(r.Headers)+1)
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(outbox.HeaderID), Value: []byte(r.MessageID)})
	return m
}

// Close flushes the records in flight, waits for their outcomes (which go
// to the Publish calls still waiting) and closes the connections; while the
// cluster is unreachable that takes as long as Sarama's retries (RetryMax,
// RetryBackoff, Timeout). Call it after the relay has stopped. Publish calls
// after Close fail with ErrClosed wrapped with outbox.ErrUnavailable. Close
// is idempotent and safe to call concurrently; it always returns nil.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		close(p.closing)
		p.sending.Lock() // wait for the senders to leave
		p.producer.AsyncClose()
		p.sending.Unlock()
		<-p.dispatched
	})
	return nil
}
