package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// maxOutageLines bounds what a 20 s database outage may write: the first
// failure, "unreachable", one repeat, "back", and room for one more.
const maxOutageLines = 6

// TestE2EDatabaseOutageLogs stops the database for 20 s under a running
// relay (a TCP proxy in front of it is stopped, its connections cut, then
// started again) and counts the log lines: a few, and the "back" line with
// how long the database was gone.
func TestE2EDatabaseOutageLogs(t *testing.T) {
	relayBinary(t)
	for _, name := range []dialect.Name{dialect.NamePostgres, dialect.NameMySQL} {
		t.Run(string(name), func(t *testing.T) {
			t.Parallel()
			db := dbtest.Open(t, name)
			dbURL, _ := databaseURL(t, name, db)
			proxiedURL, proxy := behindProxy(t, dbURL)
			proxy.Start()
			broker, err := localkafka.Start(1, []string{e2eTopic})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(broker.Close)
			p := startRelay(t, string(name)+"-outage", []string{"OUTBOX_DATABASE_URL=" + proxiedURL,
				"OUTBOX_KAFKA_BROKERS=" + strings.Join(broker.Addrs, ","), "OUTBOX_LOG_FORMAT=json"}, "run")
			if !waitFor(30*time.Second, func() bool { return strings.Contains(p.stderr.String(), "outbox relay starting") }) {
				t.Fatalf("relay did not start\n%s", p.stderr.String())
			}
			time.Sleep(2 * time.Second) // leases taken, idle
			before := len(logLines(t, p))

			proxy.Stop()
			time.Sleep(20 * time.Second)
			proxy.Start()
			if !waitFor(20*time.Second, func() bool { return strings.Contains(p.stderr.String(), "database is back") }) {
				t.Fatalf("no \"database is back\" line\n%s", p.stderr.String())
			}
			time.Sleep(3 * time.Second) // what follows the return
			p.signal(t, syscall.SIGTERM)
			if code := p.wait(t, 20*time.Second); code != 0 {
				t.Errorf("exit status %d after SIGTERM", code)
			}
			lines := logLines(t, p)
			var during []map[string]any
			for _, l := range lines[before:] {
				if l["msg"] == "signal received: stopping (send it again to exit at once)" {
					break
				}
				during = append(during, l)
			}
			if len(during) > maxOutageLines || countMsg(during, "database unreachable: the relay waits for it; this line repeats less and less often") != 1 {
				t.Errorf("%d lines during the outage (want at most %d, one \"unreachable\"):\n%s", len(during), maxOutageLines, p.stderr.String())
			}
			back := countMsg(during, "database is back")
			var gone time.Duration
			for _, l := range during {
				if l["msg"] == "database is back" {
					gone, _ = time.ParseDuration(l["down_for"].(string))
				}
			}
			if back != 1 || gone < 19*time.Second || gone > 40*time.Second {
				t.Errorf("%d \"back\" lines, down_for %s: want one, about 20s\n%s", back, gone, p.stderr.String())
			}
			all := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
			t.Logf("%d lines during a 20s outage:\n%s", len(during), strings.Join(all[before:before+len(during)], "\n"))
		})
	}
}

// TestE2EListenAfterMigrate: a relay started before relay migrate polls
// while the tables are missing, sets up LISTEN once they exist, and
// publishes.
func TestE2EListenAfterMigrate(t *testing.T) {
	relayBinary(t)
	db := dbtest.OpenEmpty(t, dialect.NamePostgres)
	dbURL, _ := databaseURL(t, dialect.NamePostgres, db)
	broker, err := localkafka.Start(1, []string{e2eTopic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	env := []string{"OUTBOX_DATABASE_URL=" + dbURL, "OUTBOX_KAFKA_BROKERS=" + strings.Join(broker.Addrs, ","), "OUTBOX_LOG_FORMAT=json"}
	p := startRelay(t, "relay-before-migrate", env, "run")
	if !waitFor(30*time.Second, func() bool { return strings.Contains(p.stderr.String(), "LISTEN/NOTIFY unavailable") }) {
		t.Fatalf("no line saying LISTEN waits for the tables\n%s", p.stderr.String())
	}
	if m := runRelay(t, "migrate", env, 60*time.Second, "migrate"); m.ExitCode() != 0 {
		t.Fatalf("migrate: exit %d\n%s", m.ExitCode(), m.stderr.String())
	}
	if !waitFor(60*time.Second, func() bool { return strings.Contains(p.stderr.String(), "LISTEN/NOTIFY set up") }) {
		t.Fatalf("LISTEN not set up after the migration\n%s", p.stderr.String())
	}
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Enqueue(context.Background(), db.DB, outbox.Message{Topic: e2eTopic, Key: []byte("k"), Value: []byte("after-migrate")}); err != nil {
		t.Fatal(err)
	}
	consumer, err := localkafka.NewConsumer(broker.Addrs, e2eTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for got := false; !got; {
		if cctx.Err() != nil {
			t.Fatalf("the message was not published\n%s", p.stderr.String())
		}
		for _, r := range consumer.Poll(cctx) {
			got = got || string(r.Value) == "after-migrate"
		}
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM\n%s", code, p.stderr.String())
	}
	if n := strings.Count(p.stderr.String(), "LISTEN/NOTIFY unavailable"); n != 1 {
		t.Errorf("%d \"unavailable\" lines, want 1 however long it waited\n%s", n, p.stderr.String())
	}
}
