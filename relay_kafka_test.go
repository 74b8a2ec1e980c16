package outbox_test

// Integration tests of the relay with the real publisher/kafka, talking
// over TCP to an in-process Kafka-protocol broker (kfake), on every dialect.
// Its own helpers start with kt; those it shares with relay_test.go are in
// relay_helpers_test.go.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/internal/proctest"
	"github.com/outboxrelay/outbox/internal/verify"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

// ktShards is the shard count of these tests, in the Outbox and the relay.
const ktShards = 16

// ktTopic is the topic every test publishes to.
const ktTopic = "orders"

// ktRelayConfig has short timings, so that an outage is noticed and left
// behind within a second.
func ktRelayConfig(db *dbtest.DB) outbox.RelayConfig {
	cfg := fastConfig(db)
	cfg.NumShards = ktShards
	cfg.OutageBackoff, cfg.OutageBackoffMax = 100*time.Millisecond, 500*time.Millisecond
	cfg.PublishTimeout = 10 * time.Second
	cfg.ShutdownTimeout = 3 * time.Second
	return cfg
}

// ktPublisherConfig keeps Sarama's timeouts and retries short: a broker that
// is gone fails a record as unavailable within about a second.
func ktPublisherConfig(brokers []string) kafka.Config {
	return kafka.Config{
		Brokers:      brokers,
		Timeout:      time.Second,
		RetryMax:     3,
		RetryBackoff: 20 * time.Millisecond,
		Sarama: func(sc *sarama.Config) {
			sc.Metadata.Retry.Max = 1
			sc.Metadata.Retry.Backoff = 10 * time.Millisecond
		},
	}
}

func ktNewPublisher(t *testing.T, cfg kafka.Config) *kafka.Publisher {
	t.Helper()
	p, err := kafka.New(cfg)
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func ktStartBroker(t *testing.T, opts ...kfake.Opt) *localkafka.Broker {
	t.Helper()
	b, err := localkafka.Start(3, []string{ktTopic}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func ktCount(t *testing.T, db *sql.DB, query string) int64 {
	t.Helper()
	var n sql.NullInt64
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n.Int64
}

// ktWriter enqueues transactions and keeps the ledger: every committed
// message with its key and its rank within the key, every rolled-back one.
type ktWriter struct {
	db     *sql.DB
	ob     *outbox.Outbox
	ledger *verify.Ledger

	mu        sync.Mutex
	seq       map[string]int
	committed map[string]outbox.Message // by ID
}

func ktNewWriter(t *testing.T, db *dbtest.DB) *ktWriter {
	t.Helper()
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: ktShards})
	if err != nil {
		t.Fatal(err)
	}
	return &ktWriter{db: db.DB, ob: ob, ledger: verify.New(), seq: map[string]int{}, committed: map[string]outbox.Message{}}
}

// ledgerKey is the key whose order the ledger checks; keyless messages have
// no order, so each is a key of its own.
func ktLedgerKey(m outbox.Message) string {
	if m.Key == nil {
		return "\x00no key\x00" + m.ID
	}
	return string(m.Key)
}

// enqueue writes msgs in one transaction and commits it, or rolls it back.
// Messages without an ID get one, so the ledger can follow them.
func (w *ktWriter) enqueue(msgs []outbox.Message, rollback bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range msgs {
		if msgs[i].ID == "" {
			msgs[i].ID = outbox.NewMessageID()
		}
		if msgs[i].Topic == "" {
			msgs[i].Topic = ktTopic
		}
	}
	ctx := context.Background()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := w.ob.Enqueue(ctx, tx, msgs...); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("Enqueue: %w", err)
	}
	if rollback {
		for _, m := range msgs {
			w.ledger.RolledBack(m.ID)
		}
		return tx.Rollback()
	}
	// Into the ledger before the commit: a consumer may see the messages
	// as soon as it returns.
	next := map[string]int{}
	for _, m := range msgs {
		k := ktLedgerKey(m)
		next[k]++
		w.ledger.Committed(m.ID, k, w.seq[k]+next[k])
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for k, n := range next {
		w.seq[k] += n
	}
	for _, m := range msgs {
		w.committed[m.ID] = m
	}
	return nil
}

// random enqueues n messages on random keys among keys in one transaction.
func (w *ktWriter) random(rng *rand.Rand, keys, n int, rollback bool) error {
	msgs := make([]outbox.Message, n)
	for i := range msgs {
		k := fmt.Sprintf("key-%02d", rng.IntN(keys))
		msgs[i] = outbox.Message{Key: []byte(k), Value: fmt.Appendf(nil, "%s payload %d", k, rng.IntN(1000)),
			Headers: []outbox.Header{{Key: "source", Value: []byte("kt")}}}
	}
	return w.enqueue(msgs, rollback)
}

// keepWriting enqueues a random transaction (a tenth of them rolled back)
// every interval until the returned stop is called.
func (w *ktWriter) keepWriting(t *testing.T, seed uint64, keys int, every time.Duration) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(seed, seed+1))
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			if err := w.random(rng, keys, 1+rng.IntN(4), rng.IntN(10) == 0); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() { close(quit) })
		<-done
	}
	t.Cleanup(stop)
	return stop
}

