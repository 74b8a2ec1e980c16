package orders_test

import (
	"context"
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/examples/gorm/orders"
	"github.com/outboxrelay/outbox/migrations"
)

// setup migrates a fresh database and returns it with a service on it.
func setup(t *testing.T, tdb testDB) (*gorm.DB, *orders.Service) {
	t.Helper()
	gdb := tdb.GORM(t)
	db, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := migrations.Up(ctx, db, tdb.Dialect); err != nil {
		t.Fatal(err)
	}
	if err := orders.Migrate(ctx, gdb); err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(outbox.Config{Dialect: tdb.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	return gdb, &orders.Service{DB: gdb, Outbox: ob}
}

// TestCreateOrder: a committed order's event is published; an order rolled
// back after its insert and its Enqueue leaves neither a row nor an event.
func TestCreateOrder(t *testing.T) {
	for _, name := range dialects {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tdb := openTestDB(t, name)
			gdb, svc := setup(t, tdb)
			pub := startRelay(t, tdb)
			ctx := context.Background()

			// Over the limit: rolled back after the INSERT and the Enqueue.
			if _, err := svc.CreateOrder(ctx, "bob", 60_000); !errors.Is(err, orders.ErrCreditLimitExceeded) {
				t.Fatalf("CreateOrder(bob) = %v, want ErrCreditLimitExceeded", err)
			}
			id, err := svc.CreateOrder(ctx, "alice", 2_500)
			if err != nil {
				t.Fatal(err)
			}

			db, _ := gdb.DB()
			recs := waitDrained(t, db, pub, id)
			requireOnlyEvent(t, pub, recs, orders.OrderCreated{OrderID: id, Customer: "alice", TotalCents: 2_500})
			if got, err := svc.OrdersOf(ctx, "bob"); err != nil || len(got) != 0 {
				t.Errorf("bob's orders = %v (err %v), want none: the rolled-back row must not exist", got, err)
			}
			got, err := svc.OrdersOf(ctx, "alice")
			if err != nil || len(got) != 1 || got[0].ID != id || got[0].TotalCents != 2_500 || got[0].CreatedAt.IsZero() {
				t.Errorf("alice's orders = %+v (err %v), want the one of %s for 2500 cents", got, err, id)
			}
		})
	}
}

// TestTrapOuterPool shows the mistake the comment in CreateOrder warns
// about: inside db.Transaction, Enqueue through the outer *gorm.DB's
// Statement.ConnPool instead of tx's. The order rolls back, its event does
// not. (Not on SQLite: there the outer pool waits for the write lock of the
// transaction and fails after the busy timeout, 20 s here.)
func TestTrapOuterPool(t *testing.T) {
	for _, name := range []string{"postgres", "mysql"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tdb := openTestDB(t, name)
			gdb, _ := setup(t, tdb)
			ob, _ := outbox.New(outbox.Config{Dialect: tdb.Dialect})
			ctx := context.Background()
			rollback := errors.New("roll back")

			for _, c := range []struct {
				execer  func(outer, tx *gorm.DB) outbox.Execer
				pending int64
			}{
				{func(_, tx *gorm.DB) outbox.Execer { return tx.Statement.ConnPool }, 0},       // right
				{func(outer, _ *gorm.DB) outbox.Execer { return outer.Statement.ConnPool }, 1}, // wrong
			} {
				err := gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
					if err := tx.Create(&orders.Order{ID: "ord_trap", Customer: "mallory", TotalCents: 1}).Error; err != nil {
						return err
					}
					if err := ob.Enqueue(ctx, c.execer(gdb, tx), outbox.Message{Topic: orders.TopicOrderCreated, Key: []byte("ord_trap")}); err != nil {
						return err
					}
					return rollback
				})
				if !errors.Is(err, rollback) {
					t.Fatalf("Transaction = %v", err)
				}
				var rows, pending int64
				if err := gdb.Model(&orders.Order{}).Count(&rows).Error; err != nil {
					t.Fatal(err)
				}
				if err := gdb.Table(dialect.TableMessages).Count(&pending).Error; err != nil {
					t.Fatal(err)
				}
				if rows != 0 || pending != c.pending {
					t.Errorf("after the rollback: %d order rows, %d outbox rows; want 0 and %d", rows, pending, c.pending)
				}
			}
		})
	}
}
