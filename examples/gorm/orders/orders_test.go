package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/examples/gorm/orders"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// setup opens tdb, a fresh database with the outbox tables (dbtest), with
// GORM, creates the orders table and returns it with a service on it.
func setup(t *testing.T, tdb *dbtest.DB) (*gorm.DB, *orders.Service) {
	t.Helper()
	dsn := tdb.DSN // GORM opens PostgreSQL with pgx, which reads the same URL
	if tdb.Name == dialect.NameMySQL {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ParseTime = true // for GORM's time.Time columns
		dsn = cfg.FormatDSN()
	}
	gdb, err := orders.Open(string(tdb.Name), dsn, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	db, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
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
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		tdb := dbtest.Open(t, name)
		gdb, svc := setup(t, tdb)
		pub := outboxtest.NewFakePublisher()
		outboxtest.StartRelay(t, tdb.OpenMore(t), pub, outbox.RelayConfig{Dialect: tdb.Dialect, PollInterval: 20 * time.Millisecond})
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
		recs := outboxtest.WaitDrained(t, db, pub, 15*time.Second)
		event, _ := json.Marshal(orders.OrderCreated{OrderID: id, Customer: "alice", TotalCents: 2_500})
		outboxtest.RequireOnlyPublished(t, pub, recs, outboxtest.Want{Topic: orders.TopicOrderCreated, Key: []byte(id), Value: event,
			Headers: []outbox.Header{{Key: "content-type", Value: []byte("application/json")}}})
		if got, err := svc.OrdersOf(ctx, "bob"); err != nil || len(got) != 0 {
			t.Errorf("bob's orders = %v (err %v), want none: the rolled-back row must not exist", got, err)
		}
		got, err := svc.OrdersOf(ctx, "alice")
		if err != nil || len(got) != 1 || got[0].ID != id || got[0].TotalCents != 2_500 || got[0].CreatedAt.IsZero() {
			t.Errorf("alice's orders = %+v (err %v), want the one of %s for 2500 cents", got, err, id)
		}
	})
}

// TestTrapOuterPool shows the mistake the comment in CreateOrder warns
// about: inside db.Transaction, Enqueue through the outer *gorm.DB's
// Statement.ConnPool instead of tx's. The order rolls back, its event does
// not. (Not on SQLite: there the outer pool waits for the write lock of the
// transaction and fails after the busy timeout, 20 s here.)
func TestTrapOuterPool(t *testing.T) {
	for _, name := range []dialect.Name{dialect.NamePostgres, dialect.NameMySQL} {
		t.Run(string(name), func(t *testing.T) {
			t.Parallel()
			tdb := dbtest.Open(t, name)
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