func (w *ktWriter) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.committed)
}

// ktConsume reads the topic from its start and observes every record in
// the ledger, until every committed message has arrived, then reads on for
// a moment to catch late duplicates. It returns the records, each
// partition's in offset order.
func ktConsume(t *testing.T, brokers []string, l *verify.Ledger, timeout time.Duration) []*kgo.Record {
	t.Helper()
	c, err := localkafka.NewConsumer(brokers, ktTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	observe := func(recs []*kgo.Record) {
		for _, r := range recs {
			l.Observe(string(localkafka.Header(r, outbox.HeaderID)))
		}
		out = append(out, recs...)
	}
	for l.Published() < l.Summary().Committed && ctx.Err() == nil {
		observe(c.Poll(ctx))
	}
	if ctx.Err() != nil {
		t.Fatalf("after %s: %d records consumed; %v", timeout, len(out), l.Summary())
	}
	settle, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	for settle.Err() == nil {
		observe(c.Poll(settle))
	}
	return out
}

// ktRequireClean fails unless everything committed arrived, nothing rolled
// back did, and first deliveries kept every key's order.
func ktRequireClean(t *testing.T, l *verify.Ledger) verify.Summary {
	t.Helper()
	s := l.Summary()
	if !s.OK() || s.Published != s.Committed || s.Committed == 0 {
		t.Fatalf("deliveries break the guarantees: %v unknown=%d", s, s.Unknown)
	}
	return s
}

func ktSameBytes(a, b []byte) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) }

