package orders_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/examples/sqlx/orders"
	"github.com/outboxrelay/outbox/migrations"
)

// TestCreateOrder: a committed order's event is published; an order rolled
// back after its insert and its Enqueue leaves neither a row nor an event.
func TestCreateOrder(t *testing.T) {
	for _, name := range dialects {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tdb := openTestDB(t, name)
			// sqlx.NewDb wraps a pool; the driver name picks the placeholders.
			db := sqlx.NewDb(tdb.Open(t), tdb.Driver)
			ctx := context.Background()
			if err := migrations.Up(ctx, db.DB, tdb.Dialect); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, orders.Schema); err != nil {
				t.Fatal(err)
			}
			ob, err := outbox.New(outbox.Config{Dialect: tdb.Dialect})
			if err != nil {
				t.Fatal(err)
			}
			svc := &orders.Service{DB: db, Outbox: ob}
			pub := startRelay(t, tdb)

			// Over the limit: rolled back after the INSERT and the Enqueue.
			if _, err := svc.CreateOrder(ctx, "bob", 60_000); !errors.Is(err, orders.ErrCreditLimitExceeded) {
				t.Fatalf("CreateOrder(bob) = %v, want ErrCreditLimitExceeded", err)
			}
			id, err := svc.CreateOrder(ctx, "alice", 2_500)
			if err != nil {
				t.Fatal(err)
			}

			recs := waitDrained(t, db.DB, pub, id)
			requireOnlyEvent(t, pub, recs, orders.OrderCreated{OrderID: id, Customer: "alice", TotalCents: 2_500})
			if got, err := svc.OrdersOf(ctx, "bob"); err != nil || len(got) != 0 {
				t.Errorf("bob's orders = %v (err %v), want none: the rolled-back row must not exist", got, err)
			}
			want := []orders.Order{{ID: id, Customer: "alice", TotalCents: 2_500}}
			if got, err := svc.OrdersOf(ctx, "alice"); err != nil || !slices.Equal(got, want) {
				t.Errorf("alice's orders = %v (err %v), want %v", got, err, want)
			}
		})
	}
}
