package migrations_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/migrations"
)

// Apply the outbox migrations at start-up. Up is idempotent and safe to call
// from every replica at once.
func ExampleUp() {
	dir, _ := os.MkdirTemp("", "outbox-example")
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		panic(err)
	}
	defer db.Close()

	ctx := context.Background()
	if err := migrations.Up(ctx, db, dialect.SQLite()); err != nil {
		panic(err)
	}
	// Running it again changes nothing.
	if err := migrations.Up(ctx, db, dialect.SQLite()); err != nil {
		panic(err)
	}
	var version int64
	_ = db.QueryRow("SELECT MAX(version_id) FROM " + migrations.VersionTable).Scan(&version)
	fmt.Println("outbox schema version", version)
	// Output: outbox schema version 5
}
