package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/outboxrelay/outbox/dialect"
)

// ErrUsage is wrapped by every configuration error: bad flags, bad
// environment variables, bad URLs. Such errors exit with status 2.
var ErrUsage = errors.New("usage")

// envName is the environment variable of a flag: --kafka-brokers is
// OUTBOX_KAFKA_BROKERS.
func envName(flagName string) string {
	return "OUTBOX_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command
// line from its environment variable. A flag beats its variable.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%w: %s: %w", ErrUsage, envName(f.Name), e)
			}
		}
	})
	return err
}

// secret reads a secret from the file named by the --*-file flag (file),
// else from the environment variable env, else from the file named by
// env_FILE. Secrets never come from flags themselves: flags show in ps and
// shell history.
func secret(getenv func(string) string, env, file string) (string, error) {
	if file == "" {
		if v := getenv(env); v != "" {
			return v, nil
		}
		file = getenv(env + "_FILE")
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%w: reading %s from a file: %w", ErrUsage, env, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// URLError is a database URL that cannot be used. It never holds the URL,
// which may carry a password.
type URLError struct {
	Reason string
}

func (e *URLError) Error() string { return "database URL: " + e.Reason }

// Unwrap returns ErrUsage.
func (e *URLError) Unwrap() error { return ErrUsage }

// database is a parsed OUTBOX_DATABASE_URL.
type database struct {
	driver  string // database/sql driver name
	dsn     string // driver DSN (secret)
	dialect dialect.Dialect
	display string // scheme, host and database: safe to log
}

// relaySession returns d with server-side bounds on every statement of the
// relay's own sessions, unless the URL sets them: on PostgreSQL a
// statement_timeout of twice the longest deadline the relay gives a
// statement and a lock_timeout, on MySQL and MariaDB an
// innodb_lock_wait_timeout (the dialect also bounds each statement by its
// deadline on MariaDB). They stop a statement the relay gave up on even
// when its cancel request cannot reach the server. Not for migrate: DDL on
// a large table may rightly take longer.
func (d database) relaySession(lease time.Duration) database {
	stmt := 2 * max(lease, 30*time.Second) // reads are bounded by the lease, outcomes by 30 s
	lock := max(lease/2, 5*time.Second)
	var params [][2]string
	switch d.driver {
	case "postgres":
		params = [][2]string{{"statement_timeout", strconv.FormatInt(stmt.Milliseconds(), 10)},
			{"lock_timeout", strconv.FormatInt(lock.Milliseconds(), 10)}}
	case "mysql":
		params = [][2]string{{"innodb_lock_wait_timeout", strconv.Itoa(int(lock.Seconds()))}}
	default:
		return d
	}
	base, query, _ := strings.Cut(d.dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return d // parseDatabaseURL accepted it; leave it as it is
	}
	for _, p := range params {
		if !q.Has(p[0]) {
			q.Set(p[0], p[1])
		}
	}
	d.dsn = base + "?" + q.Encode()
	return d
}

// sqliteDefaults are the pragmas the relay needs on SQLite when the URL
// gives none: WAL, a busy timeout, immediate transactions.
const sqliteDefaults = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(20000)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// parseDatabaseURL turns postgres://, mysql:// and sqlite: URLs into a
// driver, a DSN and a dialect:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   (also postgresql://)
//	mysql://user:pass@host:3306/db?tls=true             (MySQL 8, MariaDB)
//	sqlite:/var/lib/app/outbox.db   sqlite:outbox.db   sqlite:///abs/path.db
func parseDatabaseURL(raw string) (database, error) {
	if raw == "" {
		return database{}, &URLError{"is empty: set OUTBOX_DATABASE_URL (or --database-url-file)"}
	}
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok {
		return database{}, &URLError{"has no scheme: use postgres://, mysql:// or sqlite:"}
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil {
			return database{}, &URLError{"is not a valid postgres:// URL"}
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return database{}, &URLError{"postgres:// URL has no host"}
		}
		return database{driver: "postgres", dsn: raw, dialect: dialect.Postgres(),
			display: "postgres://" + u.Host + u.Path}, nil
	case "mysql":
		u, err := url.Parse(raw)
		if err != nil || u.Opaque != "" {
			return database{}, &URLError{"is not a valid mysql://user:pass@host:port/db URL"}
		}
		if u.Host == "" {
			return database{}, &URLError{"mysql:// URL has no host"}
		}
		cfg := mysql.NewConfig()
		if u.User != nil {
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
		}
		cfg.Net = "tcp"
		cfg.Addr = u.Host
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			cfg.Addr = net.JoinHostPort(strings.Trim(u.Host, "[]"), "3306")
		}
		cfg.DBName = strings.TrimPrefix(u.Path, "/")
		if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
			return database{}, &URLError{"mysql:// URL needs one database name in its path"}
		}
		dsn := cfg.FormatDSN()
		if q := u.RawQuery; q != "" {
			dsn += "?" + q
		}
		if _, err := mysql.ParseDSN(dsn); err != nil {
			return database{}, &URLError{"mysql:// URL has invalid parameters"}
		}
		return database{driver: "mysql", dsn: dsn, dialect: dialect.MySQL(),
			display: "mysql://" + cfg.Addr + "/" + cfg.DBName}, nil
	case "sqlite", "sqlite3":
		path, query, _ := strings.Cut(rest, "?")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return database{}, &URLError{"sqlite: URL has no file path"}
		}
		if path == ":memory:" {
			return database{}, &URLError{"sqlite: an in-memory database is private to one process; use a file"}
		}
		if query == "" {
			query = sqliteDefaults
		}
		return database{driver: "sqlite", dsn: "file:" + path + "?" + query, dialect: dialect.SQLite(),
			display: "sqlite:" + path}, nil
	}
	return database{}, &URLError{fmt.Sprintf("scheme %q is not supported: use postgres://, mysql:// or sqlite:", scheme)}
}

// newLogger returns a slog logger writing text or JSON to w.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level must be debug, info, warn or error, got %q", ErrUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration { // "2s", not 2000000000
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format must be text or json, got %q", ErrUsage, format)
}

// tlsOptions are the --kafka-tls-* flags.
type tlsOptions struct {
	enable             bool
	caFile             string
	certFile, keyFile  string
	insecureSkipVerify bool
	serverName         string
}

func (o tlsOptions) config() (*tls.Config, error) {
	if !o.enable {
		if o.caFile != "" || o.certFile != "" || o.keyFile != "" || o.insecureSkipVerify || o.serverName != "" {
			return nil, fmt.Errorf("%w: --kafka-tls-* options given without --kafka-tls", ErrUsage)
		}
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.insecureSkipVerify, ServerName: o.serverName}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --kafka-tls-ca-file: %w", ErrUsage, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: --kafka-tls-ca-file holds no PEM certificate", ErrUsage)
		}
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return nil, fmt.Errorf("%w: --kafka-tls-cert-file and --kafka-tls-key-file go together", ErrUsage)
	}
	if o.certFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate: %w", ErrUsage, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
