// Package localkafka starts an in-process Kafka-protocol broker (kfake) on
// loopback and reads topics back, for the demo, the tests and
// outboxtest/kafkatest. Clients talk to it over TCP exactly as to a cluster.
package localkafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker is a running kfake cluster.
type Broker struct {
	Cluster *kfake.Cluster
	Addrs   []string
}

// Start starts a one-broker cluster on a free loopback port (or the ports
// opts set) with topics of the given number of partitions.
func Start(partitions int32, topics []string, opts ...kfake.Opt) (*Broker, error) {
	all := append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...)}, opts...)
	c, err := kfake.NewCluster(all...)
	if err != nil {
		return nil, fmt.Errorf("localkafka: start broker: %w", err)
	}
	return &Broker{Cluster: c, Addrs: c.ListenAddrs()}, nil
}

// Close stops the broker.
func (b *Broker) Close() { b.Cluster.Close() }

// Consumer reads topics from their start.
type Consumer struct {
	cl *kgo.Client
}

// NewConsumer returns a consumer of topics on the brokers at addrs.
func NewConsumer(addrs []string, topics ...string) (*Consumer, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addrs...),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("localkafka: consumer: %w", err)
	}
	return &Consumer{cl: cl}, nil
}

// Poll returns the records fetched within ctx (possibly none), in offset
// order per partition.
func (c *Consumer) Poll(ctx context.Context) []*kgo.Record {
	fs := c.cl.PollFetches(ctx)
	return fs.Records()
}

// Close closes the consumer.
func (c *Consumer) Close() { c.cl.Close() }

// Header returns the value of the first header called name, or nil.
func Header(r *kgo.Record, name string) []byte {
	for _, h := range r.Headers {
		if h.Key == name {
			return h.Value
		}
	}
	return nil
}

// RefuseProduce answers a produce request with code for every partition it
// names, appending nothing: what a broker that is not the leader, or short
// of replicas, or timing out, says. Use it from a kfake control function.
func RefuseProduce(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
