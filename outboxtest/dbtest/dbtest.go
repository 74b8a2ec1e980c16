// Package dbtest gives tests a fresh, migrated outbox database of each
// dialect on the real servers: PostgreSQL and MariaDB/MySQL over TCP,
// SQLite in a temp file. Each Open gets its own schema (PostgreSQL),
// database (MySQL) or file (SQLite), dropped when the test ends, so tests
// can run in parallel. It serves the library's own tests and applications'
// tests alike (River's riverdbtest is the model).
//
// Run runs a subtest per dialect in Names:
//
//	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
//		db := dbtest.Open(t, name)
//		// ... use db.DB, db.Dialect
//	})
//
// DSNs come from OUTBOX_TEST_POSTGRES_DSN (a postgres:// URL) and
// OUTBOX_TEST_MYSQL_DSN (go-sql-driver/mysql form), defaulting to the
// local services (DefaultPostgresDSN, DefaultMySQLDSN). When the
// environment variable CI is set, an unreachable server fails the test;
// otherwise the test is skipped with a loud message.
package dbtest

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
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq"  // PostgreSQL driver
	_ "modernc.org/sqlite" // SQLite driver

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/migrations"
)

// Default DSNs of the local services.
const (
	DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultMySQLDSN    = "root@tcp(127.0.0.1:3306)/test"
)

// Names lists the dialects every conformance and integration test runs on,
// in the order Run runs them.
var Names = []dialect.Name{dialect.NamePostgres, dialect.NameMySQL, dialect.NameSQLite}

// Run runs fn as a subtest of t for each dialect in Names, named after
// the dialect (TestX/postgres, TestX/mysql, TestX/sqlite).
func Run(t *testing.T, fn func(t *testing.T, name dialect.Name)) {
	t.Helper()
	for _, name := range Names {
		t.Run(string(name), func(t *testing.T) { fn(t, name) })
	}
}

// RunDB is Run with a fresh, migrated database of each dialect (Open).
func RunDB(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	Run(t, func(t *testing.T, name dialect.Name) { fn(t, Open(t, name)) })
}

// Dialect returns the dialect called name, or nil for an unknown name.
func Dialect(name dialect.Name) dialect.Dialect {
	switch name {
	case dialect.NamePostgres:
		return dialect.Postgres()
	case dialect.NameMySQL:
		return dialect.MySQL()
	case dialect.NameSQLite:
		return dialect.SQLite()
	}
	return nil
}

// PostgresDSN returns the PostgreSQL DSN of the tests.
func PostgresDSN() string { return envOr("OUTBOX_TEST_POSTGRES_DSN", DefaultPostgresDSN) }

// MySQLDSN returns the MySQL DSN of the tests.
func MySQLDSN() string { return envOr("OUTBOX_TEST_MYSQL_DSN", DefaultMySQLDSN) }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// DB is a fresh database for one test. It is closed, and its schema or
// database dropped, when the test ends.
type DB struct {
	*sql.DB
	Name    dialect.Name
	Dialect dialect.Dialect
	// DriverName and DSN open more connections to the same database.
	DriverName, DSN string
}

