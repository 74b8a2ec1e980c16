// Command ent runs the orders service of this example on ent: it
// creates an order that commits and one that rolls back, runs a relay in
// the same process that prints what it publishes (instead of sending it to
// Kafka), and prints what happened. It creates the outbox tables and an
// orders table in the database it is given.
//
//	go run .                                  # SQLite in a temp file
//	go run . -driver postgres -dsn 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//	go run . -driver mysql -dsn 'root@tcp(127.0.0.1:3306)/test?parseTime=true'
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql" // "mysql"
	_ "github.com/lib/pq"              // "postgres"
	_ "modernc.org/sqlite"             // "sqlite", pure Go

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/examples/ent/orders"
	"github.com/outboxrelay/outbox/migrations"
	"github.com/outboxrelay/outbox/publisher/printer"
)

func main() {
	driver := flag.String("driver", "sqlite", "sqlite, postgres or mysql")
	dsn := flag.String("dsn", "", "data source name (default: a SQLite file in a temp directory)")
	flag.Parse()
	if err := run(*driver, *dsn); err != nil {
		log.Fatal(err)
	}
}

// run is the whole example, top to bottom: open and migrate, start a
// relay, place an order that commits and one that rolls back, and see what
// reaches the publisher. It is long because it is meant to be read in one
// go, as the README's walk-through; each example module stands alone.
func run(driver, dsn string) error {
	ctx := context.Background()
	d, err := dialectFor(driver)
	if err != nil {
		return err
	}
	if dsn == "" {
		if driver != "sqlite" {
			return fmt.Errorf("-dsn is required with -driver %s", driver)
		}
		dir, err := os.MkdirTemp("", "outbox-ent-example")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dsn = SQLiteDSN(filepath.Join(dir, "orders.db"))
	}
	fmt.Printf("ent on %s\n", driver)

	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	// The outbox tables (idempotent, safe to run from every replica), then
	// the service's own.
	if err := migrations.Up(ctx, db, d); err != nil {
		return err
	}
	client, err := orders.NewClient(driver, db)
	if err != nil {
		return err
	}
	if err := orders.Migrate(ctx, client); err != nil {
		return err
	}

	// Relay and broker logs go to stderr, warnings only.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Logger makes Enqueue warn (once) when handed a *sql.DB instead of a
	// transaction (not an *ent.Client, though: see package orders).
	ob, err := outbox.New(outbox.Config{Dialect: d, Logger: logger})
	if err != nil {
		return err
	}
	svc := &orders.Service{Client: client, Outbox: ob}

	// The relay usually runs as its own process (cmd/relay); here it runs
	// in this one, on its own small pool, and prints instead of publishing.
	relayDB, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer relayDB.Close()
	relayDB.SetMaxOpenConns(4)
	pub := printer.New(os.Stdout)
	relay, err := outbox.NewRelay(relayDB, pub, outbox.RelayConfig{Dialect: d, PollInterval: 50 * time.Millisecond, Logger: logger})
	if err != nil {
		return err
	}
	relayCtx, cancelRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	// Run returns once its context ends and its batch in flight is settled.
	stopRelay := sync.OnceFunc(func() { cancelRelay(); <-relayDone })
	defer stopRelay()

	// Bob's order would exceed his credit limit: the transaction rolls back
	// after the insert and the Enqueue, so neither the row nor the event exists.
	_, err = svc.CreateOrder(ctx, "bob", 60_000)
	switch {
	case errors.Is(err, orders.ErrCreditLimitExceeded):
		fmt.Printf("rejected:  bob, 600.00 (%v): rolled back, no row, no event\n", err)
	case err != nil:
		return err
	default:
		return errors.New("bob's order should have been rejected")
	}

	id, err := svc.CreateOrder(ctx, "alice", 2_500)
	if err != nil {
		return err
	}
	fmt.Printf("committed: order %s, alice, 25.00\n", id)

	select {
	case rec := <-pub.Published():
		if string(rec.Key) != id {
			return fmt.Errorf("published key %q, want %q", rec.Key, id)
		}
	case <-time.After(10 * time.Second):
		return errors.New("the relay published nothing within 10s")
	}
	stopRelay()

	alice, err := svc.OrdersOf(ctx, "alice")
	if err != nil {
		return err
	}
	bob, err := svc.OrdersOf(ctx, "bob")
	if err != nil {
		return err
	}
	var pending int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+dialect.TableMessages).Scan(&pending); err != nil {
		return err
	}
	fmt.Printf("result:    orders: alice %d, bob %d; events published: %d; still pending in the outbox: %d\n",
		len(alice), len(bob), pub.Count(), pending)
	return nil
}

func dialectFor(driver string) (dialect.Dialect, error) {
	switch driver {
	case "postgres":
		return dialect.Postgres(), nil
	case "mysql":
		return dialect.MySQL(), nil
	case "sqlite":
		return dialect.SQLite(), nil
	}
	return nil, fmt.Errorf("unknown -driver %q: want sqlite, postgres or mysql", driver)
}

// SQLiteDSN is a modernc.org/sqlite DSN for a file: WAL so the relay reads
// while the service writes, a busy timeout so writers wait for each other
// instead of failing, and _txlock=immediate so that a transaction takes the
// write lock when it begins. Without it, a transaction that reads and then
// writes can fail at once with SQLITE_BUSY, busy timeout or not. ent's
// migration also insists on foreign keys being on.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
}
