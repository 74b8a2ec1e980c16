package dbtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

func TestOpenAll(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		db := dbtest.Open(t, name)
		if db.Name != name || db.Dialect.Name() != name {
			t.Fatalf("Open(%s) gave %s, dialect %s", name, db.Name, db.Dialect.Name())
		}
		if err := db.Dialect.EnsureShards(context.Background(), db.DB, 8); err != nil {
			t.Fatal(err)
		}
		s, err := db.Dialect.Stats(context.Background(), db.DB)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", s)
	})
}

func TestOpenIsolated(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		other := dbtest.Open(t, db.Name)
		ctx := context.Background()
		if err := db.Dialect.EnsureShards(ctx, db.DB, 4); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := other.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+dialect.TableShards).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("a second database sees %d shards of the first", n)
		}
	})
}

func TestOpenEmpty(t *testing.T) {
	db := dbtest.OpenEmpty(t, dialect.NameSQLite)
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?", dialect.TableShards).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("OpenEmpty ran the migrations")
	}
	more := db.OpenMore(t)
	if err := more.Ping(); err != nil {
		t.Fatal(err)
	}
}

func TestDialect(t *testing.T) {
	for _, name := range dbtest.Names {
		if d := dbtest.Dialect(name); d == nil || d.Name() != name {
			t.Errorf("Dialect(%s) = %v", name, d)
		}
	}
	if d := dbtest.Dialect("oracle"); d != nil {
		t.Errorf("Dialect(oracle) = %v, want nil", d)
	}
}

// TestExample runs the test of the package example.
func TestExample(t *testing.T) { testEnqueue(t) }

// OpenOwnDatabase gives a PostgreSQL test a migrated database of its own.
func TestOpenOwnDatabase(t *testing.T) {
	db := dbtest.OpenOwnDatabase(t, dialect.NamePostgres)
	var name string
	if err := db.QueryRow("SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "outbox_t_") {
		t.Fatalf("current_database() = %q, want a database of the test's own", name)
	}
	if _, err := db.Exec("SELECT COUNT(*) FROM " + dialect.TableMessages); err != nil {
		t.Fatalf("not migrated: %v", err)
	}
}
