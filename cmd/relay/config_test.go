package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

func TestParseDatabaseURL(t *testing.T) {
	const pw = "s3cr3t-p@ss"
	tests := []struct {
		url, driver, dsn, display string
	}{
		{"postgres://app:" + pw + "@db:5432/app?sslmode=disable", "postgres", "postgres://app:" + pw + "@db:5432/app?sslmode=disable", "postgres://db:5432/app"},
		{"postgresql://app@db/app", "postgres", "postgresql://app@db/app", "postgres://db/app"},
		{"mysql://app:" + strings.ReplaceAll(pw, "@", "%40") + "@db:3307/shop?tls=true", "mysql", "app:" + pw + "@tcp(db:3307)/shop?tls=true", "mysql://db:3307/shop"},
		{"mysql://root@127.0.0.1/test", "mysql", "root@tcp(127.0.0.1:3306)/test", "mysql://127.0.0.1:3306/test"},
		{"sqlite:/var/lib/app/outbox.db", "sqlite", "file:/var/lib/app/outbox.db?" + sqliteDefaults, "sqlite:/var/lib/app/outbox.db"},
		{"sqlite:///abs/x.db", "sqlite", "file:/abs/x.db?" + sqliteDefaults, "sqlite:/abs/x.db"},
		{"sqlite:rel.db?_pragma=busy_timeout(1)", "sqlite", "file:rel.db?_pragma=busy_timeout(1)", "sqlite:rel.db"},
	}
	for _, tc := range tests {
		d, err := parseDatabaseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.display, err)
			continue
		}
		if d.driver != tc.driver || d.dsn != tc.dsn || d.display != tc.display {
			t.Errorf("parse(%s) = %s %q %q; want %s %q %q", tc.display, d.driver, d.dsn, d.display, tc.driver, tc.dsn, tc.display)
		}
		if strings.Contains(d.display, pw) {
			t.Errorf("display %q shows the password", d.display)
		}
	}
	bad := []string{"", "nocolon", "oracle://u:" + pw + "@h/db", "postgres://u:" + pw + "@/db", "mysql://u:" + pw + "@h", "mysql://u:" + pw + "@h/a/b",
		"mysql://u:" + pw + "@h/db?readTimeout=forever", "sqlite:", "sqlite::memory:", "postgres://u:" + pw + "@h:port/db", "mysql:opaque" + pw}
	for _, u := range bad {
		_, err := parseDatabaseURL(u)
		var ue *URLError
		if !errors.As(err, &ue) || !errors.Is(err, ErrUsage) {
			t.Errorf("parse(%q) error = %v, want a *URLError", strings.ReplaceAll(u, pw, "***"), err)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error %q shows the password", err)
		}
	}
}

// TestRelaySession checks the server-side bounds the relay adds to its own
// sessions, and that a URL's own setting wins.
func TestRelaySession(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"postgres://app@db/app?sslmode=disable", "postgres://app@db/app?lock_timeout=7500&sslmode=disable&statement_timeout=60000"},
		{"postgres://app@db/app?statement_timeout=5000", "postgres://app@db/app?lock_timeout=7500&statement_timeout=5000"},
		{"mysql://root@127.0.0.1/test", "root@tcp(127.0.0.1:3306)/test?innodb_lock_wait_timeout=7"},
		{"mysql://root@127.0.0.1/test?innodb_lock_wait_timeout=2&tls=false", "root@tcp(127.0.0.1:3306)/test?innodb_lock_wait_timeout=2&tls=false"},
		{"sqlite:/x.db", "file:/x.db?" + sqliteDefaults},
	} {
		d, err := parseDatabaseURL(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if got := d.relaySession(15 * time.Second).dsn; got != tc.want {
			t.Errorf("%s: relay session DSN %q, want %q", tc.url, got, tc.want)
		}
	}
}

func TestParseFlagsEnvironment(t *testing.T) {
	env := map[string]string{"OUTBOX_BATCH_SIZE": "77", "OUTBOX_KAFKA_BROKERS": "env:9092"}
	getenv := func(k string) string { return env[k] }
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	batch := fs.Int("batch-size", 1, "")
	brokers := fs.String("kafka-brokers", "", "")
	if err := parseFlags(fs, []string{"--kafka-brokers", "flag:9092"}, getenv); err != nil {
		t.Fatal(err)
	}
	if *batch != 77 || *brokers != "flag:9092" {
		t.Fatalf("batch=%d brokers=%q: want the env for batch-size and the flag for kafka-brokers", *batch, *brokers)
	}
	env["OUTBOX_BATCH_SIZE"] = "lots"
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Int("batch-size", 1, "")
	err := parseFlags(fs, nil, getenv)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "OUTBOX_BATCH_SIZE") {
		t.Fatalf("bad env value: %v; want a usage error naming OUTBOX_BATCH_SIZE", err)
	}
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	if err := parseFlags(fs, []string{"stray"}, getenv); !errors.Is(err, ErrUsage) {
		t.Fatalf("stray argument: %v", err)
	}
}

func TestSecretFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if s, err := secret(getenv, "OUTBOX_X", f); err != nil || s != "hunter2" {
		t.Fatalf("secret from file = %q, %v", s, err)
	}
	env["OUTBOX_X"] = "fromenv"
	if s, _ := secret(getenv, "OUTBOX_X", f); s != "hunter2" {
		t.Fatalf("the --*-file flag must win over the variable, got %q", s)
	}
	if s, _ := secret(getenv, "OUTBOX_X", ""); s != "fromenv" {
		t.Fatalf("without the flag the variable is used, got %q", s)
	}
	delete(env, "OUTBOX_X")
	env["OUTBOX_X_FILE"] = f
	if s, _ := secret(getenv, "OUTBOX_X", ""); s != "hunter2" {
		t.Fatalf("OUTBOX_X_FILE: got %q", s)
	}
	if _, err := secret(getenv, "OUTBOX_X", filepath.Join(t.TempDir(), "missing")); !errors.Is(err, ErrUsage) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestHelpAndUsageErrors(t *testing.T) {
	noenv := func(string) string { return "" }
	for _, cmd := range []string{"run", "migrate"} {
		var out, errOut bytes.Buffer
		if code := realMain([]string{cmd, "--help"}, &out, &errOut, noenv); code != 0 {
			t.Errorf("relay %s --help exited %d", cmd, code)
		}
		if !strings.Contains(out.String(), "Examples:") || !strings.Contains(out.String(), "env OUTBOX_") || errOut.Len() != 0 {
			t.Errorf("relay %s --help: stdout lacks examples or env vars, or stderr is not empty:\n%s\nstderr: %s", cmd, out.String(), errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := realMain(nil, &out, &errOut, noenv); code != 2 {
		t.Errorf("no command exited %d, want 2", code)
	}
	if code := realMain([]string{"frobnicate"}, &out, &errOut, noenv); code != 2 {
		t.Errorf("unknown command exited %d, want 2", code)
	}
	env := map[string]string{"OUTBOX_DATABASE_URL": "postgres://u:topsecret@127.0.0.1:1/db", "OUTBOX_KAFKA_BROKERS": "127.0.0.1:1"}
	cases := map[string][]string{
		"no brokers":        {"run", "--kafka-brokers", ""},
		"bad compression":   {"run", "--kafka-compression", "brotli"},
		"bad partitioner":   {"run", "--kafka-partitioner", "random"},
		"bad sasl":          {"run", "--kafka-sasl-mechanism", "GSSAPI"},
		"tls opts, no tls":  {"run", "--kafka-tls-ca-file", "/x"},
		"bad log format":    {"run", "--log-format", "xml"},
		"bad shards":        {"run", "--shards", "-3"},
		"bad batch":         {"run", "--batch-size", "-5"},
		"lease too short":   {"run", "--lease-duration", "1ms"},
		"one connection":    {"run", "--db-max-conns", "1"},
		"demo moved out":    {"demo", "-n", "10"},
		"migrate bad flags": {"migrate", "--nope"},
	}
	for name, args := range cases {
		errOut.Reset()
		getenv := func(k string) string {
			if name == "no brokers" && k == "OUTBOX_KAFKA_BROKERS" {
				return ""
			}
			return env[k]
		}
		if code := realMain(args, &out, &errOut, getenv); code != 2 {
			t.Errorf("%s: exit %d, want 2 (stderr: %s)", name, code, errOut.String())
		}
		if strings.Contains(errOut.String(), "topsecret") {
			t.Errorf("%s: stderr shows the database password: %s", name, errOut.String())
		}
	}
}

// TestInFlagTerms: the publisher's and the relay's configuration errors
// name flags, and still match their sentinels.
func TestInFlagTerms(t *testing.T) {
	_, err := (&runOptions{brokers: "k:9092", saslMech: "PLAIN"}).kafkaConfig(func(string) string { return "" })
	if err == nil || err.Error() != "usage: --kafka-sasl-user is required with --kafka-sasl-mechanism PLAIN" ||
		!errors.Is(err, ErrUsage) || !errors.Is(err, kafka.ErrInvalidConfig) {
		t.Errorf("kafka: %v", err)
	}
	_, err = (&runOptions{retryBackoff: 10 * time.Second, retryBackoffMax: time.Second}).relayConfig(outbox.RelayConfig{Dialect: dialect.SQLite()})
	if err == nil || err.Error() != "usage: --retry-backoff-max (1s) cannot be shorter than --retry-backoff (10s)" ||
		!errors.Is(err, outbox.ErrInvalidConfig) {
		t.Errorf("relay: %v", err)
	}
}
