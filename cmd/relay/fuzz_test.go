package main

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzParseDatabaseURL: any input either parses into a known driver or
// fails with a *URLError that never repeats a password from the input.
func FuzzParseDatabaseURL(f *testing.F) {
	for _, s := range []string{
		"postgres://u:pw@h:5432/db?sslmode=disable", "postgresql://h/db", "mysql://u:p%40ss@h:3306/db?tls=true",
		"mysql://u@[::1]/db", "sqlite:/tmp/x.db", "sqlite:///x.db?_pragma=foo", "sqlite::memory:", "",
		"oracle://x", "mysql://u:pw@h/db?x=%zz", "postgres://u:pw@h:port/db", "mysql:", "sqlite:", ":",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := parseDatabaseURL(raw)
		if err != nil {
			var ue *URLError
			if !errors.As(err, &ue) || !errors.Is(err, ErrUsage) {
				t.Fatalf("error %T %v is not a *URLError", err, err)
			}
			if u, perr := url.Parse(raw); perr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) > 3 && strings.Contains(err.Error(), pw) {
					t.Fatalf("error %q repeats the password", err)
				}
			}
			return
		}
		switch d.driver {
		case "postgres", "mysql", "sqlite":
		default:
			t.Fatalf("unknown driver %q", d.driver)
		}
		if d.dialect == nil || d.dsn == "" || d.display == "" {
			t.Fatalf("incomplete result %+v", d)
		}
		if u, perr := url.Parse(raw); perr == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && len(pw) > 3 && strings.Contains(d.display, pw) {
				t.Fatalf("display %q shows the password", d.display)
			}
		}
	})
}
