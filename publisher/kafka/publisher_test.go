package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/localkafka"
)

// startCluster starts a one-broker Kafka-protocol cluster on a random
// loopback port with topic "t1" (1 partition) and "t3" (3 partitions).
func startCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "t1"), kfake.SeedTopics(3, "t3")}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// testConfig keeps retries and timeouts short, so failures show quickly.
func testConfig(c *kfake.Cluster) Config {
	return Config{
		Brokers:      c.ListenAddrs(),
		Timeout:      2 * time.Second,
		RetryMax:     5,
		RetryBackoff: 10 * time.Millisecond,
		Sarama: func(sc *sarama.Config) {
			sc.Metadata.Retry.Max = 1
			sc.Metadata.Retry.Backoff = 10 * time.Millisecond
		},
	}
}

func newPublisher(t *testing.T, cfg Config) *Publisher {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// consume reads n records of topic from its start, with a franz-go client.
func consume(t *testing.T, c *kfake.Cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records of %s, want %d", len(out), topic, n)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("consuming %s: %v", topic, e.Err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// highWatermarks returns how many records each partition of topic holds.
func highWatermarks(c *kfake.Cluster, topic string) []int64 {
	var out []int64
	for _, p := range c.PartitionInfos(topic) {
		out = append(out, p.HighWatermark)
	}
	return out
}

func total(c *kfake.Cluster, topic string) int64 {
	var n int64
	for _, hw := range highWatermarks(c, topic) {
		n += hw
	}
	return n
}

func requireNoErrors(t *testing.T, errs []error, n int) {
	t.Helper()
	if len(errs) != n {
		t.Fatalf("got %d results for %d records", len(errs), n)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}

func publish(t *testing.T, p *Publisher, recs ...outbox.Record) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := p.Publish(ctx, recs)
	if len(errs) != len(recs) {
		t.Fatalf("got %d results for %d records", len(errs), len(recs))
	}
	return errs
}

func TestPublishRecords(t *testing.T) {
	c := startCluster(t)
	p := newPublisher(t, testConfig(c))
	recs := []outbox.Record{
		{MessageID: "id-0", Topic: "t1", Key: []byte("k0"), Value: []byte(`{"n":0}`),
			Headers: []outbox.Header{{Key: "type", Value: []byte("order.placed")}, {Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("1")}, {Key: "type", Value: []byte("again")}}},
		{MessageID: "id-1", Topic: "t1", Key: []byte("k1"), Value: nil},                                                              // tombstone
		{MessageID: "id-2", Topic: "t1", Key: nil, Value: []byte("no key")},                                                          // no key
		{MessageID: "id-3", Topic: "t1", Key: []byte{}, Value: []byte{}},                                                             // empty, not null
		{MessageID: "id-4", Topic: "t1", Key: []byte("k4"), Value: []byte("v"), Headers: []outbox.Header{{Key: "null", Value: nil}}}, // null header value
	}
	requireNoErrors(t, publish(t, p, recs...), len(recs))

	got := consume(t, c, "t1", len(recs))
	byID := map[string]*kgo.Record{}
	for _, r := range got {
		last := r.Headers[len(r.Headers)-1]
		if last.Key != outbox.HeaderID {
			t.Fatalf("last header is %q, want %s", last.Key, outbox.HeaderID)
		}
		byID[string(last.Value)] = r
	}
	for _, want := range recs {
		r := byID[want.MessageID]
		if r == nil {
			t.Fatalf("record %s not consumed", want.MessageID)
		}
		if !bytes.Equal(r.Key, want.Key) || (r.Key == nil) != (want.Key == nil) {
			t.Errorf("%s: key %q (nil %v), want %q (nil %v)", want.MessageID, r.Key, r.Key == nil, want.Key, want.Key == nil)
		}
		if !bytes.Equal(r.Value, want.Value) || (r.Value == nil) != (want.Value == nil) {
			t.Errorf("%s: value %q (nil %v), want %q (nil %v)", want.MessageID, r.Value, r.Value == nil, want.Value, want.Value == nil)
		}
		if len(r.Headers) != len(want.Headers)+1 {
			t.Fatalf("%s: %d headers, want %d", want.MessageID, len(r.Headers), len(want.Headers)+1)
		}
		for i, h := range want.Headers {
			g := r.Headers[i]
			if g.Key != h.Key || !bytes.Equal(g.Value, h.Value) || (g.Value == nil) != (h.Value == nil) {
				t.Errorf("%s: header %d = %q: %q, want %q: %q", want.MessageID, i, g.Key, g.Value, h.Key, h.Value)
			}
		}
	}
}

func TestPublishEmpty(t *testing.T) {
	c := startCluster(t)
	p := newPublisher(t, testConfig(c))
	if errs := p.Publish(context.Background(), nil); errs == nil || len(errs) != 0 {
		t.Errorf("Publish(nil) = %v, want an empty slice", errs)
	}
}

// TestPartitioners checks that every key lands on the partition its
// partitioner gives: Sarama's FNV-1a hash, or murmur2 as the Java client
// does it, which franz-go's default partitioner also does.
func TestPartitioners(t *testing.T) {
	var keys [][]byte
	for i := range 30 {
		keys = append(keys, fmt.Appendf(nil, "order-%d", i))
	}
	c := startCluster(t)

	// Where franz-go's default (Kafka-compatible) partitioner puts the keys.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	kgoPartition := map[string]int32{}
	for _, k := range keys {
		r := &kgo.Record{Topic: "t3", Key: k}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		kgoPartition[string(k)] = r.Partition
	}

	for _, name := range []string{"hash", "murmur2"} {
		t.Run(name, func(t *testing.T) {
			c := startCluster(t)
			cfg := testConfig(c)
			cfg.Partitioner = name
			p := newPublisher(t, cfg)
			var recs []outbox.Record
			for i, k := range keys {
				recs = append(recs, outbox.Record{MessageID: fmt.Sprint(i), Topic: "t3", Key: k, Value: []byte("v")})
			}
			requireNoErrors(t, publish(t, p, recs...), len(recs))

			used := map[int32]bool{}
			for _, r := range consume(t, c, "t3", len(keys)) {
				var want int32
				switch name {
				case "hash":
					want, _ = sarama.NewHashPartitioner("t3").Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(r.Key)}, 3)
				case "murmur2":
					want = (Murmur2(r.Key) & 0x7fffffff) % 3
					if kp := kgoPartition[string(r.Key)]; kp != r.Partition {
						t.Errorf("key %s: partition %d, franz-go's murmur2 partitioner gives %d", r.Key, r.Partition, kp)
					}
				}
				if r.Partition != want {
					t.Errorf("key %s: partition %d, want %d", r.Key, r.Partition, want)
				}
				used[r.Partition] = true
			}
			if len(used) != 3 {
				t.Errorf("30 keys used partitions %v, want all 3", used)
			}
		})
	}
}

