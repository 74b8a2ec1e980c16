package orders_test

// Test databases. The library's own helper (internal/testdb) cannot be
// imported from another module, so this example carries a small copy:
// every test gets its own PostgreSQL schema, MySQL database or SQLite file,
// dropped when it ends.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql" // also registers "mysql"
	_ "github.com/lib/pq"            // "postgres"
	_ "modernc.org/sqlite"           // "sqlite"

	"github.com/outboxrelay/outbox/dialect"
)

// The same variables and defaults as the library's own tests.
const (
	postgresEnv        = "OUTBOX_TEST_POSTGRES_DSN"
	mysqlEnv           = "OUTBOX_TEST_MYSQL_DSN"
	defaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultMySQLDSN    = "root@tcp(127.0.0.1:3306)/test"
)

// dialects are the databases every test runs on, as subtests named after them.
var dialects = []string{"sqlite", "postgres", "mysql"}

// testDB is a fresh, empty database for one test.
type testDB struct {
	Name    string // sqlite, postgres or mysql
	Driver  string // the database/sql driver name
	DSN     string
	Dialect dialect.Dialect
}

// Open opens a pool on the test database, closed when the test ends.
func (tdb testDB) Open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open(tdb.Driver, tdb.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openTestDB(t *testing.T, name string) testDB {
	t.Helper()
	switch name {
	case "sqlite":
		dsn := "file:" + filepath.Join(t.TempDir(), "orders.db") +
			"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(20000)&_txlock=immediate"
		return testDB{Name: name, Driver: "sqlite", DSN: dsn, Dialect: dialect.SQLite()}
	case "postgres":
		return openPostgres(t)
	case "mysql":
		return openMySQL(t)
	}
	t.Fatalf("unknown dialect %q", name)
	return testDB{}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// requireServer skips the test with a loud message when the server is down,
// or fails it when CI is set. password is kept out of the message.
func requireServer(t *testing.T, name, env string, admin *sql.DB, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		reason := err.Error()
		if password != "" {
			reason = strings.ReplaceAll(reason, password, "xxxxx")
		}
		msg := fmt.Sprintf("%s is unreachable (%s): set %s or start the server", name, reason, env)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " [CI is set: this is a failure, not a skip]")
		}
		fmt.Fprintln(os.Stderr, "!!!!! SKIPPING: "+msg)
		t.Skip(msg)
	}
}

func uniqueName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "orders_t_" + hex.EncodeToString(b[:])
}

// openPostgres creates a schema of its own and points search_path at it.
func openPostgres(t *testing.T) testDB {
	t.Helper()
	base := envOr(postgresEnv, defaultPostgresDSN)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s must be a postgres:// URL", postgresEnv)
	}
	password, _ := u.User.Password()
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	requireServer(t, "PostgreSQL", postgresEnv, admin, password)
	schema := uniqueName()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if a, err := sql.Open("postgres", base); err == nil {
			_, _ = a.Exec("DROP SCHEMA " + schema + " CASCADE")
			a.Close()
		}
	})
	q := u.Query()
	q.Set("search_path", schema) // sent as a run-time parameter on connect
	u.RawQuery = q.Encode()
	return testDB{Name: "postgres", Driver: "postgres", DSN: u.String(), Dialect: dialect.Postgres()}
}

// openMySQL creates a database of its own.
func openMySQL(t *testing.T) testDB {
	t.Helper()
	base := envOr(mysqlEnv, defaultMySQLDSN)
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("%s is not a go-sql-driver/mysql DSN", mysqlEnv)
	}
	admin, err := sql.Open("mysql", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	requireServer(t, "MySQL/MariaDB", mysqlEnv, admin, cfg.Passwd)
	name := uniqueName()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if a, err := sql.Open("mysql", base); err == nil {
			_, _ = a.Exec("DROP DATABASE " + name)
			a.Close()
		}
	})
	cfg.DBName = name
	return testDB{Name: "mysql", Driver: "mysql", DSN: cfg.FormatDSN(), Dialect: dialect.MySQL()}
}
