package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// flaky refuses a share of produce requests before the append
// (NOT_ENOUGH_REPLICAS) and answers a further share REQUEST_TIMED_OUT after
// the append (the client cannot tell), until stop.
func flaky(c *kfake.Cluster, seed uint64, refusePercent, lostAckPercent int) (refused, lost func() int64, stop func()) {
	var (
		mu      sync.Mutex
		rng     = rand.New(rand.NewPCG(seed, seed+1))
		n       atomic.Int64
		stopped atomic.Bool
	)
	roll := func(percent int) bool {
		mu.Lock()
		defer mu.Unlock()
		return rng.IntN(100) < percent
	}
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		if stopped.Load() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		if !roll(refusePercent) {
			return nil, nil, false
		}
		n.Add(1)
		return localkafka.RefuseProduce(kr.(*kmsg.ProduceRequest), kerr.NotEnoughReplicas.Code), nil, true
	})
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: -1,
		When: func(kmsg.Request) bool { return roll(lostAckPercent) }})
	return n.Load, func() int64 { return int64(h.Hits()) }, func() { stopped.Store(true); h.Remove() }
}

// firstDeliveryViolations reads topic and counts, per key, the first
// deliveries that arrive after the first delivery of a later message of the
// key (values are "key seq"), and the messages of want that never arrived.
func firstDeliveryViolations(t *testing.T, addrs []string, topic string, want int) (violations, missing int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	last := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(seen) < want && ctx.Err() == nil {
		for _, r := range cl.PollFetches(ctx).Records() {
			id := string(localkafka.Header(r, outbox.HeaderID))
			if seen[id] {
				continue // a duplicate: allowed, at least once
			}
			seen[id] = true
			key, seqText, _ := strings.Cut(string(r.Value), " ")
			seq, _ := strconv.Atoi(seqText)
			if p, ok := last[key]; ok && seq < p {
				violations++
			}
			last[key] = max(last[key], seq)
		}
	}
	return violations, want - len(seen)
}

// The relay and this publisher keep per-key order on hot keys under
// produce failures, on every dialect: three keys carry most messages, a
// key's records of a batch span several record batches (MaxMessageBytes is
// small), and produce requests are refused or lose their acks at random.
// Removing the publisher's order rule (a batch that fails for good stops
// its partition) makes the same run break the order.
func TestRelayHotKeysUnderFaults(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		for _, tc := range []struct {
			name       string
			removeRule bool
		}{{"rule", false}, {"rule removed", true}} {
			t.Run(tc.name, func(t *testing.T) {
				violations, missing, refused := hotKeyRun(t, name, tc.removeRule)
				t.Logf("order violations %d, missing %d, produce requests refused %d", violations, missing, refused)
				if missing != 0 {
					t.Errorf("%d committed messages never arrived", missing)
				}
				if refused == 0 {
					t.Error("no produce request was refused: the run proves nothing")
				}
				switch {
				case tc.removeRule && violations == 0:
					t.Error("without the order rule the run kept the order: it proves nothing")
				case !tc.removeRule && violations != 0:
					t.Errorf("%d first deliveries out of key order", violations)
				}
			})
		}
	})
}

// hotKeyRun enqueues messages on hot keys, relays them through a flaky
// broker and returns what arrived.
func hotKeyRun(t *testing.T, name dialect.Name, removeRule bool) (violations, missing int, refused int64) {
	db := dbtest.Open(t, name)
	c := startCluster(t, kfake.SeedTopics(2, "hot"))
	const n = 3000
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: 8})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	seq := map[string]int{}
	for sent := 0; sent < n; {
		var msgs []outbox.Message
		for range 100 {
			key := fmt.Sprint("hot-", rng.IntN(3))
			if rng.IntN(10) == 0 {
				key = fmt.Sprint("cold-", rng.IntN(50))
			}
			msgs = append(msgs, outbox.Message{Topic: "hot", Key: []byte(key), Value: fmt.Appendf(nil, "%s %d", key, seq[key])})
			seq[key]++
		}
		if err := ob.Enqueue(context.Background(), db.DB, msgs...); err != nil {
			t.Fatal(err)
		}
		sent += len(msgs)
	}

	cfg := testConfig(c)
	cfg.MaxMessageBytes = 1500 // a handful of records a batch
	cfg.RetryMax = 1
	p := newPublisher(t, cfg)
	p.ignoreOrderRule = removeRule
	refusedCount, lostAcks, stop := flaky(c, 11, 25, 5)
	defer stop()
	relay, err := outbox.NewRelay(db.DB, p, outbox.RelayConfig{
		Dialect: db.Dialect, NumShards: 8, BatchSize: 300, MaxAttempts: 1000,
		PollInterval: 20 * time.Millisecond, MinPollInterval: time.Millisecond,
		LeaseDuration: 2 * time.Second, RetryBackoff: time.Millisecond, RetryBackoffMax: 5 * time.Millisecond,
		OutageBackoff: time.Millisecond, OutageBackoffMax: 5 * time.Millisecond, ProbeInterval: time.Millisecond,
		Logger: discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for relay.Stats().Published < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if lostAcks() == 0 {
		t.Error("no ack was lost: the run proves less than it should")
	}
	violations, missing = firstDeliveryViolations(t, c.ListenAddrs(), "hot", n)
	return violations, missing, refusedCount()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
