// Package kafkatest starts an in-process, one-broker Kafka-protocol cluster
// (franz-go's kfake) on a loopback port, for integration tests of code that
// runs an outbox.Relay with publisher/kafka. It compiles kfake and franz-go,
// which is why it is not part of outboxtest.
package kafkatest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/outboxtest"
)

// Broker is an in-process, one-broker Kafka-protocol cluster (franz-go's
// kfake) listening on a loopback port, for integration tests of code that
// runs a Relay with publisher/kafka. Clients talk to it over TCP exactly as
// to a real cluster. It keeps its records in memory.
type Broker struct {
	broker *localkafka.Broker
}

// New starts a cluster with the given topics, each with partitions
// partitions (at least 1). Another topic is created, with as many
// partitions, when a producer that asks for it first writes to it, as with
// Kafka's default auto.create.topics.enable (Sarama, and so
// publisher/kafka, asks; franz-go asks with kgo.AllowAutoTopicCreation).
// The cluster is closed by tb.Cleanup. It fails tb if the cluster cannot
// start.
func New(tb testing.TB, partitions int32, topics ...string) *Broker {
	tb.Helper()
	if partitions < 1 {
		tb.Fatalf("kafkatest: New: partitions must be at least 1, got %d", partitions)
		return nil
	}
	b, err := localkafka.Start(partitions, topics,
		kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(int(partitions)))
	if err != nil {
		tb.Fatalf("kafkatest: New: %v", err)
		return nil
	}
	tb.Cleanup(b.Close)
	return &Broker{broker: b}
}

// Brokers returns the cluster's bootstrap address (host:port), for
// publisher/kafka's Config.Brokers or any Kafka client.
func (k *Broker) Brokers() []string { return append([]string(nil), k.broker.Addrs...) }

// Cluster returns the kfake cluster itself, for fault injection
// (ControlKey, Fault) and inspection (PartitionInfos).
func (k *Broker) Cluster() *kfake.Cluster { return k.broker.Cluster }

// Records reads topic from its start until at least n records have
// arrived, and returns them: the records of each partition in offset order,
// possibly more than n if more were there. It fails tb if fewer than n
// arrive within timeout, saying how many did and listing them.
//
// Each call reads the topic again from its start with a new consumer, so
// call it once with the total you expect. Every record the relay published
// carries the header outbox.HeaderID ("outbox-id"), the message's ID;
// duplicates, which at-least-once delivery allows, share it.
func (k *Broker) Records(tb outboxtest.TB, topic string, n int, timeout time.Duration) []*kgo.Record {
	tb.Helper()
	c, err := localkafka.NewConsumer(k.broker.Addrs, topic)
	if err != nil {
		tb.Fatalf("kafkatest: Records: %v", err)
		return nil
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		out = append(out, c.Poll(ctx)...)
	}
	if len(out) < n {
		tb.Fatalf("kafkatest: expected at least %d records in topic %q within %s, %d arrived%s",
			n, topic, timeout, len(out), describeRecords(out))
		return nil
	}
	return out
}

// describeRecords lists recs for a failure message, as the outbox messages
// they carry: the outbox-id header becomes the ID.
func describeRecords(recs []*kgo.Record) string {
	if len(recs) == 0 {
		return ""
	}
	msgs := make([]outbox.Message, len(recs))
	for i, r := range recs {
		m := outbox.Message{Topic: fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset), Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			if h.Key == outbox.HeaderID {
				m.ID = string(h.Value)
				continue
			}
			m.Headers = append(m.Headers, outbox.Header{Key: h.Key, Value: h.Value})
		}
		msgs[i] = m
	}
	return ":" + outboxtest.List(msgs)
}
