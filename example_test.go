package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the SQLite driver, registered as "sqlite"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/migrations"
)

// Write a business row and its event in one transaction: the event is
// published if and only if the order is committed.
func ExampleOutbox_Enqueue() {
	dir, err := os.MkdirTemp("", "outbox-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// SQLite in WAL mode, with a busy timeout and immediate transactions.
	dsn := "file:" + filepath.Join(dir, "app.db") +
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx := context.Background()
	// Create the outbox tables (idempotent), and the application's own.
	if err := migrations.Up(ctx, db, dialect.SQLite()); err != nil {
		log.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE orders (id TEXT PRIMARY KEY, total INTEGER NOT NULL)"); err != nil {
		log.Fatal(err)
	}

	// One Outbox per process; it holds no connection of its own.
	ob, err := outbox.New(outbox.Config{Dialect: dialect.SQLite()})
	if err != nil {
		log.Fatal(err)
	}

	// The business change and its message, in one transaction.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback() // a no-op after Commit

	orderID := "order-42"
	if _, err := tx.ExecContext(ctx, "INSERT INTO orders (id, total) VALUES (?, ?)", orderID, 1999); err != nil {
		log.Fatal(err)
	}
	err = ob.Enqueue(ctx, tx, outbox.Message{
		Topic:   "order.created",
		Key:     []byte(orderID), // messages of one order are published in order
		Value:   []byte(`{"id":"order-42","total":1999}`),
		Headers: []outbox.Header{{Key: "content-type", Value: []byte("application/json")}},
	})
	if err != nil {
		log.Fatal(err) // a *outbox.MessageError for an invalid message
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}

	// The message now waits in the outbox table for a relay to publish it.
	var topic, key string
	if err := db.QueryRowContext(ctx, "SELECT topic, CAST(msg_key AS TEXT) FROM "+dialect.TableMessages).Scan(&topic, &key); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("committed %s and enqueued %s (key %s)\n", orderID, topic, key)
	// Output: committed order-42 and enqueued order.created (key order-42)
}
