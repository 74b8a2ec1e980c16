package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The demo is the first thing a newcomer runs: it must pass on its own.
func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	code := realMain(t.Context(), []string{"-n", "3000", "-writers", "4", "-keys", "40", "-relays", "2"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
	}
	m := summaryLine.FindStringSubmatch(out.String())
	if m == nil || m[1] != m[2] || m[1] == "0" {
		t.Fatalf("summary line %q does not match %s with committed == published > 0", out.String(), summaryLine)
	}
}

// summaryLine is the demo's line on stdout when it passes.
var summaryLine = regexp.MustCompile(`^demo: committed=(\d+) published=(\d+) lost=0 rolled_back_published=0 order_violations=0 duplicates=\d+ rate=\d+ msg/s\n$`)

// TestDemoFlags: --help on stdout with examples and status 0; bad flags
// exit 2 with one line that says what was expected.
func TestDemoFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := realMain(context.Background(), []string{"--help"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "Usage: outbox-demo [flags]") || !strings.Contains(out.String(), "go run ./cmd/outbox-demo -n 100000") || errOut.Len() != 0 {
		t.Errorf("--help: exit %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "0"}, "outbox-demo: need -n >= 1, -writers >= 1, -keys >= -writers, -relays >= 1, -partitions >= 1, 0 <= -rollback-percent <= 90\n"},
		{[]string{"-n", "many"}, "outbox-demo: --n=many: a whole number such as 20000\n"},
		{[]string{"--relay", "3"}, "outbox-demo: --relay is not a flag (did you mean --relays?); see go run ./cmd/outbox-demo --help\n"},
		{[]string{"--log-level", "loud"}, "outbox-demo: --log-level=loud: one of debug, info, warn or error\n"},
		{[]string{"extra"}, "outbox-demo: unexpected argument \"extra\"; see go run ./cmd/outbox-demo --help\n"},
	} {
		out.Reset()
		errOut.Reset()
		if code := realMain(context.Background(), tc.args, &out, &errOut); code != 2 || errOut.String() != tc.want {
			t.Errorf("%q: exit %d, stderr %q; want 2, %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}

// TestREADMEDemo: the README's first command is this demo, and the summary
// line it shows is one TestDemo accepts.
func TestREADMEDemo(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "## Two commands\n\n```sh\n")
	if !ok || !strings.HasPrefix(after, "go run ./cmd/outbox-demo ") {
		t.Errorf("README.md's Two commands do not start with go run ./cmd/outbox-demo")
	}
	line := regexp.MustCompile(`(?m)^demo: committed=.*$`).FindString(string(readme))
	if !summaryLine.MatchString(line + "\n") {
		t.Errorf("README.md's summary line %q does not match %s", line, summaryLine)
	}
}