// TestTooLargeForBroker: the broker rejects a batch holding a record larger
// than its message.max.bytes; the record fails permanently and the other
// records of the call, which shared its batch, are published.
func TestTooLargeForBroker(t *testing.T) {
	c := startCluster(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4000"}))
	var mixed atomic.Int32 // batches over the limit with several records
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, rt := range kr.(*kmsg.ProduceRequest).Topics {
			for _, rp := range rt.Partitions {
				var b kmsg.RecordBatch
				if b.ReadFrom(rp.Records) == nil && len(rp.Records) > 4000 && b.NumRecords > 1 {
					mixed.Add(1)
				}
			}
		}
		return nil, nil, false
	})
	cfg := testConfig(c)
	cfg.MaxMessageBytes = outbox.DefaultMaxMessageBytes // above the broker's: the broker must refuse
	p := newPublisher(t, cfg)
	// One key: the four records share a partition, and so a batch.
	recs := []outbox.Record{
		{MessageID: "a", Topic: "t1", Key: []byte("k"), Value: bytes.Repeat([]byte("a"), 100)},
		{MessageID: "big", Topic: "t1", Key: []byte("k"), Value: bytes.Repeat([]byte("x"), 10_000)},
		{MessageID: "b", Topic: "t1", Key: []byte("k"), Value: bytes.Repeat([]byte("b"), 100)},
		{MessageID: "c", Topic: "t1", Key: []byte("k"), Value: bytes.Repeat([]byte("c"), 100)},
	}
	errs := publish(t, p, recs...)
	for i, err := range errs {
		if recs[i].MessageID == "big" {
			if !outbox.IsPermanent(err) || !errors.Is(err, sarama.ErrMessageSizeTooLarge) {
				t.Errorf("big record: %v, want a permanent MESSAGE_TOO_LARGE", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("record %s: %v", recs[i].MessageID, err)
		}
	}
	if mixed.Load() == 0 {
		t.Error("the big record never shared a batch: the test proves nothing")
	}
	got := consume(t, c, "t1", 3)
	var order []string
	for _, r := range got {
		order = append(order, string(r.Value[:1]))
	}
	if strings.Join(order, "") != "abc" {
		t.Errorf("the key's records arrived as %v, want a, b, c (and not the big one)", order)
	}

	// The producer goes on working.
	requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "d", Topic: "t1", Key: []byte("d"), Value: []byte("d")}), 1)
	if n := total(c, "t1"); n != 4 {
		t.Errorf("t1 holds %d records, want 4", n)
	}
}