// Committed messages arrive with their key, value and headers, in order,
// plus outbox-id; rolled-back ones never do; each key keeps its order.
func TestRelayKafkaDelivers(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		broker := ktStartBroker(t)
		w := ktNewWriter(t, db)
		rng := rand.New(rand.NewPCG(21, 22))
		special := []outbox.Message{
			{Key: []byte("tomb"), Value: nil}, // null value: a tombstone
			{Key: []byte("empty"), Value: []byte{}},
			{Key: []byte{}, Value: []byte("empty key")},
			{Key: nil, Value: []byte("no key")},
			{Key: []byte("hdrs"), Value: []byte("h"), Headers: []outbox.Header{
				{Key: "type", Value: []byte("order.placed")}, {Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("1")},
				{Key: "null", Value: nil}, {Key: "empty", Value: []byte{}}, {Key: "type", Value: []byte("again")}}},
			{ID: "caller-chosen-id", Key: []byte("hdrs"), Value: []byte("second of hdrs")},
		}
		if err := w.enqueue(special, false); err != nil {
			t.Fatal(err)
		}
		if err := w.enqueue([]outbox.Message{{Key: []byte("tomb"), Value: []byte("rolled back")}}, true); err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			if err := w.random(rng, 8, 1+rng.IntN(5), i%5 == 2); err != nil {
				t.Fatal(err)
			}
		}

		cfg := ktPublisherConfig(broker.Addrs)
		cfg.Timeout = 5 * time.Second // no outage here: a slow machine must not look like one
		pub := ktNewPublisher(t, cfg)
		run := start(t, db.DB, pub, ktRelayConfig(db))
		// More while the relay runs.
		for i := range 30 {
			if err := w.random(rng, 8, 1+rng.IntN(5), i%5 == 2); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		recs := ktConsume(t, broker.Addrs, w.ledger, 20*time.Second)
		s := ktRequireClean(t, w.ledger)
		if s.Duplicates != 0 {
			t.Errorf("%d duplicates without any failure", s.Duplicates)
		}

		for _, r := range recs {
			id := string(localkafka.Header(r, outbox.HeaderID))
			m, ok := w.committed[id]
			if !ok {
				t.Fatalf("record %s/%d@%d has outbox-id %q, which no committed message has", r.Topic, r.Partition, r.Offset, id)
			}
			if r.Topic != m.Topic || !ktSameBytes(r.Key, m.Key) || !ktSameBytes(r.Value, m.Value) {
				t.Errorf("message %s: got topic %q key %q (nil %t) value %q (nil %t), want %q %q (nil %t) %q (nil %t)", id,
					r.Topic, r.Key, r.Key == nil, r.Value, r.Value == nil, m.Topic, m.Key, m.Key == nil, m.Value, m.Value == nil)
			}
			if len(r.Headers) != len(m.Headers)+1 {
				t.Errorf("message %s: %d headers, want %d", id, len(r.Headers), len(m.Headers)+1)
				continue
			}
			for i, h := range m.Headers {
				if g := r.Headers[i]; g.Key != h.Key || !ktSameBytes(g.Value, h.Value) {
					t.Errorf("message %s: header %d is %q=%q (nil %t), want %q=%q (nil %t)", id, i, g.Key, g.Value, g.Value == nil, h.Key, h.Value, h.Value == nil)
				}
			}
			if last := r.Headers[len(r.Headers)-1]; last.Key != outbox.HeaderID {
				t.Errorf("message %s: last header is %q, want %s", id, last.Key, outbox.HeaderID)
			}
		}
		if st := run.relay.Stats(); st.Published != int64(s.Committed) || st.Retried != 0 || st.DeadLettered != 0 || st.Unavailable != 0 {
			t.Errorf("relay stats %+v, want Published=%d and no failures", st, s.Committed)
		}
		t.Logf("%v", s)
	})
}

