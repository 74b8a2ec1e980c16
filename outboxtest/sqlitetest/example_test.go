package sqlitetest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/faketb"
	"github.com/outboxrelay/outbox/outboxtest/sqlitetest"
)

// A message enqueued in a transaction that rolls back is gone with it; one
// that commits is pending in the outbox table.
func Example() {
	// In a test function, pass the test's *testing.T.
	t := &faketb.TB{Panic: true}
	defer t.Finish()
	db := sqlitetest.New(t)
	ctx := context.Background()

	// placeOrder writes the business change and its message in one
	// transaction; fail makes the business change fail after the enqueue.
	placeOrder := func(id string, fail bool) error {
		tx, err := db.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		// ... INSERT INTO orders through tx ...
		if err := db.Outbox.Enqueue(ctx, tx, outbox.Message{Topic: "orders", Key: []byte(id)}); err != nil {
			return err
		}
		if fail {
			return errors.New("out of stock")
		}
		return tx.Commit()
	}

	fmt.Println(placeOrder("o-1", true))
	db.RequireNoMessages(t) // rolled back with the business change

	if err := placeOrder("o-2", false); err != nil {
		t.Fatalf("placeOrder: %v", err)
	}
	for _, m := range db.Messages(t) {
		fmt.Printf("%s %s\n", m.Topic, m.Key)
	}
	// Output:
	// out of stock
	// orders o-2
}
