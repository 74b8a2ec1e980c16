package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
)

// Record batch framing, as Sarama counts it (record.go, record_batch.go):
// the most a record adds besides its key, value and headers, what a header
// adds besides its name and value, and a batch's own header.
const (
	recordOverhead = 5*binary.MaxVarintLen32 + binary.MaxVarintLen64 + 1
	headerOverhead = 2 * binary.MaxVarintLen32
	batchOverhead  = 61
)

// requestLimit bounds the batches of one produce request, below Sarama's
// MaxRequestSize.
var requestLimit = int(sarama.MaxRequestSize) - 10<<10

// tp is a topic partition.
type tp struct {
	topic     string
	partition int32
}

// queue is one partition's records of a call, sent one batch at a time in
// call order. The head batch is the first batch records of recs.
type queue struct {
	tp
	recs  []int // indexes of the records without an outcome, in call order
	batch int   // records in the head batch; 0: not formed yet
	bytes int   // the head batch's size
	tries int   // failed attempts of the head batch
	// limit bounds a batch's bytes: MaxMessageBytes, halved when the broker
	// refuses a batch of several records as too large (to find the record
	// at fault, or the topic's lower limit), doubled back after a success.
	limit int
}

// call is one Publish call: the records, their outcomes and the partition
// queues. The order rule lives here: a queue sends its head batch only,
// and stops (its other records fail with outbox.ErrNotSent) when the head
// batch fails other than permanently.
type call struct {
	p      *Publisher
	recs   []outbox.Record
	built  []*sarama.Record
	sizes  []int
	errs   []error
	set    []bool
	queues []*queue
	now    time.Time
	// doubt: a batch was sent and its outcome not known (no answer, or an
	// error a broker may give after the append). Unless a retry settled
	// it, the partition's sequence is unknown: the call ends by dropping
	// the producer id, so that the next batch is neither refused for a gap
	// nor taken for a duplicate of a batch it does not repeat.
	doubt bool
	// solo: a request could not be encoded; send one partition's batch
	// per request from now on, to find it.
	solo   bool
	warned map[string]bool // topics whose too-large batch was logged
}

func (p *Publisher) newCall(recs []outbox.Record) *call {
	return &call{p: p, recs: recs, built: make([]*sarama.Record, len(recs)), sizes: make([]int, len(recs)),
		errs: make([]error, len(recs)), set: make([]bool, len(recs)), now: time.Now().Truncate(time.Millisecond)}
}

// settle gives record i its outcome.
func (c *call) settle(i int, err error) {
	c.errs[i], c.set[i] = err, true
}

// run publishes the call's records in rounds, one batch per partition per
// round, until every record has an outcome.
func (c *call) run(ctx context.Context) []error {
	defer func() {
		if c.doubt {
			c.p.ids.invalidate()
		}
	}()
	c.prepare()
	for {
		active := c.active()
		if len(active) == 0 {
			return c.errs
		}
		if err := ctx.Err(); err != nil {
			c.settleRest(err)
			return c.errs
		}
		if c.p.isClosing() {
			c.settleRest(fmt.Errorf("%w: %w", outbox.ErrUnavailable, ErrClosed))
			return c.errs
		}
		if err := c.ensureID(ctx, active); err != nil {
			return c.errs
		}
		again, abandoned := c.round(ctx, active)
		if abandoned {
			return c.errs
		}
		if again != nil {
			c.refresh(ctx, again)
			c.pause(ctx)
		}
	}
}

// ensureID gets a producer id unless the one held is valid, within ctx.
// It settles every record with the failure, as unavailable (a cluster that
// cannot give an id, whatever the reason, is no record's fault), or ctx's.
func (c *call) ensureID(ctx context.Context, active []*queue) error {
	if c.p.ids.valid {
		return nil
	}
	type result struct {
		res *sarama.InitProducerIDResponse
		err error
	}
	done := make(chan result, 1)
	topics := c.topics(active)
	go func() {
		res, err := initProducerID(c.p.client, topics)
		done <- result{res, err}
	}()
	var err error
	select {
	case r := <-done:
		if r.err == nil {
			c.p.ids.set(r.res)
			return nil
		}
		err = fmt.Errorf("%w: kafka: getting a producer id: %w", outbox.ErrUnavailable, r.err)
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.p.closing:
		err = fmt.Errorf("%w: %w", outbox.ErrUnavailable, ErrClosed)
	}
	c.settleRest(err)
	return err
}

