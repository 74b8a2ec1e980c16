package main

import (
	"errors"
	"strings"
	"testing"
)

// TestDatabaseURLForms covers the forms added for operators: mariadb://,
// Unix sockets, go-sql-driver's DSN.
func TestDatabaseURLForms(t *testing.T) {
	const pw = "s3cr3t"
	for _, tc := range []struct{ url, driver, dsn, display string }{
		{"mariadb://app:" + pw + "@db/shop", "mysql", "app:" + pw + "@tcp(db:3306)/shop", "mariadb://db:3306/shop"},
		{"mysql://app@/shop?socket=/run/mysqld/mysqld.sock", "mysql", "app@unix(/run/mysqld/mysqld.sock)/shop", "mysql:///shop?socket=/run/mysqld/mysqld.sock"},
		{"root@tcp(127.0.0.1:3306)/test", "mysql", "root@tcp(127.0.0.1:3306)/test", "mysql://127.0.0.1:3306/test"},
		{"app:" + pw + "@unix(/run/mysqld/mysqld.sock)/shop?tls=false", "mysql", "app:" + pw + "@unix(/run/mysqld/mysqld.sock)/shop?tls=false", "mysql:///shop?socket=/run/mysqld/mysqld.sock"},
		{"postgres:///app?host=/var/run/postgresql", "postgres", "postgres:///app?host=/var/run/postgresql", "postgres:///app?host=/var/run/postgresql"},
		{"postgresql://app@/app?host=/tmp&sslmode=disable", "postgres", "postgresql://app@/app?host=/tmp&sslmode=disable", "postgres:///app?host=/tmp"},
		{"PostgreSQL://app@db/app", "postgres", "postgresql://app@db/app", "postgres://db/app"},
	} {
		d, err := parseDatabaseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.display, err)
			continue
		}
		if d.driver != tc.driver || d.dsn != tc.dsn || d.display != tc.display {
			t.Errorf("parse(%s) = %s %q %q; want %s %q %q", tc.display, d.driver, d.dsn, d.display, tc.driver, tc.dsn, tc.display)
		}
	}
}

// TestDatabaseURLErrors: each error says what to do, names the parameter
// the driver refuses, and never shows the password.
func TestDatabaseURLErrors(t *testing.T) {
	const pw = "s3cr3t-pw"
	for _, tc := range []struct{ url, want string }{
		{"postgres:///db", "for a Unix socket postgres://user@/db?host=/var/run/postgresql"},
		{"postgres://u:" + pw + "@h/db?sslmode=bogus", `wrong value for "sslmode"`},
		{"postgres://u:" + pw + "@h/db?connect_timeout=soon", `wrong value for "connect_timeout"`},
		{"mysql://u:" + pw + "@h/db?tls=bogus", "parameter tls: the MySQL driver refuses its value"},
		{"mariadb://u:" + pw + "@h/db?readTimeout=forever", "parameter readTimeout: the MySQL driver refuses its value"},
		{"u:" + pw + "@tcp(h:3306)/db?parseTime=maybe", "parameter parseTime: the MySQL driver refuses its value"},
		{"mysql://u:" + pw + "@/db", "for a Unix socket mysql://user:pass@/db?socket=/run/mysqld/mysqld.sock"},
		{"u:" + pw + "@tcp(h:3306)", "use user:pass@tcp(host:3306)/db, or mysql://user:pass@host:3306/db"},
		{"root@tcp(127.0.0.1", "use user:pass@tcp(host:3306)/db"},
		{"oracle://u:" + pw + "@h/db", `scheme "oracle" is not supported: use postgres://`},
		{"u:" + pw + "@h/db", `scheme "u" is not supported`},
		{"localhost/db", "does not start with a scheme"},
	} {
		_, err := parseDatabaseURL(tc.url)
		var ue *URLError
		if !errors.As(err, &ue) || !errors.Is(err, ErrUsage) {
			t.Errorf("parse(%q) = %v, want a *URLError", strings.ReplaceAll(tc.url, pw, "***"), err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parse(%q) = %q; want it to say %q", strings.ReplaceAll(tc.url, pw, "***"), err, tc.want)
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error %q shows the password", err)
		}
	}
}