// TestTooLargeForClient: a record above Config.MaxMessageBytes fails
// permanently in Sarama, before it is sent; the others are published.
func TestTooLargeForClient(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c)
	cfg.MaxMessageBytes = 1000
	p := newPublisher(t, cfg)
	errs := publish(t, p,
		outbox.Record{MessageID: "a", Topic: "t3", Key: []byte("a"), Value: []byte("small")},
		outbox.Record{MessageID: "big", Topic: "t3", Key: []byte("big"), Value: bytes.Repeat([]byte("x"), 2000)},
		outbox.Record{MessageID: "b", Topic: "t3", Key: []byte("b"), Value: []byte("small")},
	)
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("small records: %v, %v", errs[0], errs[2])
	}
	if !outbox.IsPermanent(errs[1]) || !strings.Contains(errs[1].Error(), "MaxMessageBytes") {
		t.Errorf("big record: %v, want a permanent error naming MaxMessageBytes", errs[1])
	}
	if n := total(c, "t3"); n != 2 {
		t.Errorf("t3 holds %d records, want 2", n)
	}
}

func TestPermanentTopicErrors(t *testing.T) {
	c := startCluster(t)
	p := newPublisher(t, testConfig(c))
	errs := publish(t, p,
		outbox.Record{MessageID: "a", Topic: "", Value: []byte("x")},
		outbox.Record{MessageID: "b", Topic: "t1", Value: []byte("x")},
	)
	if !outbox.IsPermanent(errs[0]) {
		t.Errorf("empty topic: %v, want permanent", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("valid record: %v", errs[1])
	}
}

// freeAddr returns a loopback address that nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestNewUnreachable(t *testing.T) {
	start := time.Now()
	cfg := Config{Brokers: []string{freeAddr(t)}, Timeout: time.Second,
		SASL: SASL{Mechanism: MechanismPlain, User: "u", Password: secret},
		Sarama: func(sc *sarama.Config) {
			sc.Metadata.Retry.Max = 1
			sc.Metadata.Retry.Backoff = 10 * time.Millisecond
		}}
	p, err := New(cfg)
	if err == nil {
		p.Close()
		t.Fatal("New succeeded without a broker")
	}
	if !errors.Is(err, outbox.ErrUnavailable) {
		t.Errorf("New: %v, want it to wrap outbox.ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("New: %q has the password", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("New took %s", d)
	}
}

// TestBrokerGone: the cluster goes away after New. Every record fails as
// unavailable once Sarama's retries are spent, well before ctx ends.
func TestBrokerGone(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c)
	cfg.Timeout = 500 * time.Millisecond
	cfg.RetryMax = 2
	p := newPublisher(t, cfg)
	requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "warm", Topic: "t3", Key: []byte("k"), Value: []byte("v")}), 1)
	c.Close()

	start := time.Now()
	var recs []outbox.Record
	for i := range 10 {
		recs = append(recs, outbox.Record{MessageID: fmt.Sprint(i), Topic: "t3", Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
	}
	errs := publish(t, p, recs...)
	for i, err := range errs {
		if !errors.Is(err, outbox.ErrUnavailable) || outbox.IsPermanent(err) {
			t.Errorf("record %d: %v, want outbox.ErrUnavailable", i, err)
		}
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Publish took %s", d)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestContextEnds: when ctx ends before the broker answers, the records
// without an outcome get ctx's error, unwrapped: the relay leaves them.
func TestContextEnds(t *testing.T) {
	c := startCluster(t)
	cfg := testConfig(c)
	cfg.Timeout = 500 * time.Millisecond
	p := newPublisher(t, cfg)
	requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "warm", Topic: "t1", Value: []byte("v")}), 1)

	var swallowed atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		swallowed.Add(1)
		return nil, nil, true // never answer this request
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	errs := p.Publish(ctx, []outbox.Record{{MessageID: "1", Topic: "t1", Value: []byte("v")}, {MessageID: "2", Topic: "t1", Value: []byte("w")}})
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, outbox.ErrUnavailable) || outbox.IsPermanent(err) {
			t.Errorf("record %d: %v, want context.DeadlineExceeded alone", i, err)
		}
	}
	if swallowed.Load() == 0 {
		t.Error("the produce request never reached the broker")
	}

	// The publisher goes on working: the next call gets a new producer id
	// (the swallowed batch's outcome is unknown) and is appended. The
	// relay, not the publisher, sends the abandoned records again.
	c.DropControl()
	requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "3", Topic: "t1", Value: []byte("x")}), 1)
	if n := total(c, "t1"); n != 2 {
		t.Errorf("t1 holds %d records, want 2 (warm and 3)", n)
	}

	// A context that has already ended sends nothing.
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	for _, err := range p.Publish(done, []outbox.Record{{MessageID: "4", Topic: "t1"}}) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ended context: %v", err)
		}
	}
}

