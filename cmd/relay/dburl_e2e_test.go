package main

import (
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// TestE2EDatabaseURLErrors: a URL the relay cannot use says which form to
// use, or names the parameter the driver refuses, and exits 2.
func TestE2EDatabaseURLErrors(t *testing.T) {
	const pw = "pw-e2e-secret"
	db := func(u string) []string { return []string{"OUTBOX_DATABASE_URL=" + u} }
	const forms = "use postgres://user:pass@host:5432/db, mysql://user:pass@host:3306/db (or mariadb://), or sqlite:/path/app.db"
	runCLICases(t, []cliCase{
		{"postgres socket without host", db("postgres:///app"), []string{"migrate"}, 2,
			"relay migrate: database URL: postgres:// URL has no host: use postgres://user:pass@host:5432/db, or for a Unix socket postgres://user@/db?host=/var/run/postgresql (the socket's directory)", ""},
		{"mysql tls bogus", db("mysql://app:" + pw + "@db/app?tls=bogus"), []string{"migrate"}, 2,
			"relay migrate: database URL: parameter tls: the MySQL driver refuses its value (invalid value / unknown config name: bogus)", ""},
		{"postgres sslmode bogus", db("postgres://app:" + pw + "@db/app?sslmode=bogus"), []string{"migrate"}, 2,
			`relay migrate: database URL: postgres:// URL: wrong value for "sslmode": "bogus" is not supported; supported values are disable, allow, prefer, require, verify-full, or verify-ca`, ""},
		{"driver DSN without database", db("root:" + pw + "@tcp(127.0.0.1:3306)"), []string{"migrate"}, 2,
			"relay migrate: database URL: is not a valid go-sql-driver DSN (invalid DSN: missing the slash separating the database name): use user:pass@tcp(host:3306)/db, or mysql://user:pass@host:3306/db", ""},
		{"unknown scheme", db("oracle://app:" + pw + "@db/app"), []string{"migrate"}, 2,
			`relay migrate: database URL: scheme "oracle" is not supported: ` + forms, ""},
		{"no scheme", db("db.internal/app"), []string{"run", "--kafka-brokers", "k:9092"}, 2,
			"relay run: database URL: does not start with a scheme: " + forms, ""},
		{"bad wait", db("sqlite:/x.db"), []string{"migrate", "--wait-for-database", "soon"}, 2,
			"relay migrate: --wait-for-database=soon: a duration such as 250ms or 2s, or 0 (0 does not wait)", ""},
	})
}

// TestE2EDatabaseURLForms runs relay migrate with each URL form against
// the test servers: mariadb://, go-sql-driver's DSN, and Unix sockets.
func TestE2EDatabaseURLForms(t *testing.T) {
	relayBinary(t)
	forms := map[string]func(t *testing.T) string{
		"mariadb scheme": func(t *testing.T) string {
			u, _ := databaseURL(t, dialect.NameMySQL, dbtest.OpenEmpty(t, dialect.NameMySQL))
			return "mariadb" + strings.TrimPrefix(u, "mysql")
		},
		"go-sql-driver DSN": func(t *testing.T) string { return dbtest.OpenEmpty(t, dialect.NameMySQL).DSN },
		"mysql unix socket": func(t *testing.T) string {
			c, err := mysql.ParseDSN(dbtest.OpenEmpty(t, dialect.NameMySQL).DSN)
			if err != nil {
				t.Fatal(err)
			}
			const sock = "/run/mysqld/mysqld.sock"
			requireSocket(t, sock)
			return "mysql://" + url.User(c.User).String() + "@/" + c.DBName + "?socket=" + sock
		},
		"postgres unix socket": func(t *testing.T) string {
			u, _ := databaseURL(t, dialect.NamePostgres, dbtest.OpenEmpty(t, dialect.NamePostgres))
			p, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			const dir = "/var/run/postgresql"
			requireSocket(t, dir+"/.s.PGSQL.5432")
			q := p.Query()
			q.Set("host", dir)
			p.Host, p.RawQuery = "", q.Encode()
			return p.String()
		},
	}
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := runRelay(t, name, []string{"OUTBOX_DATABASE_URL=" + form(t)}, 60*time.Second, "migrate")
			if code := p.ExitCode(); code != 0 || !strings.HasPrefix(p.stdout.String(), "migrate: ") {
				t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, p.stdout.String(), p.stderr.String())
			}
		})
	}
}

// requireSocket skips where the server's Unix socket is not on this host
// (a database in another container): the form cannot be tried there.
func requireSocket(t *testing.T, path string) {
	t.Helper()
	if !fileExists(path) {
		t.Skipf("no Unix socket %s on this host", path)
	}
}

// TestE2EMigrateWaitsForDatabase: relay migrate started before its
// database waits for it (bounded by --wait-for-database), and gives up
// with an error naming the flag.
func TestE2EMigrateWaitsForDatabase(t *testing.T) {
	relayBinary(t)
	t.Run("comes up", func(t *testing.T) {
		t.Parallel()
		db := dbtest.OpenEmpty(t, dialect.NamePostgres)
		u, _ := databaseURL(t, dialect.NamePostgres, db)
		proxiedURL, proxy := behindProxy(t, u)
		p := startRelay(t, "migrate-waits", []string{"OUTBOX_DATABASE_URL=" + proxiedURL}, "migrate", "--wait-for-database", "60s")
		if !waitFor(30*time.Second, func() bool { return strings.Contains(p.stderr.String(), "database unreachable; retrying") }) {
			t.Fatalf("no retry line while the database is down\nstderr: %s", p.stderr.String())
		}
		proxy.Start()
		if code := p.wait(t, 60*time.Second); code != 0 || !strings.HasPrefix(p.stdout.String(), "migrate: ") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, p.stdout.String(), p.stderr.String())
		}
	})
	t.Run("gives up", func(t *testing.T) {
		t.Parallel()
		proxy := newTCPProxy(t, "127.0.0.1:5432") // never started: refused
		p := runRelay(t, "migrate-gives-up", []string{"OUTBOX_DATABASE_URL=postgres://app:pw@" + proxy.addr + "/app?sslmode=disable"},
			30*time.Second, "migrate", "--wait-for-database", "1s")
		want := "relay migrate: database postgres://" + proxy.addr + "/app did not answer within --wait-for-database 1s: dial tcp " + proxy.addr + ": connect: connection refused"
		lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
		if code := p.ExitCode(); code != 1 || lines[len(lines)-1] != want {
			t.Errorf("exit %d, last line %q\nwant %q", code, lines[len(lines)-1], want)
		}
	})
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
