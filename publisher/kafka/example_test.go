package kafka_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	_ "modernc.org/sqlite" // the SQLite driver, registered as "sqlite"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/migrations"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

// A relay that publishes the outbox of a SQLite database to Kafka. The
// example runs against an in-process Kafka-protocol broker; in production,
// Brokers are your cluster's (and TLS and SASL are usually set).
func ExampleNew() {
	// A broker with the topic "orders", 3 partitions.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()

	pub, err := kafka.New(kafka.Config{
		Brokers:     cluster.ListenAddrs(),
		ClientID:    "orders-relay",
		Compression: "lz4",
		Partitioner: "murmur2", // keys land where Java producers put them
	})
	if err != nil {
		log.Fatal(err) // errors.Is(err, outbox.ErrUnavailable): no broker reachable
	}
	defer pub.Close() // after the relay has stopped

	// The application's database, with a committed outbox message.
	dir, err := os.MkdirTemp("", "kafka-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db")+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := migrations.Up(ctx, db, dialect.SQLite()); err != nil {
		log.Fatal(err)
	}
	ob, err := outbox.New(outbox.Config{Dialect: dialect.SQLite()})
	if err != nil {
		log.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	// ... the business change, through tx ...
	err = ob.Enqueue(ctx, tx, outbox.Message{
		Topic:   "orders",
		Key:     []byte("order-42"),
		Value:   []byte(`{"id":"order-42","total":1999}`),
		Headers: []outbox.Header{{Key: "type", Value: []byte("order.placed")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}

	// The relay publishes committed messages with the Kafka publisher.
	relay, err := outbox.NewRelay(db, pub, outbox.RelayConfig{
		Dialect: dialect.SQLite(),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(runCtx) }()

	// A consumer sees the record, with the outbox-id header last.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Close()
	pollCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) == 0 && pollCtx.Err() == nil {
		recs = consumer.PollFetches(pollCtx).Records()
	}
	if len(recs) == 0 {
		log.Fatal("no record published")
	}
	r := recs[0]
	fmt.Printf("%s[%d] key=%s value=%s\n", r.Topic, r.Partition, r.Key, r.Value)
	for _, h := range r.Headers {
		if h.Key == outbox.HeaderID {
			fmt.Printf("header %s: a UUIDv7 of %d characters\n", h.Key, len(h.Value))
		} else {
			fmt.Printf("header %s: %s\n", h.Key, h.Value)
		}
	}

	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// orders[0] key=order-42 value={"id":"order-42","total":1999}
	// header type: order.placed
	// header outbox-id: a UUIDv7 of 36 characters
}
