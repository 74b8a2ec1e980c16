package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
)

// prepare builds the records, settles those that cannot be sent (no topic,
// too large, a topic that does not exist or whose metadata cannot be had),
// and queues the others by partition, in call order.
func (c *call) prepare() {
	byTopic := map[string][]int{}
	var topics []string
	for i := range c.recs {
		r := &c.recs[i]
		if r.Topic == "" {
			c.settle(i, outbox.Permanent(fmt.Errorf("kafka: record %s has no topic: %w", r.MessageID, sarama.ErrInvalidTopic)))
			continue
		}
		c.built[i], c.sizes[i] = record(r)
		if c.sizes[i]+batchOverhead > c.p.maxMessageBytes {
			c.settle(i, outbox.Permanent(fmt.Errorf("kafka: record %s takes %d bytes in a batch, more than MaxMessageBytes (%d): %w",
				r.MessageID, c.sizes[i]+batchOverhead, c.p.maxMessageBytes, outbox.ErrMessageTooLarge)))
			continue
		}
		if byTopic[r.Topic] == nil {
			topics = append(topics, r.Topic)
		}
		byTopic[r.Topic] = append(byTopic[r.Topic], i)
	}
	queues := map[tp]*queue{}
	for _, topic := range topics {
		c.queueTopic(topic, byTopic[topic], queues)
	}
}

// queueTopic puts the records idx of topic in their partitions' queues.
func (c *call) queueTopic(topic string, idx []int, queues map[tp]*queue) {
	parts, err := c.p.partitions(topic, c.now)
	if err != nil {
		for _, i := range idx {
			c.settle(i, err)
		}
		return
	}
	partitioner := c.p.partitioners.get(topic)
	msg := &sarama.ProducerMessage{Topic: topic} // one for the topic: partitioners read it, keep nothing
	for _, i := range idx {
		msg.Key = nil
		if c.recs[i].Key != nil {
			msg.Key = sarama.ByteEncoder(c.recs[i].Key)
		}
		choice, err := partitioner.Partition(msg, int32(len(parts)))
		if err == nil && (choice < 0 || int(choice) >= len(parts)) {
			err = sarama.ErrInvalidPartition
		}
		if err != nil {
			c.settle(i, outbox.Permanent(fmt.Errorf("kafka: partitioning record %s: %w", c.recs[i].MessageID, err)))
			continue
		}
		t := tp{topic, parts[choice]}
		q := queues[t]
		if q == nil {
			q = &queue{tp: t}
			queues[t] = q
			c.queues = append(c.queues, q)
		}
		q.recs = append(q.recs, i)
	}
}

// missingTopic is a topic found missing, and when.
type missingTopic struct {
	at  time.Time
	err error
}

// missingFor is how long a topic found missing is taken as missing without
// asking the cluster again: asking costs Sarama's metadata retries (about
// 750 ms with its defaults), which every call carrying the topic would pay.
const missingFor = 2 * time.Second

// partitions returns topic's partitions, or the error to give its records.
// Used with the call's turn held.
func (p *Publisher) partitions(topic string, now time.Time) ([]int32, error) {
	if m, ok := p.missing[topic]; ok && now.Sub(m.at) < missingFor {
		return nil, m.err
	}
	parts, err := p.client.Partitions(topic)
	if err == nil && len(parts) == 0 {
		err = sarama.ErrUnknownTopicOrPartition
	}
	if err != nil {
		err = p.topicError(topic, err)
		if errors.Is(err, ErrUnknownTopic) {
			p.missing[topic] = missingTopic{now, err}
		}
		return nil, err
	}
	delete(p.missing, topic)
	return parts, nil
}

// topicError describes a failure to get topic's partitions. A topic that
// does not exist is its own condition, retried per record (the relay counts
// attempts and backs off), not an outage of the cluster.
func (p *Publisher) topicError(topic string, err error) error {
	if errorsIsUnknownTopic(err) {
		return fmt.Errorf("%w: %q (create it, or let the cluster create topics): %w", ErrUnknownTopic, topic, err)
	}
	return Classify(fmt.Errorf("kafka: reading the partitions of topic %s: %w", topic, err))
}

// headerIDKey is outbox.HeaderID as the records carry it, shared by all
// (the encoder only reads it).
var headerIDKey = []byte(outbox.HeaderID)

// record builds the record batch entry of r, with the outbox-id header,
// and returns its size as a batch counts it.
func record(r *outbox.Record) (*sarama.Record, int) {
	rec := &sarama.Record{Key: r.Key, Value: r.Value, Headers: make([]*sarama.RecordHeader, 0, len(r.Headers)+1)}
	size := recordOverhead + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		rec.Headers = append(rec.Headers, &sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		size += headerOverhead + len(h.Key) + len(h.Value)
	}
	rec.Headers = append(rec.Headers, &sarama.RecordHeader{Key: headerIDKey, Value: []byte(r.MessageID)})
	size += headerOverhead + len(outbox.HeaderID) + len(r.MessageID)
	return rec, size
}

// partitioners holds one partitioner per topic, as Sarama's producer does.
// Used under Publisher.mu.
type partitioners struct {
	make   sarama.PartitionerConstructor
	topics map[string]sarama.Partitioner
}

func (ps *partitioners) get(topic string) sarama.Partitioner {
	if ps.topics == nil {
		ps.topics = map[string]sarama.Partitioner{}
	}
	p := ps.topics[topic]
	if p == nil {
		p = ps.make(topic)
		ps.topics[topic] = p
	}
	return p
}