// ktFreePort returns a loopback port that nothing listens on (yet).
func ktFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ktStartOnPort starts the broker on port, retrying a few times while the
// port is still taken (a socket of the previous broker being torn down).
func ktStartOnPort(t *testing.T, port int, dir string) *localkafka.Broker {
	t.Helper()
	var err error
	for range 20 {
		var b *localkafka.Broker
		if b, err = localkafka.Start(3, []string{ktTopic}, kfake.Ports(port), kfake.DataDir(dir)); err == nil {
			t.Cleanup(b.Close) // before dir is removed; Close is idempotent
			return b
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("starting the broker on port %d: %v", port, err)
	return nil
}

// The broker goes away for seconds while the relay publishes and the
// application goes on committing. Nothing is lost, nothing is counted as a
// failed attempt or dead-lettered, and the relay resumes by itself once the
// broker is back on the same address with its data.
func TestRelayKafkaBrokerRestart(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		dir := t.TempDir()
		port := ktFreePort(t)
		broker := ktStartOnPort(t, port, dir)
		addrs := broker.Addrs

		w := ktNewWriter(t, db)
		rng := rand.New(rand.NewPCG(31, 32))
		for i := range 60 {
			if err := w.random(rng, 10, 1+rng.IntN(5), i%10 == 3); err != nil {
				t.Fatal(err)
			}
		}
		stopWriting := w.keepWriting(t, 33, 10, 10*time.Millisecond)

		pub := ktNewPublisher(t, ktPublisherConfig(addrs))
		cfg := ktRelayConfig(db)
		// A long outage pause (10s, longer than the outage): without
		// probing, the relay would sleep about 7s after the broker is back.
		cfg.OutageBackoff, cfg.OutageBackoffMax = 10*time.Second, time.Minute
		run := start(t, db.DB, pub, cfg)
		waitFor(t, 10*time.Second, "the relay to publish", func() bool { return run.relay.Stats().Published >= 100 })

		broker.Close()
		down := time.Now()
		atClose := run.relay.Stats()
		var maxAttempts int64
		for time.Since(down) < 4*time.Second {
			maxAttempts = max(maxAttempts, ktCount(t, db.DB, "SELECT MAX(attempts) FROM outbox_messages"))
			time.Sleep(50 * time.Millisecond)
		}
		atRestart := run.relay.Stats()
		ktStartOnPort(t, port, dir) // the same address and data; closed at cleanup
		up := time.Now()
		// The relay probes the broker every ProbeInterval while it backs
		// off, and resumes at the first answer.
		waitFor(t, 30*time.Second, "the relay to publish again", func() bool { return run.relay.Stats().Published > atRestart.Published })
		resumed := time.Since(up)
		if resumed > 3*time.Second {
			// The target is 2s (about 0.4s here); the margin is for a
			// loaded machine. Without probing it is about 7s.
			t.Errorf("the relay resumed %s after the broker came back, want within 2s", resumed.Round(time.Millisecond))
		}
		stopWriting()
		waitFor(t, 30*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		run.stop(t)
		_ = pub.Close()

		if maxAttempts != 0 {
			t.Errorf("MAX(attempts) reached %d while the broker was down: an outage must not count attempts", maxAttempts)
		}
		if atRestart.Unavailable == atClose.Unavailable {
			t.Errorf("the relay saw no unavailable broker during the outage (stats %+v)", atRestart)
		}
		if n := ktCount(t, db.DB, "SELECT COUNT(*) FROM outbox_dead_letters"); n != 0 {
			t.Errorf("%d dead letters after an outage", n)
		}
		st := run.relay.Stats()
		if st.DeadLettered != 0 || st.Retried != 0 {
			t.Errorf("relay stats %+v: an outage must not retry or dead-letter", st)
		}
		ktConsume(t, addrs, w.ledger, 20*time.Second)
		s := ktRequireClean(t, w.ledger)
		t.Logf("%v; published before the outage %d, during %d; resumed %s after the broker came back; stats %+v",
			s, atClose.Published, atRestart.Published-atClose.Published, resumed.Round(time.Millisecond), st)
	})
}

// ktSameShardKeys returns n keys other than key that fall in key's shard.
func ktSameShardKeys(key string, n int) []string {
	var out []string
	shard := outbox.ShardFor([]byte(key), ktShards)
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprintf("mate-%d", i)
		if outbox.ShardFor([]byte(k), ktShards) == shard {
			out = append(out, k)
		}
	}
	return out
}

