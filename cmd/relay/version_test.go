package main

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestVersionLine(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name     string
		info     *debug.BuildInfo
		ver, rev string
		want     string
	}{
		{"go install @version", &debug.BuildInfo{GoVersion: "go1.25.1", Main: debug.Module{Version: "v1.2.3"}}, "", "",
			"relay v1.2.3 (commit unknown) go1.25.1 " + platform},
		{"pseudo-version", &debug.BuildInfo{GoVersion: "go1.25.1", Main: debug.Module{Version: "v0.0.0-20261201120000-0123456789ab"}}, "", "",
			"relay v0.0.0-20261201120000-0123456789ab (commit 0123456789ab) go1.25.1 " + platform},
		{"checkout", &debug.BuildInfo{GoVersion: "go1.25.1", Main: debug.Module{Version: "(devel)"}, Settings: vcs("0123456789abcdef0123", "true")}, "", "",
			"relay (devel) (commit 0123456789ab, modified) go1.25.1 " + platform},
		{"ldflags win", &debug.BuildInfo{GoVersion: "go1.25.1", Main: debug.Module{Version: "(devel)"}, Settings: vcs("ffff", "false")}, "v2.0.0", "abcdef",
			"relay v2.0.0 (commit abcdef) go1.25.1 " + platform},
		{"no build info", nil, "", "", "relay (devel) (commit unknown) " + runtime.Version() + " " + platform},
	} {
		if got := versionLine(tc.info, tc.ver, tc.rev); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestE2EVersion runs relay version (and --version) on the built binary.
func TestE2EVersion(t *testing.T) {
	re := regexp.MustCompile(fmt.Sprintf(`^relay \S+ \(commit (?:[0-9a-f]+|unknown)(?:, modified)?\) %s %s/%s\n$`,
		regexp.QuoteMeta(runtime.Version()), runtime.GOOS, runtime.GOARCH))
	for _, arg := range []string{"version", "--version"} {
		p := runRelay(t, arg, nil, 10*time.Second, arg)
		if p.ExitCode() != 0 || !re.MatchString(p.stdout.String()) || p.stderr.String() != "" {
			t.Errorf("relay %s: exit %d, stdout %q (want %s), stderr %q", arg, p.ExitCode(), p.stdout.String(), re, p.stderr.String())
		}
		if strings.Count(p.stdout.String(), "\n") != 1 {
			t.Errorf("relay %s: want one line", arg)
		}
	}
}
