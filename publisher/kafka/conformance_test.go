package kafka

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/publisher/publishertest"
)

// conformanceMaxMessageBytes is the broker's message.max.bytes in
// TestConformance; the publisher reads it (Config.MaxMessageBytes 0).
const conformanceMaxMessageBytes = 64 << 10

// TestConformance runs the Publisher conformance suite against a
// Publisher talking to kfake over TCP: one cluster per check, topics
// created on first use with three partitions.
func TestConformance(t *testing.T) {
	publishertest.Run(t, publishertest.Harness{
		MaxMessageBytes: conformanceMaxMessageBytes,
		Concurrent:      true,
		Timeout:         20 * time.Second,
		New: func(tb testing.TB) (outbox.Publisher, publishertest.Backend) {
			tb.Helper()
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3),
				kfake.BrokerConfigs(map[string]string{"message.max.bytes": "65536"}))
			if err != nil {
				tb.Fatalf("kfake: %v", err)
			}
			tb.Cleanup(c.Close)
			ctl := &produceControl{}
			c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				return ctl.control(c, kr.(*kmsg.ProduceRequest))
			})
			p, err := New(testConfig(c))
			if err != nil {
				tb.Fatalf("New: %v", err)
			}
			if got := p.MaxMessageBytes(); got != conformanceMaxMessageBytes {
				tb.Errorf("MaxMessageBytes() = %d, want the broker's %d", got, conformanceMaxMessageBytes)
			}
			return p, publishertest.Backend{
				Received: func(tb testing.TB, topic string, n int, timeout time.Duration) []outbox.Record {
					return received(tb, c, topic, n, timeout)
				},
				Unavailable: ctl.unavailable,
				Hold:        ctl.hold,
			}
		},
	})
}

// produceControl fails or holds the cluster's produce requests on demand.
type produceControl struct {
	down atomic.Bool
	mu   sync.Mutex
	held chan struct{} // non-nil: produce requests wait for it to close
}

func (ctl *produceControl) control(c *kfake.Cluster, req *kmsg.ProduceRequest) (kmsg.Response, error, bool) {
	ctl.mu.Lock()
	held := ctl.held
	ctl.mu.Unlock()
	if held != nil {
		c.SleepControl(func() { <-held })
	}
	if !ctl.down.Load() {
		return nil, nil, false
	}
	// NOT_ENOUGH_REPLICAS for every partition: Sarama retries, then
	// reports it, and Classify makes it outbox.ErrUnavailable.
	return localkafka.RefuseProduce(req, kerr.NotEnoughReplicas.Code), nil, true
}

func (ctl *produceControl) unavailable(testing.TB) func() {
	ctl.down.Store(true)
	return func() { ctl.down.Store(false) }
}

func (ctl *produceControl) hold(testing.TB) func() {
	ch := make(chan struct{})
	ctl.mu.Lock()
	ctl.held = ch
	ctl.mu.Unlock()
	return func() {
		ctl.mu.Lock()
		ctl.held = nil
		ctl.mu.Unlock()
		close(ch)
	}
}

// received reads topic from its start until n records have arrived, and
// returns them as outbox records: MessageID from the outbox-id header, the
// other headers in order.
func received(tb testing.TB, c *kfake.Cluster, topic string, n int, timeout time.Duration) []outbox.Record {
	tb.Helper()
	cons, err := localkafka.NewConsumer(c.ListenAddrs(), topic)
	if err != nil {
		tb.Fatalf("consumer: %v", err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n && ctx.Err() == nil {
		got = append(got, cons.Poll(ctx)...)
	}
	if len(got) < n {
		tb.Fatalf("%d of %d records of %s arrived within %s", len(got), n, topic, timeout)
	}
	out := make([]outbox.Record, len(got))
	for i, r := range got {
		rec := outbox.Record{Topic: r.Topic, Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			if h.Key == outbox.HeaderID {
				rec.MessageID = string(h.Value)
				continue
			}
			rec.Headers = append(rec.Headers, outbox.Header{Key: h.Key, Value: h.Value})
		}
		out[i] = rec
	}
	return out
}
