package pqnotify_test

import (
	"context"
	"database/sql"
	"log/slog"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/dialect/pqnotify"
)

// A relay on PostgreSQL wakes on the commit of outbox rows instead of
// polling. (Not run: it needs a migrated PostgreSQL database;
// TestWakeOnCommitOnly and TestRelayWokenByNotify in this package run it against one.)
func Example() {
	ctx := context.Background()
	dsn := "postgres://app@127.0.0.1:5432/app?sslmode=disable"
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		panic(err)
	}
	l, err := pqnotify.New(ctx, dsn, slog.Default())
	if err != nil {
		panic(err)
	}
	defer l.Close()

	var pub outbox.Publisher // e.g. kafka.New(...)
	r, err := outbox.NewRelay(db, pub, outbox.RelayConfig{Dialect: dialect.Postgres(), Wake: l.Wake()})
	if err != nil {
		panic(err)
	}
	_ = r.Run(ctx)
}
