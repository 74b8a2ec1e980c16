package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/examples/sqlx/orders"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// TestCreateOrder: a committed order's event is published; an order rolled
// back after its insert and its Enqueue leaves neither a row nor an event.
func TestCreateOrder(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		tdb := dbtest.Open(t, name)
		// sqlx.NewDb wraps a pool; the driver name picks the placeholders.
		db := sqlx.NewDb(tdb.DB, tdb.DriverName)
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, orders.Schema); err != nil {
			t.Fatal(err)
		}
		ob, err := outbox.New(outbox.Config{Dialect: tdb.Dialect})
		if err != nil {
			t.Fatal(err)
		}
		svc := &orders.Service{DB: db, Outbox: ob}
		pub := outboxtest.NewFakePublisher()
		outboxtest.StartRelay(t, tdb.OpenMore(t), pub, outbox.RelayConfig{Dialect: tdb.Dialect, PollInterval: 20 * time.Millisecond})

		// Over the limit: rolled back after the INSERT and the Enqueue.
		if _, err := svc.CreateOrder(ctx, "bob", 60_000); !errors.Is(err, orders.ErrCreditLimitExceeded) {
			t.Fatalf("CreateOrder(bob) = %v, want ErrCreditLimitExceeded", err)
		}
		id, err := svc.CreateOrder(ctx, "alice", 2_500)
		if err != nil {
			t.Fatal(err)
		}

		recs := outboxtest.WaitDrained(t, db.DB, pub, 15*time.Second)
		event, _ := json.Marshal(orders.OrderCreated{OrderID: id, Customer: "alice", TotalCents: 2_500})
		outboxtest.RequireOnlyPublished(t, pub, recs, outboxtest.Want{Topic: orders.TopicOrderCreated, Key: []byte(id), Value: event,
			Headers: []outbox.Header{{Key: "content-type", Value: []byte("application/json")}}})
		if got, err := svc.OrdersOf(ctx, "bob"); err != nil || len(got) != 0 {
			t.Errorf("bob's orders = %v (err %v), want none: the rolled-back row must not exist", got, err)
		}
		want := []orders.Order{{ID: id, Customer: "alice", TotalCents: 2_500}}
		if got, err := svc.OrdersOf(ctx, "alice"); err != nil || !slices.Equal(got, want) {
			t.Errorf("alice's orders = %v (err %v), want %v", got, err, want)
		}
	})
}
