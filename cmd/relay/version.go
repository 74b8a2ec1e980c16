package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit, when set at link time (-ldflags "-X main.version=v1.2.3
// -X main.commit=abc123", as a release build does), win over what the
// build info says.
var version, commit string

// cmdVersion prints one line: the module version, the commit, the Go
// version and the platform.
func cmdVersion(stdout io.Writer) error {
	info, _ := debug.ReadBuildInfo()
	_, err := fmt.Fprintln(stdout, versionLine(info, version, commit))
	return err
}

// versionLine is "relay v1.2.3 (commit 0123456789ab, modified) go1.25.0
// linux/amd64". The version is the module's (go install …@v1.2.3), else
// "(devel)"; the commit is the VCS revision go build records in a
// checkout, else the one in a pseudo-version, else "unknown".
func versionLine(info *debug.BuildInfo, ver, rev string) string {
	goVersion, modified := runtime.Version(), false
	if info != nil {
		goVersion = info.GoVersion
		if ver == "" {
			ver = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && rev == "":
				rev = s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				modified = true
			}
		}
	}
	if ver == "" {
		ver = "(devel)"
	}
	if rev == "" {
		rev = pseudoCommit(ver)
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	c := "commit " + rev
	if modified {
		c += ", modified"
	}
	return fmt.Sprintf("relay %s (%s) %s %s/%s", ver, c, goVersion, runtime.GOOS, runtime.GOARCH)
}

// pseudoCommit is the commit of a pseudo-version such as
// v0.0.0-20261201120000-0123456789ab, or "unknown".
func pseudoCommit(v string) string {
	if n := len(v); n > 13 && v[n-13] == '-' {
		h := v[n-12:]
		for _, r := range h {
			if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
				return "unknown"
			}
		}
		return h
	}
	return "unknown"
}
