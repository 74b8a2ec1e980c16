package dbtest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// testEnqueue is what a test of an application looks like (call it from
// func TestEnqueue(t *testing.T)): Run gives one subtest per dialect, Open
// a fresh, migrated database of it, dropped when the subtest ends.
func testEnqueue(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel() // each database is the subtest's own
		db := dbtest.Open(t, name)
		ctx := context.Background()
		ob, err := outbox.New(outbox.Config{Dialect: db.Dialect})
		if err != nil {
			t.Fatal(err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := ob.Enqueue(ctx, tx, outbox.Message{Topic: "orders", Value: []byte("created")}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+dialect.TableMessages).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%d rows in the outbox table, want 1", n)
		}
	})
}

// The dialects a test runs on, and the dialect each name stands for. See
// testEnqueue (this file) for a test of an application that uses them.
func Example() {
	for _, name := range dbtest.Names {
		fmt.Println(name, dbtest.Dialect(name).Name())
	}
	// Output:
	// postgres postgres
	// mysql mysql
	// sqlite sqlite
}
