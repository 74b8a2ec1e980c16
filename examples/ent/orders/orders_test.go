package orders_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/examples/ent/ent"
	"github.com/outboxrelay/outbox/examples/ent/orders"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// setup opens a pool on tdb, a fresh database with the outbox tables
// (dbtest), creates ent's schema and returns the pool and a service on it.
func setup(t *testing.T, tdb *dbtest.DB) (*sql.DB, *orders.Service) {
	t.Helper()
	dsn := tdb.DSN
	switch tdb.Name {
	case dialect.NameSQLite:
		dsn += "&_pragma=foreign_keys(1)" // ent's migration wants foreign keys on
	case dialect.NameMySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ParseTime = true // for ent's time fields
		dsn = cfg.FormatDSN()
	}
	db, err := sql.Open(tdb.DriverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	client, err := orders.NewClient(string(tdb.Name), db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := orders.Migrate(ctx, client); err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(outbox.Config{Dialect: tdb.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	return db, &orders.Service{Client: client, Outbox: ob}
}

// TestCreateOrder: a committed order's event is published; an order rolled
// back after its insert and its Enqueue leaves neither a row nor an event.
func TestCreateOrder(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		tdb := dbtest.Open(t, name)
		db, svc := setup(t, tdb)
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

		recs := outboxtest.WaitDrained(t, db, pub, 15*time.Second)
		event, _ := json.Marshal(orders.OrderCreated{OrderID: id, Customer: "alice", TotalCents: 2_500})
		outboxtest.RequireOnlyPublished(t, pub, recs, outboxtest.Want{Topic: orders.TopicOrderCreated, Key: []byte(id), Value: event,
			Headers: []outbox.Header{{Key: "content-type", Value: []byte("application/json")}}})
		if got, err := svc.OrdersOf(ctx, "bob"); err != nil || len(got) != 0 {
			t.Errorf("bob's orders = %v (err %v), want none: the rolled-back row must not exist", got, err)
		}
		got, err := svc.OrdersOf(ctx, "alice")
		if err != nil || len(got) != 1 || got[0].ID != id || got[0].TotalCents != 2_500 || got[0].CreatedAt.IsZero() {
			t.Errorf("alice's orders = %v (err %v), want the one of %s for 2500 cents", got, err, id)
		}
	})
}

// TestTrapClient shows the mistake the comment in CreateOrder warns about:
// in an ent transaction, Enqueue through the *ent.Client (which has an
// ExecContext too) instead of the *ent.Tx. The order rolls back, its event
// does not. (Not on SQLite: there the client waits for the write lock of
// the transaction and fails after the busy timeout, 20 s here.)
func TestTrapClient(t *testing.T) {
	for _, name := range []dialect.Name{dialect.NamePostgres, dialect.NameMySQL} {
		t.Run(string(name), func(t *testing.T) {
			t.Parallel()
			tdb := dbtest.Open(t, name)
			db, svc := setup(t, tdb)
			ob, _ := outbox.New(outbox.Config{Dialect: tdb.Dialect})
			ctx := context.Background()
			rollback := errors.New("roll back")

			for _, c := range []struct {
				execer  func(client *ent.Client, tx *ent.Tx) outbox.Execer
				pending int
			}{
				{func(_ *ent.Client, tx *ent.Tx) outbox.Execer { return tx }, 0},          // right
				{func(_ *ent.Client, tx *ent.Tx) outbox.Execer { return tx.Client() }, 0}, // right too
				{func(client *ent.Client, _ *ent.Tx) outbox.Execer { return client }, 1},  // wrong
			} {
				err := orders.WithTx(ctx, svc.Client, func(tx *ent.Tx) error {
					if err := tx.Order.Create().SetID("ord_trap").SetCustomer("mallory").SetTotalCents(1).Exec(ctx); err != nil {
						return err
					}
					if err := ob.Enqueue(ctx, c.execer(svc.Client, tx), outbox.Message{Topic: orders.TopicOrderCreated, Key: []byte("ord_trap")}); err != nil {
						return err
					}
					return rollback
				})
				if !errors.Is(err, rollback) {
					t.Fatalf("WithTx = %v", err)
				}
				rows, err := svc.Client.Order.Query().Count(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var pending int
				if err := db.QueryRow("SELECT COUNT(*) FROM " + dialect.TableMessages).Scan(&pending); err != nil {
					t.Fatal(err)
				}
				if rows != 0 || pending != c.pending {
					t.Errorf("after the rollback: %d order rows, %d outbox rows; want 0 and %d", rows, pending, c.pending)
				}
			}
		})
	}
}
