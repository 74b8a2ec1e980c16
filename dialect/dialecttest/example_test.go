package dialecttest_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/dialect/dialecttest"
	"github.com/outboxrelay/outbox/migrations"
)

// A Harness tells the suite how to get a fresh, migrated database. In a
// test of your own dialect, pass it to dialecttest.Run(t, h).
func ExampleHarness() {
	h := dialecttest.Harness{
		Dialect: dialect.SQLite(),
		Open: func(tb testing.TB) *sql.DB {
			dir := tb.TempDir()
			db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "t.db")+"?_pragma=busy_timeout(20000)&_txlock=immediate")
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { db.Close() })
			if err := migrations.Up(tb.Context(), db, dialect.SQLite()); err != nil {
				tb.Fatal(err)
			}
			return db
		},
	}
	// func TestConformance(t *testing.T) { dialecttest.Run(t, h) }
	fmt.Println("suite ready for", h.Dialect.Name())
	// Output: suite ready for sqlite
}