// A message larger than the broker's message.max.bytes (but not than the
// publisher's own limit, so the broker is the one to refuse it) goes to the
// dead-letter table with its error at the first attempt; the messages
// around it, of its key and of others, arrive in order.
func TestRelayKafkaTooLargeForBroker(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		broker := ktStartBroker(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4000"}))
		c := broker.Cluster
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
		w := ktNewWriter(t, db)
		keys := append([]string{"poisoned"}, ktSameShardKeys("poisoned", 3)...)
		keys = append(keys, "other-1", "other-2")
		var bigID string
		for round := range 3 {
			var msgs []outbox.Message
			for i := range 5 {
				for _, k := range keys {
					msgs = append(msgs, outbox.Message{Key: []byte(k), Value: fmt.Appendf(nil, "%s %d/%d %s", k, round, i, bytes.Repeat([]byte("x"), 200))})
				}
			}
			if err := w.enqueue(msgs, false); err != nil {
				t.Fatal(err)
			}
			if round == 1 {
				bigID = outbox.NewMessageID()
				big := outbox.Message{ID: bigID, Topic: ktTopic, Key: []byte("poisoned"), Value: bytes.Repeat([]byte("B"), 10_000)}
				// Not in the ledger: it must not arrive.
				if err := w.ob.Enqueue(context.Background(), w.db, big); err != nil {
					t.Fatal(err)
				}
			}
		}

		cfg := ktPublisherConfig(broker.Addrs)
		cfg.MaxMessageBytes = outbox.DefaultMaxMessageBytes // above the broker's: the broker must refuse
		metadata := cfg.Sarama
		cfg.Sarama = func(sc *sarama.Config) {
			metadata(sc)
			// Let the records of a Publish call share batches, so that the
			// broker rejects the big record's batch-mates with it.
			sc.Producer.Flush.Frequency = 20 * time.Millisecond
		}
		pub := ktNewPublisher(t, cfg)
		run := start(t, db.DB, pub, ktRelayConfig(db))
		waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		run.stop(t)

		rows, err := db.Query("SELECT message_id, attempts, last_error FROM outbox_dead_letters")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var id, lastError string
			var attempts int
			if err := rows.Scan(&id, &attempts, &lastError); err != nil {
				t.Fatal(err)
			}
			n++
			if id != bigID || attempts != 1 || !strings.Contains(strings.ToLower(lastError), "too large") {
				t.Errorf("dead letter %s after %d attempts: %q; want %s after 1 attempt with an error about its size", id, attempts, lastError, bigID)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%d dead letters, want 1", n)
		}
		if mixed.Load() == 0 {
			t.Error("the big record never shared a batch with other records: the test proves less than it should")
		}
		recs := ktConsume(t, broker.Addrs, w.ledger, 20*time.Second)
		s := ktRequireClean(t, w.ledger)
		for _, r := range recs {
			if len(r.Value) > 4000 {
				t.Errorf("a record of %d bytes reached the topic", len(r.Value))
			}
		}
		if st := run.relay.Stats(); st.DeadLettered != 1 || st.Retried != 0 || st.Published != int64(s.Committed) {
			t.Errorf("relay stats %+v, want 1 dead letter, no retries, %d published", st, s.Committed)
		}
		t.Logf("%v", s)
	})
}

// Per-key order holds through Sarama's own retries: produce requests fail at
// random, some after the broker appended them, while the application
// commits on many keys. Nothing is lost, nothing rolled back arrives, first
// deliveries keep every key's order; once the faults stop, the outbox
// drains.
func TestRelayKafkaRetriesKeepKeyOrder(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		broker := ktStartBroker(t)
		rejected, lostAcks, stopFaults := localkafka.Flaky(broker.Cluster, 41, 55, 10, kerr.NotLeaderForPartition.Code, kerr.RequestTimedOut.Code)
		defer stopFaults()

		w := ktNewWriter(t, db)
		rng := rand.New(rand.NewPCG(42, 43))
		for i := range 40 {
			if err := w.random(rng, 25, 1+rng.IntN(6), i%10 == 4); err != nil {
				t.Fatal(err)
			}
		}
		stopWriting := w.keepWriting(t, 44, 25, 15*time.Millisecond)

		pub := ktNewPublisher(t, ktPublisherConfig(broker.Addrs))
		run := start(t, db.DB, pub, ktRelayConfig(db))
		// Keep writing under faults for at least 3 s and until 300 messages
		// committed, however slow the machine is (bounded at 60 s).
		for begin := time.Now(); time.Since(begin) < 3*time.Second || (w.total() < 300 && time.Since(begin) < time.Minute); {
			time.Sleep(50 * time.Millisecond)
		}
		stopWriting()
		stopFaults()
		if w.total() < 300 {
			t.Errorf("only %d messages committed in a minute: the test proves little", w.total())
		}
		if rejected() == 0 || lostAcks() == 0 {
			t.Errorf("faults: %d produce requests rejected, %d acks lost; want both", rejected(), lostAcks())
		}
		waitFor(t, 30*time.Second, "the outbox to drain after the faults stopped", func() bool { return pending(t, db) == 0 })
		run.stop(t)
		ktConsume(t, broker.Addrs, w.ledger, 20*time.Second)
		s := ktRequireClean(t, w.ledger)
		st := run.relay.Stats()
		if st.DeadLettered != 0 {
			t.Errorf("relay stats %+v: retriable broker errors dead-lettered messages", st)
		}
		t.Logf("%v; %d produce requests rejected, %d acks lost; relay stats %+v", s, rejected(), lostAcks(), st)
	})
}

