package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// ---------------------------------------------------------------------------
// Results

// revision returns the VCS revision the binary was built from, from its
// build information, or else (go run with -buildvcs=false, go test) from
// git in the working directory; "" when neither knows.
var revision = sync.OnceValues(func() (string, bool) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			return rev, dirty
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	// Modified tracked files only: untracked ones are not part of the build
	// of the packages measured, as a rule.
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), err == nil && len(bytes.TrimSpace(st)) > 0
})

// header is the start of every scenario's JSON line.
type header struct {
	Scenario   string `json:"scenario"`
	Dialect    string `json:"dialect"`
	Database   string `json:"database"` // password masked
	Namespace  string `json:"namespace"`
	Broker     string `json:"broker,omitempty"` // "kfake" or the --brokers list
	Topic      string `json:"topic,omitempty"`
	Partitions int    `json:"partitions,omitempty"`
	Observe    string `json:"observe,omitempty"` // --observe: metrics, or all (metrics and tracing)
	Go         string `json:"go"`
	CPUs       int    `json:"cpus"`
	Time       string `json:"time"`
	// Revision is the commit of the code measured ("" when unknown), and
	// Dirty whether it had uncommitted changes.
	Revision string `json:"revision"`
	Dirty    bool   `json:"revision_dirty"`
}

// verdict is the end of every scenario's JSON line: whether its own checks
// passed, and what failed.
type verdict struct {
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"`
}

// checks collects failed checks.
type checks struct{ problems []string }

// failf records a failed check.
func (c *checks) failf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// verdict returns the verdict of the checks so far.
func (c *checks) verdict() verdict {
	return verdict{OK: len(c.problems) == 0, Problems: append([]string{}, c.problems...)}
}

// err returns an error wrapping errCheck if a check failed.
func (c *checks) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", errCheck, strings.Join(c.problems, "; "))
}

// emit writes v as one JSON line to w.
func emit(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep DSNs' & readable
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes()) // one line, one write
	return err
}

// round rounds x to the given number of decimals (NaN and Inf become 0, so
// that the line stays valid JSON).
func round(x float64, decimals int) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

// rate returns n per second over d, rounded.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return round(float64(n)/d.Seconds(), 1)
}

// ratio returns a/b rounded, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round(a/b, 3)
}

// secs returns d in seconds, rounded to milliseconds.
func secs(d time.Duration) float64 { return round(d.Seconds(), 3) }

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, or 0 when it is empty.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// mean returns the mean of xs, or 0.
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