// active returns the queues with records left.
func (c *call) active() []*queue {
	var out []*queue
	for _, q := range c.queues {
		if len(q.recs) > 0 {
			out = append(out, q)
		}
	}
	return out
}

// topics returns the topics of queues.
func (c *call) topics(queues []*queue) []string {
	seen := map[string]bool{}
	var out []string
	for _, q := range queues {
		if !seen[q.topic] {
			seen[q.topic] = true
			out = append(out, q.topic)
		}
	}
	return out
}

// settleRest fails every record without an outcome with err.
func (c *call) settleRest(err error) {
	for i := range c.recs {
		if !c.set[i] {
			c.settle(i, err)
		}
	}
	for _, q := range c.queues {
		q.recs = nil
	}
}

// sent is a produce request in flight and the queues whose head batches it
// carries.
type sent struct {
	broker *sarama.Broker
	req    *sarama.ProduceRequest
	queues []*queue
	bytes  int
}

// answer is a broker's response to a sent request.
type answer struct {
	s   *sent
	res *sarama.ProduceResponse
	err error
}

// round sends the head batch of every active queue, one request per
// leader, and files the answers. It returns the topics to retry after a
// pause (nil: none), and abandoned when ctx ended before every answer came:
// then every record without an outcome has ctx's error.
func (c *call) round(ctx context.Context, active []*queue) (again map[string]bool, abandoned bool) {
	again = map[string]bool{}
	requests := map[*sarama.Broker]*sent{}
	var order []*sent
	for _, q := range active {
		b, err := c.p.client.Leader(q.topic, q.partition)
		if err != nil {
			c.failed(q, err, false)
			again[q.topic] = true
			continue
		}
		s := requests[b]
		if s == nil || c.solo {
			s = &sent{broker: b, req: c.p.newRequest()}
			requests[b] = s
			order = append(order, s)
		}
		batch, size := c.batchOf(q)
		if len(s.queues) > 0 && s.bytes+size > requestLimit {
			continue // next round
		}
		s.req.AddBatch(q.topic, q.partition, batch)
		s.queues = append(s.queues, q)
		s.bytes += size
	}
	answers := make(chan answer, len(order))
	for _, s := range order {
		// AsyncProduce waits while the broker's connection is being
		// dialed: not on this goroutine, which watches ctx.
		go func() {
			err := s.broker.AsyncProduce(s.req, func(res *sarama.ProduceResponse, err error) {
				answers <- answer{s, res, err}
			})
			if err != nil {
				answers <- answer{s, nil, err}
			}
		}()
	}
	answered := map[*sent]bool{}
	for range order {
		select {
		case a := <-answers:
			answered[a.s] = true
			c.file(a, again)
		case <-ctx.Done():
			// The requests in flight may still be appended: their
			// outcome is unknown, and so is the producer's sequence. Their
			// connections are closed: a later request would wait behind
			// their answers.
			for _, s := range order {
				if !answered[s] {
					_ = s.broker.Close()
				}
			}
			c.p.ids.invalidate()
			c.settleRest(ctx.Err())
			return nil, true
		}
	}
	if len(again) == 0 {
		again = nil
	}
	return again, false
}

