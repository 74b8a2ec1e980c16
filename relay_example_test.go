package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/migrations"
	"github.com/outboxrelay/outbox/outboxtest"
)

// Run a relay in your own process. Run blocks until its context ends, so it
// fits errgroup and signal.NotifyContext. Here it publishes to a fake; in
// production pass a publisher/kafka Publisher (or run cmd/relay).
func ExampleRelay() {
	dir, err := os.MkdirTemp("", "relay-example")
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
	if err := ob.Enqueue(ctx, tx, outbox.Message{Topic: "orders", Key: []byte("o-42"), Value: []byte(`{"id":42}`)}); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}

	pub := outboxtest.NewFakePublisher()
	relay, err := outbox.NewRelay(db, pub, outbox.RelayConfig{
		Dialect: dialect.SQLite(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- relay.Run(runCtx) }()
	for deadline := time.Now().Add(10 * time.Second); len(pub.Published()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			log.Fatal("nothing published within 10s")
		}
	}
	stop()
	fmt.Println("Run returned", <-done)
	r := pub.Published()[0]
	fmt.Printf("published to %s: key=%s value=%s\n", r.Topic, r.Key, r.Value)
	// Output:
	// Run returned <nil>
	// published to orders: key=o-42 value={"id":42}
}