// TestRetriedErrors: produce requests that fail with retriable errors
// (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT after the append) are retried by
// Sarama; every record of a call with several keys arrives, once.
func TestRetriedErrors(t *testing.T) {
	for _, fault := range []*kerr.Error{kerr.NotLeaderForPartition, kerr.RequestTimedOut} {
		t.Run(fault.Message, func(t *testing.T) {
			c := startCluster(t)
			p := newPublisher(t, testConfig(c))
			requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "warm", Topic: "t3", Key: []byte("warm")}), 1)

			h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: fault, Count: 3})
			var recs []outbox.Record
			for i := range 12 {
				recs = append(recs, outbox.Record{MessageID: fmt.Sprint(i), Topic: "t3", Key: fmt.Appendf(nil, "key-%d", i), Value: fmt.Appendf(nil, "v%d", i)})
			}
			requireNoErrors(t, publish(t, p, recs...), len(recs))
			if h.Hits() != 3 {
				t.Errorf("%d produce requests failed, want 3", h.Hits())
			}
			got := consume(t, c, "t3", len(recs)+1)
			seen := map[string]int{}
			for _, r := range got {
				seen[string(r.Key)]++
			}
			for _, r := range recs {
				if seen[string(r.Key)] != 1 {
					t.Errorf("key %s arrived %d times", r.Key, seen[string(r.Key)])
				}
			}
			if n := total(c, "t3"); n != int64(len(recs)+1) {
				t.Errorf("t3 holds %d records, want %d (no duplicates)", n, len(recs)+1)
			}
		})
	}
}

