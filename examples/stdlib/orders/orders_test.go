package orders_test

import (
	"context"
	"errors"
	"testing"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/examples/stdlib/orders"
	"github.com/outboxrelay/outbox/migrations"
)

// TestCreateOrder: a committed order's event is published; an order rolled
// back after its insert and its Enqueue leaves neither a row nor an event.
func TestCreateOrder(t *testing.T) {
	for _, name := range dialects {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tdb := openTestDB(t, name)
			db := tdb.Open(t)
			ctx := context.Background()
			if err := migrations.Up(ctx, db, tdb.Dialect); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, orders.Schema); err != nil {
				t.Fatal(err)
			}
			ob, err := outbox.New(outbox.Config{Dialect: tdb.Dialect})
			if err != nil {
				t.Fatal(err)
			}
			svc := &orders.Service{DB: db, Outbox: ob, Postgres: name == "postgres"}
			pub := startRelay(t, tdb)

			// Over the limit: rolled back after the INSERT and the Enqueue.
			if _, err := svc.CreateOrder(ctx, "bob", 60_000); !errors.Is(err, orders.ErrCreditLimitExceeded) {
				t.Fatalf("CreateOrder(bob) = %v, want ErrCreditLimitExceeded", err)
			}
			id, err := svc.CreateOrder(ctx, "alice", 2_500)
			if err != nil {
				t.Fatal(err)
			}

			recs := waitDrained(t, db, pub, id)
			requireOnlyEvent(t, pub, recs, orders.OrderCreated{OrderID: id, Customer: "alice", TotalCents: 2_500})
			if n, err := svc.CountOrders(ctx, "bob"); err != nil || n != 0 {
				t.Errorf("bob has %d orders (err %v), want 0: the rolled-back row must not exist", n, err)
			}
			if n, err := svc.CountOrders(ctx, "alice"); err != nil || n != 1 {
				t.Errorf("alice has %d orders (err %v), want 1", n, err)
			}
		})
	}
}
