package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/proctest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// TestDatabaseWatchUnreachable: against a port nothing listens on, the
// first failure line becomes "database unreachable" and the next ones are
// not written; lines without an error pass.
func TestDatabaseWatchUnreachable(t *testing.T) {
	var out proctest.Buffer
	base := slog.New(slog.NewTextHandler(&out, nil))
	d, err := parseDatabaseURL("postgres://u:pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	log, stop := watchDatabase(context.Background(), d, base)
	log = log.With("relay", "r1") // the relay derives its logger
	boom := errors.New("read failed")
	log.Warn("lease maintenance failed", "err", boom)
	log.Error("reading the outbox failed", "err", boom)
	log.Warn("no error attribute")
	log.Info("outbox relay starting")
	stop()
	got := out.String()
	for _, want := range []string{"database unreachable", "no error attribute", "outbox relay starting"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	for _, hidden := range []string{"lease maintenance failed", "reading the outbox failed", "pw"} {
		if strings.Contains(got, hidden) {
			t.Errorf("log has %q:\n%s", hidden, got)
		}
	}
}

// TestDatabaseWatchHealthy: while the database answers, failure lines pass.
func TestDatabaseWatchHealthy(t *testing.T) {
	dbURL, _ := databaseURL(t, dialect.NamePostgres, dbtest.OpenEmpty(t, dialect.NamePostgres))
	d, err := parseDatabaseURL(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var out proctest.Buffer
	log, stop := watchDatabase(context.Background(), d, slog.New(slog.NewTextHandler(&out, nil)))
	log.Warn("publishing failed; retrying later with backoff", "err", errors.New("broker said no"))
	log.Warn("publishing failed; retrying later with backoff", "err", errors.New("broker said no"))
	stop()
	if n := strings.Count(out.String(), "publishing failed"); n != 2 || strings.Contains(out.String(), "database") {
		t.Errorf("%d failure lines written, want 2 and no database line:\n%s", n, out.String())
	}
}

// TestDatabaseWatchSkipsSQLite: a file does not go away; no watch.
func TestDatabaseWatchSkipsSQLite(t *testing.T) {
	var out proctest.Buffer
	d, err := parseDatabaseURL("sqlite:" + t.TempDir() + "/x.db")
	if err != nil {
		t.Fatal(err)
	}
	base := slog.New(slog.NewTextHandler(&out, nil))
	log, stop := watchDatabase(context.Background(), d, base)
	defer stop()
	if log != base {
		t.Error("SQLite is watched")
	}
}
