package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/dialect/pqnotify"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

// ---------------------------------------------------------------------------
// Relays

// relaySettings configures a relay as the benchmark runs it.
type relaySettings struct {
	driver, dsn string
	dialect     dialect.Dialect
	brokers     []string
	id          string
	numShards   int
	batchSize   int // 0: the relay's default
}

// relayRig is a relay with its own pool, publisher and (on PostgreSQL)
// LISTEN/NOTIFY wake-ups, as cmd/relay wires them.
type relayRig struct {
	db       *sql.DB
	pub      *kafka.Publisher
	timed    *timedPublisher
	listener *pqnotify.Listener
	relay    *outbox.Relay
	done     chan struct{}
	cancel   context.CancelFunc
}

// newRelayRig builds a relay: a pool of relayMaxConns connections, a
// kafka.Publisher of its own, and pqnotify wake-ups where the dialect
// supports them.
func newRelayRig(ctx context.Context, s relaySettings, log *slog.Logger) (_ *relayRig, err error) {
	r := &relayRig{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if r.db, err = sql.Open(s.driver, s.dsn); err != nil {
		return nil, err
	}
	r.db.SetMaxOpenConns(relayMaxConns)
	r.db.SetMaxIdleConns(relayMaxConns)
	if r.pub, err = kafka.New(kafka.Config{Brokers: s.brokers, ClientID: s.id}); err != nil {
		return nil, err
	}
	r.timed = &timedPublisher{Publisher: r.pub}
	cfg := outbox.RelayConfig{Dialect: s.dialect, NumShards: s.numShards, ID: s.id, BatchSize: s.batchSize, Logger: log}
	if s.dialect.SupportsNotify() {
		if r.listener, err = pqnotify.New(ctx, s.dsn, log); err != nil {
			return nil, err
		}
		cfg.Wake = r.listener.Wake()
	}
	if r.relay, err = outbox.NewRelay(r.db, r.timed, cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// start runs the relay in a goroutine until stop.
func (r *relayRig) start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		_ = r.relay.Run(ctx)
	}()
}

// stop ends Run and waits for it.
func (r *relayRig) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// close stops the relay and closes its publisher, listener and pool.
func (r *relayRig) close() {
	r.stop()
	if r.pub != nil {
		_ = r.pub.Close()
	}
	if r.listener != nil {
		_ = r.listener.Close()
	}
	if r.db != nil {
		_ = r.db.Close()
	}
}

// timedPublisher adds up the time the relay spends in Publish, so that a
// run can tell broker time from database time.
type timedPublisher struct {
	outbox.Publisher
	nanos, calls atomic.Int64
}

// Publish calls the wrapped publisher and counts the time it took.
func (p *timedPublisher) Publish(ctx context.Context, recs []outbox.Record) []error {
	start := time.Now()
	errs := p.Publisher.Publish(ctx, recs)
	p.nanos.Add(int64(time.Since(start)))
	p.calls.Add(1)
	return errs
}

// spent returns the time spent in Publish and the number of calls.
func (p *timedPublisher) spent() (time.Duration, int64) {
	return time.Duration(p.nanos.Load()), p.calls.Load()
}

// startProfile starts a CPU profile into path ("" does nothing) and returns
// the function that stops it.
func startProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// ---------------------------------------------------------------------------
// Kafka helpers

// saramaAdminConfig is the configuration of the benchmark's own metadata
// and offset queries.
func saramaAdminConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "outbox-bench-admin"
	c.Version = sarama.V2_8_0_0
	return c
}

// ensureTopics creates the topics that do not exist on the cluster (with
// partitions partitions and the broker's default replication factor) and
// returns the partition count of the first.
func ensureTopics(brokers []string, partitions int, topics []string) (int, error) {
	cl, err := sarama.NewClient(brokers, saramaAdminConfig())
	if err != nil {
		return 0, fmt.Errorf("connecting to Kafka: %w", err)
	}
	defer cl.Close()
	admin, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		return 0, err
	}
	for _, t := range topics {
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: -1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return 0, fmt.Errorf("creating topic %s: %w", t, err)
		}
	}
	for attempt := 0; ; attempt++ {
		_ = cl.RefreshMetadata(topics...)
		ps, err := cl.Partitions(topics[0])
		if err == nil && len(ps) > 0 {
			return len(ps), nil
		}
		if attempt == 50 {
			return 0, fmt.Errorf("topic %s has no partitions after creation: %v", topics[0], err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// endOffsets returns the end offset of every partition of topic.
func endOffsets(brokers []string, topic string) (map[int32]int64, error) {
	cl, err := sarama.NewClient(brokers, saramaAdminConfig())
	if err != nil {
		return nil, fmt.Errorf("connecting to Kafka: %w", err)
	}
	defer cl.Close()
	ps, err := cl.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	out := make(map[int32]int64, len(ps))
	for _, p := range ps {
		off, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p, err)
		}
		out[p] = off
	}
	return out, nil
}

// sumOffsets adds up the end offsets.
func sumOffsets(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// topicGrowth returns how many records were appended to topic since the
// end offsets before.
func topicGrowth(brokers []string, topic string, before map[int32]int64) (int64, error) {
	after, err := endOffsets(brokers, topic)
	if err != nil {
		return 0, err
	}
	return sumOffsets(after) - sumOffsets(before), nil
}
