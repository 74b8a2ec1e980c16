package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq"  // the postgres driver
	_ "modernc.org/sqlite" // the sqlite driver

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// ---------------------------------------------------------------------------
// The database namespace

// database is the namespace of one run: a fresh schema, database or file.
type database struct {
	name    string // postgres, mysql or sqlite
	dialect dialect.Dialect
	driver  string
	dsn     string // DSN of the namespace; holds the password: never print it
	display string // dsn with the password masked
	// base is the DSN as given (PostgreSQL, MySQL), without the namespace.
	base string
	drop func() error
}

// openDatabase creates the run's namespace, empty, on the database that
// o names. Its drop removes it again.
func openDatabase(ctx context.Context, o *commonOpts) (*database, error) {
	d := &database{name: o.dialect, dialect: dbtest.Dialect(dialect.Name(o.dialect)), driver: o.dialect, base: o.dsn}
	var err error
	switch o.dialect {
	case "postgres":
		err = d.createPostgres(ctx, o.namespace)
	case "mysql":
		err = d.createMySQL(ctx, o.namespace)
	case "sqlite":
		err = d.createSQLite(o.dsn)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// createPostgres makes the schema ns on the server of d.base (default:
// the test server) and points d.dsn at it (search_path).
func (d *database) createPostgres(ctx context.Context, ns string) error {
	if d.base == "" {
		d.base = dbtest.PostgresDSN()
	}
	u, err := url.Parse(d.base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return usagef("the PostgreSQL DSN must be a postgres:// URL")
	}
	if pw, ok := u.User.Password(); ok {
		registerSecret(pw)
	}
	registerSecret(u.Query().Get("password"))
	admin, err := adminConn(ctx, "postgres", d.base, "PostgreSQL at "+u.Redacted(),
		"SELECT pg_try_advisory_lock(hashtext('outbox-bench.' || current_database() || '.' || $1))", ns)
	if err != nil {
		return err
	}
	if err := admin.recreate(ctx, "DROP SCHEMA IF EXISTS "+ns+" CASCADE", "CREATE SCHEMA "+ns); err != nil {
		return err
	}
	q := u.Query()
	q.Set("search_path", ns) // lib/pq sends unknown keys as run-time parameters
	u.RawQuery = q.Encode()
	d.dsn, d.display = u.String(), u.Redacted()
	d.drop = admin.dropper("DROP SCHEMA " + ns + " CASCADE")
	return nil
}

// createMySQL makes the database ns on the server of d.base (default: the
// test server) and points d.dsn at it.
func (d *database) createMySQL(ctx context.Context, ns string) error {
	if d.base == "" {
		d.base = dbtest.MySQLDSN()
	}
	cfg, err := mysql.ParseDSN(d.base)
	if err != nil {
		return usagef("the MySQL DSN is not a go-sql-driver/mysql DSN")
	}
	registerSecret(cfg.Passwd)
	shown := cfg.Clone()
	if shown.Passwd != "" {
		shown.Passwd = "xxxxx"
	}
	admin, err := adminConn(ctx, "mysql", d.base, "MySQL at "+shown.FormatDSN(),
		"SELECT GET_LOCK(LEFT(CONCAT('outbox-bench.', ?), 64), 0) = 1", ns)
	if err != nil {
		return err
	}
	if err := admin.recreate(ctx, "DROP DATABASE IF EXISTS "+ns, "CREATE DATABASE "+ns); err != nil {
		return err
	}
	cfg.DBName, shown.DBName = ns, ns
	d.dsn, d.display = cfg.FormatDSN(), shown.FormatDSN()
	d.drop = admin.dropper("DROP DATABASE " + ns)
	return nil
}

// createSQLite makes a temporary database file in dir ("": the system's
// temporary directory).
func (d *database) createSQLite(dir string) error {
	dir, err := os.MkdirTemp(dir, "outbox-bench-")
	if err != nil {
		return fmt.Errorf("temporary directory for SQLite: %w", err)
	}
	path := filepath.Join(dir, "outbox.db")
	d.dsn, d.display = dbtest.SQLiteDSN(path), path
	d.drop = func() error { return os.RemoveAll(dir) }
	return nil
}

// recreate runs the statements that drop and create the namespace; on an
// error it ends the session.
func (a *adminSession) recreate(ctx context.Context, stmts ...string) error {
	for _, q := range stmts {
		if _, err := a.ExecContext(ctx, q); err != nil {
			a.Close()
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// dropper returns the database's drop: stmt, then the end of the session.
func (a *adminSession) dropper(stmt string) func() error {
	return func() error {
		defer a.Close()
		_, err := a.ExecContext(context.Background(), stmt)
		return err
	}
}

// adminSession is the connection that creates and drops a run's namespace.
// It holds a session lock on the namespace for the whole run, so that two
// runs never share one.
type adminSession struct {
	*sql.Conn
	pool *sql.DB
}

// Close ends the session (releasing the lock) and its pool.
func (a *adminSession) Close() {
	_ = a.Conn.Close()
	_ = a.pool.Close()
}

// adminConn connects to dsn and takes the namespace lock with lockQuery
// (which returns true when it got the lock, at once).
func adminConn(ctx context.Context, driver, dsn, what, lockQuery, namespace string) (*adminSession, error) {
	pool, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pool.Conn(pctx)
	if err == nil {
		err = conn.PingContext(pctx)
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: cannot connect (check --dsn, or start the server): %w", what, err)
	}
	a := &adminSession{Conn: conn, pool: pool}
	// The server ends a closed session a moment after its client has
	// gone: a run that follows another at once waits that long for its
	// lock, a few seconds at most.
	var got bool
	for try := 0; ; try++ {
		if err := conn.QueryRowContext(pctx, lockQuery, namespace).Scan(&got); err != nil {
			a.Close()
			return nil, fmt.Errorf("%s: locking the namespace %s: %w", what, namespace, err)
		}
		if got || try == 30 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !got {
		a.Close()
		return nil, fmt.Errorf("another outbox-bench run is using the namespace %s on %s: wait for it, or give --namespace", namespace, what)
	}
	return a, nil
}

// open returns a new pool on the namespace with at most maxConns
// connections.
func (d *database) open(maxConns int) (*sql.DB, error) {
	db, err := sql.Open(d.driver, d.dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	return db, nil
}

// oneRoundTripDSN returns the namespace's DSN with the driver option that
// sends parameters with the statement, and the option; "" on SQLite.
func oneRoundTripDSN(d *database) (dsn, option string) {
	switch d.name {
	case "postgres":
		u, err := url.Parse(d.dsn)
		if err != nil {
			return "", ""
		}
		q := u.Query()
		q.Set("binary_parameters", "yes")
		u.RawQuery = q.Encode()
		return u.String(), "binary_parameters=yes"
	case "mysql":
		cfg, err := mysql.ParseDSN(d.dsn)
		if err != nil {
			return "", ""
		}
		cfg.InterpolateParams = true
		return cfg.FormatDSN(), "interpolateParams=true"
	}
	return "", ""
}

// viaProxy returns the address dsn connects to and a function that returns
// dsn pointed at a proxy address instead.
func viaProxy(dialectName, dsn string) (proxied func(addr string) string, target string, err error) {
	switch dialectName {
	case "postgres":
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, "", err
		}
		host, port := u.Hostname(), u.Port()
		if host == "" {
			host = "localhost"
		}
		if strings.HasPrefix(host, "/") {
			return nil, "", fmt.Errorf("a Unix socket (%s) cannot be proxied; give a TCP address", host)
		}
		if port == "" {
			port = "5432"
		}
		return func(addr string) string {
			v := *u
			v.Host = addr
			return v.String()
		}, net.JoinHostPort(host, port), nil
	case "mysql":
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, "", err
		}
		if cfg.Net != "tcp" {
			return nil, "", fmt.Errorf("a %s connection cannot be proxied; give a tcp(host:port) address", cfg.Net)
		}
		return func(addr string) string {
			c := cfg.Clone()
			c.Addr = addr
			return c.FormatDSN()
		}, cfg.Addr, nil
	}
	return nil, "", fmt.Errorf("%s runs in process", dialectName)
}
