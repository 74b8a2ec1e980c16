package main

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/lib/pq"

	"github.com/outboxrelay/outbox/dialect"
)

// urlForms ends the errors about the form of a database URL.
const urlForms = `use postgres://user:pass@host:5432/db, mysql://user:pass@host:3306/db (or mariadb://), or sqlite:/path/app.db`

// parseDatabaseURL turns a database URL into a driver, a DSN and a
// dialect. The forms:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   (also postgresql://)
//	postgres://user@/db?host=/var/run/postgresql        (Unix socket: the socket's directory)
//	mysql://user:pass@host:3306/db?tls=true             (also mariadb://)
//	mysql://user:pass@/db?socket=/run/mysqld/mysqld.sock (Unix socket)
//	user:pass@tcp(host:3306)/db?tls=true                (go-sql-driver's DSN, for MySQL)
//	sqlite:/var/lib/app/outbox.db   sqlite:outbox.db   sqlite:///abs/path.db
//
// Driver parameters are passed to the driver; one it refuses is named in
// the error. Errors never hold the URL, which may carry a password.
func parseDatabaseURL(raw string) (database, error) {
	if raw == "" {
		return database{}, &URLError{"is empty: set OUTBOX_DATABASE_URL (or --database-url-file)"}
	}
	if mysqlDSN.MatchString(raw) {
		return parseMySQLDSN(raw)
	}
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || !schemeRE.MatchString(scheme) {
		return database{}, &URLError{"does not start with a scheme: " + urlForms}
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return parsePostgresURL(strings.ToLower(scheme) + ":" + rest) // lib/pq wants it lower case
	case "mysql", "mariadb":
		return parseMySQLURL(raw, strings.ToLower(scheme))
	case "sqlite", "sqlite3":
		return parseSQLiteURL(rest)
	}
	return database{}, &URLError{fmt.Sprintf("scheme %q is not supported: %s", scheme, urlForms)}
}

var (
	schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)
	// mysqlDSN matches go-sql-driver's DSN form, [user[:pass]@]tcp(addr)/db
	// or unix(path): the form the MySQL tests use.
	mysqlDSN = regexp.MustCompile(`^([^/]*@)?(tcp|tcp4|tcp6|unix)\(`)
)

func parsePostgresURL(raw string) (database, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return database{}, &URLError{"is not a valid postgres:// URL: use postgres://user:pass@host:5432/db"}
	}
	host := u.Host
	if h := u.Query().Get("host"); h != "" {
		host = h
	}
	if host == "" {
		return database{}, &URLError{"postgres:// URL has no host: use postgres://user:pass@host:5432/db, " +
			"or for a Unix socket postgres://user@/db?host=/var/run/postgresql (the socket's directory)"}
	}
	if _, err := pq.NewConfig(raw); err != nil {
		return database{}, &URLError{"postgres:// URL: " + redactURL(strings.TrimPrefix(err.Error(), "pq: "), u)}
	}
	display := "postgres://" + host + u.Path
	if strings.HasPrefix(host, "/") {
		display = "postgres://" + u.Path + "?host=" + host
	}
	return database{driver: "postgres", dsn: raw, dialect: dialect.Postgres(), display: display}, nil
}

func parseMySQLURL(raw, scheme string) (database, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return database{}, &URLError{"is not a valid " + scheme + ":// URL: use " + scheme + "://user:pass@host:3306/db"}
	}
	q := u.Query()
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	switch sock := q.Get("socket"); {
	case sock != "" && u.Host == "":
		cfg.Net, cfg.Addr = "unix", sock
		q.Del("socket")
	case u.Host == "":
		return database{}, &URLError{scheme + ":// URL has no host: use " + scheme + "://user:pass@host:3306/db, " +
			"or for a Unix socket " + scheme + "://user:pass@/db?socket=/run/mysqld/mysqld.sock"}
	default:
		cfg.Net, cfg.Addr = "tcp", u.Host
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			cfg.Addr = net.JoinHostPort(strings.Trim(u.Host, "[]"), "3306")
		}
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return database{}, &URLError{scheme + ":// URL needs one database name in its path: " + scheme + "://user:pass@host:3306/db"}
	}
	dsn := cfg.FormatDSN()
	if len(q) > 0 {
		dsn += "?" + q.Encode()
	}
	if err := checkMySQLParams(cfg, q); err != nil {
		return database{}, err
	}
	return database{driver: "mysql", dsn: dsn, dialect: dialect.MySQL(), display: mysqlDisplay(scheme, cfg)}, nil
}

func parseMySQLDSN(raw string) (database, error) {
	base, query, _ := strings.Cut(raw, "?")
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		return database{}, &URLError{"is not a valid go-sql-driver DSN (" + redact(err.Error(), passwordOf(base)) +
			"): use user:pass@tcp(host:3306)/db, or mysql://user:pass@host:3306/db"}
	}
	if cfg.DBName == "" {
		return database{}, &URLError{"go-sql-driver DSN needs a database name: user:pass@tcp(host:3306)/db"}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return database{}, &URLError{"go-sql-driver DSN has a malformed query after '?'"}
	}
	if err := checkMySQLParams(cfg, q); err != nil {
		return database{}, err
	}
	return database{driver: "mysql", dsn: raw, dialect: dialect.MySQL(), display: mysqlDisplay("mysql", cfg)}, nil
}

// mysqlDisplay names the database of cfg without its credentials.
func mysqlDisplay(scheme string, cfg *mysql.Config) string {
	if cfg.Net == "unix" {
		return scheme + ":///" + cfg.DBName + "?socket=" + cfg.Addr
	}
	return scheme + "://" + cfg.Addr + "/" + cfg.DBName
}

// checkMySQLParams asks the MySQL driver about each parameter alone, so
// the one it refuses is named. Names it does not know are MySQL session
// variables (innodb_lock_wait_timeout=5): the server checks them.
func checkMySQLParams(cfg *mysql.Config, q url.Values) error {
	base := cfg.Clone()
	base.Params = nil
	dsn := base.FormatDSN()
	for name, values := range q {
		for _, v := range values {
			one := url.Values{name: {v}}
			if _, err := mysql.ParseDSN(dsn + "?" + one.Encode()); err != nil {
				return &URLError{fmt.Sprintf("parameter %s: the MySQL driver refuses its value (%s)", name, redact(err.Error(), cfg.Passwd))}
			}
		}
	}
	return nil
}

func parseSQLiteURL(rest string) (database, error) {
	path, query, _ := strings.Cut(rest, "?")
	path = strings.TrimPrefix(path, "//")
	if path == "" {
		return database{}, &URLError{"sqlite: URL has no file path: use sqlite:/path/app.db"}
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

// redactURL removes u's password from s.
func redactURL(s string, u *url.URL) string {
	if u.User == nil {
		return s
	}
	pw, _ := u.User.Password()
	return redact(redact(s, pw), url.QueryEscape(pw))
}

// redact removes secret from s.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "***")
}

// passwordOf is the password of a go-sql-driver DSN, user:pass@net(addr)/db.
func passwordOf(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(dsn[:at], ":")
	return pw
}