// file records the outcome of every batch of a request.
func (c *call) file(a answer, again map[string]bool) {
	var encoding sarama.PacketEncodingError
	if errors.As(a.err, &encoding) {
		// Not sent: a record cannot be encoded. Find it: one partition
		// per request, then smaller batches; only a record sent alone is
		// marked at fault.
		if len(a.s.queues) > 1 {
			c.solo = true
			return
		}
		c.tooLarge(a.s.queues[0], fmt.Errorf("kafka: encoding a batch of topic %s: %w", a.s.queues[0].topic, a.err))
		return
	}
	if a.err != nil {
		// No answer: the batches may or may not be appended. Sending
		// them again with the same producer id and sequence numbers is
		// safe: the broker keeps a batch it already has once.
		_ = a.s.broker.Close()
		for _, q := range a.s.queues {
			c.failed(q, fmt.Errorf("kafka: producing to %s: %w", a.s.broker.Addr(), a.err), true)
			again[q.topic] = true
		}
		return
	}
	for _, q := range a.s.queues {
		block := a.res.GetBlock(q.topic, q.partition)
		err := sarama.ErrIncompleteResponse
		if block != nil {
			err = block.Err
		}
		if c.fileBatch(q, err) {
			again[q.topic] = true
		}
	}
}

// fileBatch records the broker's answer err for q's head batch, and
// reports whether to retry it after a pause.
func (c *call) fileBatch(q *queue, err error) (retry bool) {
	switch {
	case errors.Is(err, sarama.ErrNoError), errors.Is(err, sarama.ErrDuplicateSequenceNumber):
		c.appended(q)
		return false
	case isBatchError(err):
		// Not appended: the sequence stays. One record may be at fault,
		// or the topic's limit is below ours: smaller batches.
		c.tooLarge(q, fmt.Errorf("kafka: producing to topic %s: %w", q.topic, err))
		return false
	case isPermanent(err):
		// Not appended, and never will be: these records go to the
		// dead-letter table, the next ones of the partition flow.
		c.settleHead(q, Classify(fmt.Errorf("kafka: producing to topic %s: %w", q.topic, err)))
		return false
	case isSequenceError(err):
		// The broker lost or never had our sequence (a restart, a
		// producer id expired): start again under a new id.
		c.p.ids.invalidate()
	}
	c.failed(q, fmt.Errorf("kafka: producing to topic %s: %w", q.topic, err), !isNotAppended(err))
	return true
}

// tooLarge handles a head batch refused as a whole for a record's sake
// (err): a batch of several records is sent again in halves; a record
// alone fails permanently and the next ones flow.
func (c *call) tooLarge(q *queue, err error) {
	if q.batch <= 1 {
		c.settleHead(q, Classify(err))
		return
	}
	if !c.warned[q.topic] {
		if c.warned == nil {
			c.warned = map[string]bool{}
		}
		c.warned[q.topic] = true
		c.p.log.Warn("kafka: a batch was refused as a whole; sending its records in smaller batches (if this repeats, the topic's max.message.bytes is below the publisher's MaxMessageBytes: set MaxMessageBytes, --kafka-max-message-bytes, to it)",
			"topic", q.topic, "records", q.batch, "bytes", q.bytes, "err", err)
	}
	q.limit, q.batch = max(1, q.bytes/2), 0
}

// failed counts a failed attempt of q's head batch (sent: it reached the
// broker, which may have appended it); past RetryMax, the batch fails with
// err (classified) and the rest of q is not sent.
func (c *call) failed(q *queue, err error, sent bool) {
	if sent {
		c.doubt = true
	}
	q.tries++
	if q.tries <= c.p.cfg.RetryMax {
		return
	}
	// The last attempt's outcome may be unknown: later batches, of this
	// call or the next, go out under a new producer id.
	c.p.ids.invalidate()
	if errorsIsUnknownTopic(err) {
		// The metadata knew the topic and the leader did not: a partition
		// moving or a broker catching up, the cluster's state, not the
		// record's (a topic that is really gone is found by the next
		// call's metadata, as ErrUnknownTopic).
		err = fmt.Errorf("%w: %w", outbox.ErrUnavailable, err)
	}
	if q.batch == 0 {
		q.batch = 1
	}
	c.settleHead(q, Classify(err))
	if c.p.ignoreOrderRule {
		return
	}
	notSent := fmt.Errorf("%w (partition %d of topic %s)", outbox.ErrNotSent, q.partition, q.topic)
	for _, i := range q.recs {
		c.settle(i, notSent)
	}
	q.recs = nil
}