// TestRelayKafkaOutageLogs takes the broker away for 20 s under a relay
// with a backlog and counts what the relay logs: the first "unavailable"
// line, a repeat at a growing interval, and one "broker is back" line
// with how long the broker was gone, however it came back; at most
// maxBrokerOutageLines in all.
func TestRelayKafkaOutageLogs(t *testing.T) {
	const maxBrokerOutageLines = 6
	db := dbtest.Open(t, dialect.NamePostgres)
	dir := t.TempDir()
	port := ktFreePort(t)
	broker := ktStartOnPort(t, port, dir)
	w := ktNewWriter(t, db)
	stopWriting := w.keepWriting(t, 43, 10, 50*time.Millisecond)
	defer stopWriting()

	var out proctest.Buffer
	pub := ktNewPublisher(t, ktPublisherConfig(broker.Addrs))
	cfg := ktRelayConfig(db)
	// The defaults, as a relay run has them.
	cfg.OutageBackoff, cfg.OutageBackoffMax, cfg.ProbeInterval = outbox.DefaultOutageBackoff, outbox.DefaultOutageBackoffMax, outbox.DefaultProbeInterval
	cfg.Logger = slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	run := start(t, db.DB, pub, cfg)
	waitFor(t, 10*time.Second, "the relay to publish", func() bool { return run.relay.Stats().Published >= 20 })

	before := strings.Count(out.String(), "\n")
	broker.Close()
	down := time.Now()
	time.Sleep(20 * time.Second)
	ktStartOnPort(t, port, dir) // the same address and data; closed at cleanup
	waitFor(t, 30*time.Second, `the "broker is back" line`, func() bool { return strings.Contains(out.String(), `"broker is back"`) })
	gone := time.Since(down)
	time.Sleep(2 * time.Second) // what follows the return
	stopWriting()
	run.stop(t)

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")[before:]
	var during []string
	back := 0
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if m["msg"] == "outbox relay stopping" || m["msg"] == "outbox relay stopped" {
			continue
		}
		during = append(during, line)
		if m["msg"] == "broker is back" {
			back++
			ns, ok := m["down_for"].(float64) // slog's JSON handler writes nanoseconds
			if d := time.Duration(ns); !ok {
				t.Errorf("no down_for in %s", line)
			} else if d < 19*time.Second || d > gone+time.Second {
				t.Errorf("down_for %s, want about 20s (at most %s)", d, gone)
			}
		}
	}
	if back != 1 {
		t.Errorf("%d \"broker is back\" lines, want 1", back)
	}
	if len(during) > maxBrokerOutageLines {
		t.Errorf("%d lines during a 20 s broker outage, want at most %d:\n%s", len(during), maxBrokerOutageLines, strings.Join(during, "\n"))
	}
	t.Logf("%d lines:\n%s", len(during), strings.Join(during, "\n"))
}