// Open returns a fresh, empty, migrated database of dialect name.
func Open(tb testing.TB, name dialect.Name) *DB {
	tb.Helper()
	db := OpenEmpty(tb, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := migrations.Up(ctx, db.DB, db.Dialect); err != nil {
		tb.Fatalf("dbtest: migrate %s: %v", name, err)
	}
	return db
}

// OpenOwnDatabase is Open, but on PostgreSQL in a database of its own
// (created for the test and dropped after it) instead of a schema of the
// shared one. Use it for a test that holds a snapshot open (a long
// REPEATABLE READ transaction): CREATE INDEX CONCURRENTLY, which the
// migrations use, waits for every snapshot older than it in the same
// database, so the migrations of every other test running at the same
// time would wait for it. On MySQL and SQLite Open already gives each test
// a database of its own.
func OpenOwnDatabase(tb testing.TB, name dialect.Name) *DB {
	tb.Helper()
	if name != dialect.NamePostgres {
		return Open(tb, name)
	}
	db := openPostgres(tb, true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := migrations.Up(ctx, db.DB, db.Dialect); err != nil {
		tb.Fatalf("dbtest: migrate postgres: %v", err)
	}
	return db
}

// OpenEmpty is Open without the migrations.
func OpenEmpty(tb testing.TB, name dialect.Name) *DB {
	tb.Helper()
	switch name {
	case dialect.NamePostgres:
		return openPostgres(tb, false)
	case dialect.NameMySQL:
		return openMySQL(tb)
	case dialect.NameSQLite:
		return openSQLite(tb)
	}
	tb.Fatalf("dbtest: unknown dialect %q", name)
	return nil
}

// OpenMore opens another pool on the same database, closed at cleanup.
func (db *DB) OpenMore(tb testing.TB) *sql.DB {
	tb.Helper()
	more, err := sql.Open(db.DriverName, db.DSN)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	tb.Cleanup(func() { more.Close() })
	return more
}

var reach sync.Map // driver name -> error (nil when reachable)

// requireServer skips or fails tb when the server behind admin is down.
func requireServer(tb testing.TB, name string, admin *sql.DB) {
	tb.Helper()
	v, ok := reach.Load(name)
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := admin.PingContext(ctx)
		cancel()
		v, _ = reach.LoadOrStore(name, err)
	}
	if err, _ := v.(error); err != nil {
		msg := fmt.Sprintf("dbtest: %s is unreachable (%v): set OUTBOX_TEST_%s_DSN or start the server", name, redact(err), upper(name))
		if os.Getenv("CI") != "" {
			tb.Fatal(msg + " [CI is set: this is a failure, not a skip]")
		}
		fmt.Fprintln(os.Stderr, "!!!!! SKIPPING: "+msg)
		tb.Skip(msg)
	}
}

func upper(s string) string {
	if s == "postgres" {
		return "POSTGRES"
	}
	return "MYSQL"
}

// redact keeps DSNs (and the passwords in them) out of test output: driver
// errors here are about connecting and rarely carry one, but be safe.
func redact(err error) string {
	s := err.Error()
	for _, dsn := range []string{PostgresDSN(), MySQLDSN()} {
		if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				s = strings.ReplaceAll(s, p, "xxxxx")
			}
		}
		if c, perr := mysql.ParseDSN(dsn); perr == nil && c.Passwd != "" {
			s = strings.ReplaceAll(s, c.Passwd, "xxxxx")
		}
	}
	return s
}

func uniqueName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "outbox_t_" + hex.EncodeToString(b[:])
}

// openPostgres opens a fresh schema of the test database, or with own a
// fresh database of its own.
func openPostgres(tb testing.TB, own bool) *DB {
	tb.Helper()
	base := PostgresDSN()
	admin, err := sql.Open("postgres", base)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	defer admin.Close()
	requireServer(tb, "postgres", admin)
	name := uniqueName()
	create, drop := "CREATE SCHEMA "+name, "DROP SCHEMA "+name+" CASCADE"
	if own {
		create, drop = "CREATE DATABASE "+name, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"
	}
	if _, err := admin.Exec(create); err != nil {
		tb.Fatalf("dbtest: %s: %v", create, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("dbtest: OUTBOX_TEST_POSTGRES_DSN must be a postgres:// URL")
	}
	if own {
		u.Path = "/" + name
	} else {
		q := u.Query()
		q.Set("search_path", name) // lib/pq sends unknown keys as run-time parameters
		u.RawQuery = q.Encode()
	}
	dsn := u.String()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	tb.Cleanup(func() {
		db.Close()
		if a, err := sql.Open("postgres", base); err == nil {
			_, _ = a.Exec(drop)
			a.Close()
		}
	})
	return &DB{DB: db, Name: dialect.NamePostgres, Dialect: dialect.Postgres(), DriverName: "postgres", DSN: dsn}
}

func openMySQL(tb testing.TB) *DB {
	tb.Helper()
	base := MySQLDSN()
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		tb.Fatalf("dbtest: OUTBOX_TEST_MYSQL_DSN is not a go-sql-driver/mysql DSN")
	}
	admin, err := sql.Open("mysql", base)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	defer admin.Close()
	requireServer(tb, "mysql", admin)
	name := uniqueName()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		tb.Fatalf("dbtest: create database: %v", err)
	}
	cfg.DBName = name
	dsn := cfg.FormatDSN()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	tb.Cleanup(func() {
		db.Close()
		if a, err := sql.Open("mysql", base); err == nil {
			_, _ = a.Exec("DROP DATABASE " + name)
			a.Close()
		}
	})
	return &DB{DB: db, Name: dialect.NameMySQL, Dialect: dialect.MySQL(), DriverName: "mysql", DSN: dsn}
}

// SQLiteDSN is the DSN the tests (and the documentation) use for a SQLite
// file: WAL, a busy timeout and immediate transactions.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(20000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

func openSQLite(tb testing.TB) *DB {
	tb.Helper()
	dsn := SQLiteDSN(filepath.Join(tb.TempDir(), "outbox.db"))
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return &DB{DB: db, Name: dialect.NameSQLite, Dialect: dialect.SQLite(), DriverName: "sqlite", DSN: dsn}
}