// appended settles q's head batch as published and moves the partition's
// sequence on.
func (c *call) appended(q *queue) {
	c.p.ids.advance(q.tp, q.batch)
	q.limit = min(q.limit*2, c.p.maxMessageBytes)
	c.settleHead(q, nil)
}

// settleHead gives the records of q's head batch err and drops them.
func (c *call) settleHead(q *queue, err error) {
	for _, i := range q.recs[:q.batch] {
		c.settle(i, err)
	}
	q.recs, q.batch, q.tries = q.recs[q.batch:], 0, 0
}

// batchOf returns q's head batch, forming it first: records in order while
// they fit in q.limit (at least one).
func (c *call) batchOf(q *queue) (*sarama.RecordBatch, int) {
	if q.limit == 0 {
		q.limit = c.p.maxMessageBytes
	}
	if q.batch == 0 {
		size, n := batchOverhead, 0
		for _, i := range q.recs {
			if n > 0 && size+c.sizes[i] > q.limit {
				break
			}
			size += c.sizes[i]
			n++
		}
		q.batch, q.bytes = n, size
	}
	id, epoch, seq := c.p.ids.next(q.tp)
	batch := &sarama.RecordBatch{
		Version:          2,
		Codec:            c.p.conf.Producer.Compression,
		CompressionLevel: c.p.conf.Producer.CompressionLevel,
		FirstTimestamp:   c.now,
		MaxTimestamp:     c.now,
		ProducerID:       id,
		ProducerEpoch:    epoch,
		FirstSequence:    seq,
		LastOffsetDelta:  int32(q.batch - 1),
		Records:          make([]*sarama.Record, q.batch),
	}
	size := batchOverhead
	for j, i := range q.recs[:q.batch] {
		r := *c.built[i] // a copy: the encoder writes into it
		r.OffsetDelta = int64(j)
		batch.Records[j] = &r
		size += c.sizes[i]
	}
	return batch, size
}

// newRequest returns an empty produce request with the publisher's
// settings.
func (p *Publisher) newRequest() *sarama.ProduceRequest {
	return &sarama.ProduceRequest{
		RequiredAcks: sarama.WaitForAll,
		Timeout:      int32(p.conf.Producer.Timeout / time.Millisecond),
		Version:      p.produceVersion,
	}
}

// refresh asks the cluster for the metadata of topics (leaders move),
// waiting no longer than ctx.
func (c *call) refresh(ctx context.Context, topics map[string]bool) {
	list := make([]string, 0, len(topics))
	for t := range topics {
		list = append(list, t)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.p.client.RefreshMetadata(list...); err != nil {
			c.p.log.Debug("kafka: refreshing metadata failed", "topics", list, "err", redact(err.Error(), c.p.cfg.SASL.Password))
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
	case <-c.p.closing:
	}
}

// pause waits RetryBackoff, or until ctx ends or Close starts.
func (c *call) pause(ctx context.Context) {
	t := time.NewTimer(c.p.cfg.RetryBackoff)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-c.p.closing:
	}
}

// produceVersions are the Produce request versions by the oldest Kafka
// version of the cluster, newest first, as Sarama's producer chooses them;
// 3, the first with record batches (Kafka 0.11), below them all.
var produceVersions = []requestVersion{
	{sarama.V3_7_0_0, 10}, {sarama.V2_8_0_0, 9}, {sarama.V2_4_0_0, 8}, {sarama.V2_1_0_0, 7},
	{sarama.V2_0_0_0, 6}, {sarama.V1_0_0_0, 5}, {sarama.V0_11_0_0, 3},
}

// requestVersion is the request version to use from a Kafka version on.
type requestVersion struct {
	kafka   sarama.KafkaVersion
	version int16
}

// versionFor returns the version of the first step v is at least, or
// that of the last.
func versionFor(v sarama.KafkaVersion, steps []requestVersion) int16 {
	for _, s := range steps {
		if v.IsAtLeast(s.kafka) {
			return s.version
		}
	}
	return steps[len(steps)-1].version
}
