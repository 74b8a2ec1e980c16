// Package outbox makes "write to the database and publish to Kafka" one
// atomic act: the transactional outbox pattern.
//
// An application writes its business rows and its outbox messages in the
// same database transaction, with Enqueue:
//
//	tx, _ := db.BeginTx(ctx, nil)
//	_, _ = tx.ExecContext(ctx, "INSERT INTO orders ...")
//	err := ob.Enqueue(ctx, tx, outbox.Message{Topic: "orders", Key: []byte(orderID), Value: payload})
//	_ = tx.Commit()
//
// A relay (cmd/relay, or a Relay in your own process) reads committed
// messages and publishes them, so:
//
//   - a transaction that rolls back never emits its messages;
//   - a transaction that commits has its messages published at least once,
//     whatever crashes (the relay, the broker, the database);
//   - messages with the same key are published in the order they were
//     enqueued (for transactions that commit one after the other: commit
//     order), with any number of relays, across retries and crashes (a crash
//     may re-send a suffix: duplicates, never reordering of first
//     deliveries);
//   - every record carries the header outbox-id (a UUIDv7 unless you set
//     Message.ID), so consumers can de-duplicate.
//
// Enqueue takes any value with ExecContext: *sql.Tx, *sql.Conn, *sql.DB,
// sqlx, GORM's ConnPool, ent's transaction. It validates every message
// before writing and writes nothing when one is invalid. The SQL lives in
// package dialect (PostgreSQL, MySQL/MariaDB, SQLite); the tables are
// created by package migrations; package outboxtest has fakes and helpers
// for tests.
package outbox
