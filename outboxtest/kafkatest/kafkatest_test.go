package kafkatest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/faketb"
	"github.com/outboxrelay/outbox/outboxtest/kafkatest"
	"github.com/outboxrelay/outbox/outboxtest/sqlitetest"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

// produce writes recs with a franz-go client, as any Kafka producer would.
func produce(t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func TestNewKafka(t *testing.T) {
	var addr string
	t.Run("running", func(t *testing.T) {
		k := kafkatest.New(t, 3, "orders", "audit")
		brokers := k.Brokers()
		if len(brokers) != 1 {
			t.Fatalf("Brokers() = %v, want one address", brokers)
		}
		addr = brokers[0]
		if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
			t.Fatalf("broker %q is not on loopback", addr)
		}
		brokers[0] = "changed"
		if k.Brokers()[0] != addr {
			t.Fatal("Brokers() returns the Kafka's own slice")
		}
		for _, topic := range []string{"orders", "audit"} {
			if n := len(k.Cluster().PartitionInfos(topic)); n != 3 {
				t.Errorf("topic %s has %d partitions, want 3", topic, n)
			}
		}

		var recs []*kgo.Record
		for i := range 10 {
			recs = append(recs, &kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "k%d", i%4), Value: fmt.Appendf(nil, "%d", i)})
		}
		produce(t, k.Brokers(), recs...)
		got := k.Records(t, "orders", 10, 10*time.Second)
		if len(got) != 10 {
			t.Fatalf("Records returned %d records, want 10", len(got))
		}
		last := map[string]int{}
		for _, r := range got {
			var v int
			fmt.Sscan(string(r.Value), &v)
			if prev, ok := last[string(r.Key)]; ok && v < prev {
				t.Errorf("key %s: %d after %d: a partition is not in offset order", r.Key, v, prev)
			}
			last[string(r.Key)] = v
		}
		// Each call reads from the start.
		if again := k.Records(t, "orders", 10, 10*time.Second); len(again) != 10 {
			t.Errorf("second Records returned %d records, want 10", len(again))
		}
		if got := k.Records(t, "audit", 0, time.Second); len(got) != 0 {
			t.Errorf("empty topic: %d records", len(got))
		}

		// Other topics are created on first use, with as many partitions,
		// when the producer asks for it (publisher/kafka does).
		pub, err := kafka.New(kafka.Config{Brokers: k.Brokers()})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		errs := pub.Publish(context.Background(), []outbox.Record{{MessageID: "1", Topic: "created.on.use", Value: []byte("x")}})
		if errs[0] != nil {
			t.Fatalf("publishing to a new topic: %v", errs[0])
		}
		if n := len(k.Cluster().PartitionInfos("created.on.use")); n != 3 {
			t.Errorf("auto-created topic has %d partitions, want 3", n)
		}
	})
	// The cluster is gone once the test has ended.
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after the test ended", addr)
	}
}

func TestKafkaRecordsTooFew(t *testing.T) {
	k := kafkatest.New(t, 1, "orders")
	produce(t, k.Brokers(),
		&kgo.Record{Topic: "orders", Key: []byte("o-1"), Value: []byte("v1"),
			Headers: []kgo.RecordHeader{{Key: "type", Value: []byte("placed")}, {Key: outbox.HeaderID, Value: []byte("id-1")}}},
		&kgo.Record{Topic: "orders", Value: nil})
	tb := &faketb.TB{}
	start := time.Now()
	if got := k.Records(tb, "orders", 3, 500*time.Millisecond); got != nil {
		t.Errorf("Records returned %d records after failing", len(got))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Records took %s with a 500ms timeout", d)
	}
	if len(tb.Fatals) != 1 {
		t.Fatalf("Fatalf called %d times, want once: %q", len(tb.Fatals), tb.Fatals)
	}
	if tb.Helpers == 0 {
		t.Error("Helper was not called")
	}
	msg := tb.Fatals[0]
	for _, s := range []string{
		`kafkatest: expected at least 3 records in topic "orders" within 500ms, 2 arrived:`,
		`[0] topic="orders[0]@0" key="o-1" value="v1" headers=["type":"placed"] id="id-1"`,
		`[1] topic="orders[0]@1" key=<nil> value=<nil> id=""`,
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("message does not contain %q:\n%s", s, msg)
		}
	}

	tb = &faketb.TB{}
	k.Records(tb, "missing", 1, 200*time.Millisecond)
	if len(tb.Fatals) != 1 || !strings.Contains(tb.Fatals[0], `expected at least 1 records in topic "missing" within 200ms, 0 arrived`) {
		t.Errorf("Fatalf calls: %q", tb.Fatals)
	}
}

func TestNewKafkaBadPartitions(t *testing.T) {
	tb := &faketb.TB{}
	if k := kafkatest.New(tb, 0, "orders"); k != nil {
		t.Error("kafkatest.New returned a broker after failing")
	}
	if len(tb.Fatals) != 1 || !strings.HasPrefix(tb.Fatals[0], "kafkatest: New: partitions must be at least 1, got 0") {
		t.Errorf("Fatalf calls: %q", tb.Fatals)
	}
	if len(tb.Cleanups) != 0 {
		t.Errorf("%d cleanups registered for a cluster that did not start", len(tb.Cleanups))
	}
}

func ExampleNew() {
	// In a test function, pass the test's *testing.T.
	t := &faketb.TB{Panic: true}
	defer t.Finish()
	broker := kafkatest.New(t, 3, "orders")
	db := sqlitetest.New(t)
	ctx := context.Background()

	// The code under test enqueues in its transaction.
	tx, err := db.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("%v", err)
	}
	err = db.Outbox.Enqueue(ctx, tx, outbox.Message{
		ID: "order-o-1-placed", Topic: "orders", Key: []byte("o-1"), Value: []byte(`{"total":3}`),
	})
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("%v", err)
	}

	// A relay publishes to the broker with the real Kafka publisher.
	pub, err := kafka.New(kafka.Config{Brokers: broker.Brokers()})
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	defer pub.Close()
	relay, err := outbox.NewRelay(db.DB, pub, outbox.RelayConfig{
		Dialect: dialect.SQLite(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("NewRelay: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(runCtx) }()
	defer func() { stop(); <-done }()

	for _, r := range broker.Records(t, "orders", 1, 10*time.Second) {
		fmt.Printf("%s key=%s value=%s\n", r.Topic, r.Key, r.Value)
		for _, h := range r.Headers {
			fmt.Printf("header %s=%s\n", h.Key, h.Value)
		}
	}
	// Output:
	// orders key=o-1 value={"total":3}
	// header outbox-id=order-o-1-placed
}