// failProduce makes the cluster answer the produce requests for which fail
// returns true with NOT_LEADER_OR_FOLLOWER on every partition, until stop
// is called. It returns how many requests it failed.
func failProduce(c *kfake.Cluster, fail func() bool) (failed *atomic.Int64, stop func()) {
	failed = new(atomic.Int64)
	var stopped atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		if stopped.Load() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		if !fail() {
			return nil, nil, false
		}
		failed.Add(1)
		return localkafka.RefuseProduce(kr.(*kmsg.ProduceRequest), kerr.NotLeaderForPartition.Code), nil, true
	})
	return failed, func() { stopped.Store(true) }
}

// TestOrderAcrossRetries: one key's records, published in consecutive calls
// with other keys while every other produce request fails, arrive in order
// and once.
func TestOrderAcrossRetries(t *testing.T) {
	c := startCluster(t)
	p := newPublisher(t, testConfig(c))
	var n atomic.Int64
	failed, stop := failProduce(c, func() bool { return n.Add(1)%2 == 1 })
	const calls = 20
	for i := range calls {
		errs := publish(t, p,
			outbox.Record{MessageID: fmt.Sprint(i), Topic: "t3", Key: []byte("ordered"), Value: fmt.Appendf(nil, "%d", i)},
			outbox.Record{MessageID: fmt.Sprint("x", i), Topic: "t3", Key: fmt.Appendf(nil, "other-%d", i), Value: []byte("x")},
			outbox.Record{MessageID: fmt.Sprint("y", i), Topic: "t3", Key: fmt.Appendf(nil, "more-%d", i), Value: []byte("y")},
		)
		requireNoErrors(t, errs, 3)
	}
	stop()
	if failed.Load() < calls {
		t.Errorf("only %d produce requests failed", failed.Load())
	}
	var order []string
	for _, r := range consume(t, c, "t3", 3*calls) {
		if string(r.Key) == "ordered" {
			order = append(order, string(r.Value))
		}
	}
	if len(order) != calls {
		t.Fatalf("key arrived %d times, want %d: %v", len(order), calls, order)
	}
	for i, v := range order {
		if v != fmt.Sprint(i) {
			t.Fatalf("key's records arrived as %v, want 0..%d in order", order, calls-1)
		}
	}
	if n := total(c, "t3"); n != 3*calls {
		t.Errorf("t3 holds %d records, want %d", n, 3*calls)
	}
}

func TestConcurrentPublish(t *testing.T) {
	c := startCluster(t)
	p := newPublisher(t, testConfig(c))
	const goroutines, calls, size = 8, 10, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				var recs []outbox.Record
				for j := range size {
					recs = append(recs, outbox.Record{MessageID: fmt.Sprintf("%d-%d-%d", g, i, j), Topic: "t3",
						Key: fmt.Appendf(nil, "g%d-%d", g, j), Value: fmt.Appendf(nil, "%d", i)})
				}
				errs := p.Publish(context.Background(), recs)
				for k, err := range errs {
					if err != nil {
						t.Errorf("goroutine %d call %d record %d: %v", g, i, k, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if n := total(c, "t3"); n != goroutines*calls*size {
		t.Errorf("t3 holds %d records, want %d", n, goroutines*calls*size)
	}
}

func TestClose(t *testing.T) {
	c := startCluster(t)
	p := newPublisher(t, testConfig(c))
	requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "1", Topic: "t1", Value: []byte("v")}), 1)

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := p.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	for _, err := range publish(t, p, outbox.Record{MessageID: "2", Topic: "t1", Value: []byte("v")}) {
		if !errors.Is(err, ErrClosed) || !errors.Is(err, outbox.ErrUnavailable) {
			t.Errorf("Publish after Close: %v", err)
		}
	}
}

