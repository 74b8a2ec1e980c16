//go:build unix

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/outboxrelay/outbox/internal/localkafka"
)

// broker is a one-node kfake cluster that keeps its data in a directory,
// so that it can be stopped and started again on the same port without
// losing records. While faulty is set it fails produce requests.
type broker struct {
	dir  string
	port int

	mu sync.Mutex
	b  *localkafka.Broker

	faulty   atomic.Bool
	rngMu    sync.Mutex
	rng      *rand.Rand
	rejected atomic.Int64 // produce requests answered with an error before the append
	lostAcks atomic.Int64 // produce requests appended, then answered REQUEST_TIMED_OUT
	restarts atomic.Int64
}

func startBroker(dir string, seed uint64) (*broker, error) {
	k := &broker{dir: dir, rng: rand.New(rand.NewPCG(seed, 7))}
	var err error
	for range 20 {
		k.port = freePort(k.rng)
		if err = k.start(); err == nil {
			return k, nil
		}
	}
	return nil, err
}

// freePort returns a free loopback port below the kernel's ephemeral range:
// while the broker is down for a restart, no outgoing connection can take
// its port.
func freePort(rng *rand.Rand) int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				low = n
			}
		}
	}
	for {
		p := 10000 + rng.IntN(low-10000)
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			l.Close()
			return p
		}
	}
}

func (k *broker) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port)) }

// start starts the cluster on its port, retrying for a while if the port
// is still held by the previous cluster's sockets.
func (k *broker) start() error {
	opts := []kfake.Opt{
		kfake.Ports(k.port),
		kfake.DataDir(k.dir),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(brokerMaxMessageBytes)}),
	}
	var err error
	for range 100 {
		var b *localkafka.Broker
		if b, err = localkafka.Start(numPartitions, []string{topic}, opts...); err == nil {
			k.install(b.Cluster)
			k.mu.Lock()
			k.b = b
			k.mu.Unlock()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("starting the broker on port %d: %w", k.port, err)
}

// stop closes the cluster (it writes its state to its directory first).
func (k *broker) stop() {
	k.mu.Lock()
	b := k.b
	k.b = nil
	k.mu.Unlock()
	if b != nil {
		b.Close()
		k.restarts.Add(1)
	}
}

func (k *broker) roll() int {
	k.rngMu.Lock()
	defer k.rngMu.Unlock()
	return k.rng.IntN(100)
}

// install adds the produce fault injection to a fresh cluster: while faulty
// is set, most produce requests are refused before the append with
// NOT_LEADER_FOR_PARTITION or REQUEST_TIMED_OUT (the client sees the
// cluster unavailable) or UNKNOWN_TOPIC_OR_PARTITION (a plain retriable
// error: the relay counts an attempt), and some are appended and then
// answered REQUEST_TIMED_OUT, as a broker with slow replicas does.
func (k *broker) install(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !k.faulty.Load() {
			return nil, nil, false
		}
		var code int16
		switch r := k.roll(); {
		case r < 20:
			return nil, nil, false // through (the fault below may lose its ack)
		case r < 45:
			code = kerr.NotLeaderForPartition.Code
		case r < 70:
			code = kerr.RequestTimedOut.Code
		default:
			code = kerr.UnknownTopicOrPartition.Code
		}
		k.rejected.Add(1)
		return localkafka.RefuseProduce(kr.(*kmsg.ProduceRequest), code), nil, true
	})
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: -1,
		When: func(kmsg.Request) bool {
			if !k.faulty.Load() || k.roll() >= 50 {
				return false
			}
			k.lostAcks.Add(1)
			return true
		}})
}

// endOffsets returns the high watermark of every partition of the topic.
func endOffsets(ctx context.Context, addr string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range int32(numPartitions) {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // the end
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("partition %d: %w", p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	if len(out) != numPartitions {
		return nil, fmt.Errorf("end offsets of %d partitions, want %d", len(out), numPartitions)
	}
	return out, nil
}

// readAll reads every record of the topic from the start up to the end
// offsets, in offset order per partition.
func readAll(addr string, timeout time.Duration) ([]*kgo.Record, map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var end map[int32]int64
	var err error
	for {
		if end, err = endOffsets(ctx, addr); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("end offsets: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c, err := localkafka.NewConsumer([]string{addr}, topic)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	next := map[int32]int64{}
	caughtUp := func() bool {
		for p, e := range end {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	var recs []*kgo.Record
	for !caughtUp() {
		if ctx.Err() != nil {
			return recs, end, fmt.Errorf("after %s: read up to %v of %v", timeout, next, end)
		}
		for _, r := range c.Poll(ctx) {
			if r.Offset < next[r.Partition] {
				return recs, end, fmt.Errorf("partition %d: offset %d read after offset %d", r.Partition, r.Offset, next[r.Partition]-1)
			}
			recs = append(recs, r)
			next[r.Partition] = r.Offset + 1
		}
	}
	return recs, end, nil
}
