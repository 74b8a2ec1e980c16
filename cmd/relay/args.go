package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseFlagsArgs is parseFlags for commands that take arguments (dead-letter
// ids) among their flags: "dlq show 42 --base64" as well as
// "dlq show --base64 42". It returns the arguments.
func parseFlagsArgs(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return pos, parseFlags(fs, []string{}, getenv)
}

// ageExamples ends every error about an age or a time.
const ageExamples = `(examples: 90m, 36h, 30d, 2w)`

// parseAge parses a positive age: a Go duration (90m, 36h) or a number of
// days (30d) or weeks (2w).
func parseAge(flagName, s string) (time.Duration, error) {
	var d time.Duration
	var err error
	switch {
	case strings.HasSuffix(s, "d"), strings.HasSuffix(s, "w"):
		unit := 24 * time.Hour
		if strings.HasSuffix(s, "w") {
			unit *= 7
		}
		var n float64
		n, err = strconv.ParseFloat(s[:len(s)-1], 64)
		if n > 100_000 || n != n {
			err = fmt.Errorf("too long")
		}
		d = time.Duration(n * float64(unit))
	default:
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: --%s %q is not a positive age %s", ErrUsage, flagName, s, ageExamples)
	}
	return d, nil
}

// timeLayouts are the forms --since and --before take, besides an age.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

// parseWhen parses --since and --before: a time (RFC 3339, or a date and
// time in UTC) or an age, meaning that long before now. "" is no bound.
func parseWhen(flagName, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	if d, err := parseAge(flagName, s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%w: --%s %q is neither a time nor an age (examples: 2026-12-01, 2026-12-01T08:00:00Z, 24h, 7d)", ErrUsage, flagName, s)
}

// parseIDs parses dead-letter ids.
func parseIDs(args []string) ([]int64, error) {
	var ids []int64
	for _, a := range args {
		for _, p := range splitList(a) {
			id, err := strconv.ParseInt(p, 10, 64)
			if err != nil || id <= 0 {
				return nil, fmt.Errorf("%w: %q is not a dead-letter id (a positive integer, as dlq list shows)", ErrUsage, p)
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// ageFlag is a flag holding an age, in parseAge's forms (30d as well as
// 720h).
type ageFlag struct {
	name string
	text string
	d    time.Duration
}

func (f *ageFlag) String() string { return f.text }

// Set parses s with parseAge.
func (f *ageFlag) Set(s string) error {
	d, err := parseAge(f.name, s)
	if err != nil {
		return err
	}
	f.text, f.d = s, d
	return nil
}
