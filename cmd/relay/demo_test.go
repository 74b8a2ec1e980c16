package main

import (
	"bytes"
	"regexp"
	"testing"
)

// The demo is the first thing a newcomer runs: it must pass on its own.
func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	code := realMain([]string{"demo", "-n", "3000", "-writers", "4", "-keys", "40", "-relays", "2"}, &out, &errOut, func(string) string { return "" })
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
	}
	re := regexp.MustCompile(`^demo: committed=(\d+) published=(\d+) lost=0 rolled_back_published=0 order_violations=0 duplicates=\d+ rate=\d+ msg/s\n$`)
	m := re.FindStringSubmatch(out.String())
	if m == nil || m[1] != m[2] || m[1] == "0" {
		t.Fatalf("summary line %q does not match %s with committed == published > 0", out.String(), re)
	}
}