// TestCloseWhilePublishing: Close during a Publish call lets the records in
// flight finish, and the call returns.
func TestCloseWhilePublishing(t *testing.T) {
	c := startCluster(t)
	p := newPublisher(t, testConfig(c))
	var recs []outbox.Record
	for i := range 2000 {
		recs = append(recs, outbox.Record{MessageID: fmt.Sprint(i), Topic: "t3", Key: fmt.Appendf(nil, "%d", i), Value: []byte("v")})
	}
	done := make(chan []error)
	go func() { done <- p.Publish(context.Background(), recs) }()
	time.Sleep(5 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case errs := <-done:
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, outbox.ErrUnavailable):
				t.Errorf("record failed with %v, want nil or outbox.ErrUnavailable", err)
			}
		}
		if n := total(c, "t3"); n != int64(ok) {
			t.Errorf("t3 holds %d records, %d were acknowledged", n, ok)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Publish did not return after Close")
	}
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			c := startCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "alice", secret))
			cfg := testConfig(c)
			cfg.SASL = SASL{Mechanism: mech, User: "alice", Password: secret}
			p := newPublisher(t, cfg)
			requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "1", Topic: "t1", Value: []byte("v")}), 1)
			if n := total(c, "t1"); n != 1 {
				t.Errorf("t1 holds %d records, want 1", n)
			}

			cfg.SASL.Password = secret + "-wrong"
			p2, err := New(cfg)
			if err == nil {
				p2.Close()
				t.Fatal("New succeeded with a wrong password")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error has the password: %v", err)
			}
			// kfake drops the connection (real brokers answer
			// SASL_AUTHENTICATION_FAILED first, see TestConnectError): New
			// tells it from an outage because the broker answers without
			// credentials.
			if !errors.Is(err, ErrAuthentication) || errors.Is(err, outbox.ErrUnavailable) {
				t.Errorf("wrong password: %v; want ErrAuthentication, not unavailable", err)
			}
		})
	}
}

func TestVersionsAndCompression(t *testing.T) {
	c := startCluster(t)
	for _, tc := range []struct{ version, compression string }{
		{"0.11.0.0", "gzip"}, {"1.0.0", "snappy"}, {"2.8.0", "lz4"}, {"3.7.0", "zstd"}, {"4.1.0", "none"},
	} {
		t.Run(tc.version+"/"+tc.compression, func(t *testing.T) {
			cfg := testConfig(c)
			cfg.Version, cfg.Compression = tc.version, tc.compression
			p := newPublisher(t, cfg)
			before := total(c, "t3")
			var recs []outbox.Record
			for i := range 5 {
				recs = append(recs, outbox.Record{MessageID: fmt.Sprint(i), Topic: "t3", Key: fmt.Appendf(nil, "%d", i),
					Value: bytes.Repeat([]byte("compressible "), 50), Headers: []outbox.Header{{Key: "h", Value: []byte("v")}}})
			}
			requireNoErrors(t, publish(t, p, recs...), len(recs))
			if n := total(c, "t3") - before; n != 5 {
				t.Errorf("%d records arrived, want 5", n)
			}
		})
	}
	got := consume(t, c, "t3", 25)
	for _, r := range got {
		if len(r.Headers) != 2 || r.Headers[1].Key != outbox.HeaderID {
			t.Fatalf("headers %v", r.Headers)
		}
	}
}

func TestConnectError(t *testing.T) {
	for _, tc := range []struct {
		err         error
		unavailable bool
	}{
		{sarama.Wrap(sarama.ErrOutOfBrokers, &net.OpError{Op: "dial", Err: errors.New("connection refused")}), true},
		{sarama.Wrap(sarama.ErrOutOfBrokers, io.EOF), true},
		{sarama.Wrap(sarama.ErrOutOfBrokers, fmt.Errorf("auth as %s: %w", secret, sarama.ErrSASLAuthenticationFailed)), false},
	} {
		err := connectError(tc.err, secret)
		if errors.Is(err, outbox.ErrUnavailable) != tc.unavailable {
			t.Errorf("connectError(%v) = %v, unavailable %v", tc.err, err, !tc.unavailable)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("connectError(%v) = %v has the password", tc.err, err)
		}
	}
	if err := connectError(sarama.ConfigurationError("bad"), secret); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("configuration error: %v", err)
	}
}
