package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseAge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"30d", 30 * 24 * time.Hour}, {"2w", 14 * 24 * time.Hour}, {"1.5d", 36 * time.Hour}, {"90m", 90 * time.Minute},
		{"30", 0}, {"30x", 0}, {"-3d", 0}, {"0d", 0}, {"0s", 0}, {"d", 0}, {"NaNd", 0}, {"1e9w", 0}, {"", 0},
	} {
		got, err := parseAge("older-than", tc.in)
		if tc.want == 0 {
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "examples: 90m, 36h, 30d, 2w") {
				t.Errorf("parseAge(%q) = %v, %v; want a usage error with examples", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: ""},
		{in: "2026-12-01", want: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2026-12-01T08:30", want: time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC)},
		{in: "2026-12-01T08:30:00+01:00", want: time.Date(2026, 12, 1, 7, 30, 0, 0, time.UTC)},
		{in: "24h", want: now.Add(-24 * time.Hour)},
		{in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "yesterday", bad: true},
		{in: "2026-13-01", bad: true},
	} {
		got, err := parseWhen("since", tc.in, now)
		if tc.bad {
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "examples:") {
				t.Errorf("parseWhen(%q) = %v, %v; want a usage error with examples", tc.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseIDs(t *testing.T) {
	got, err := parseIDs([]string{"3", "1,2", " 7 "})
	if err != nil || !slices.Equal(got, []int64{3, 1, 2, 7}) {
		t.Errorf("parseIDs = %v, %v", got, err)
	}
	for _, bad := range []string{"x", "0", "-1", "1.5"} {
		if _, err := parseIDs([]string{bad}); !errors.Is(err, ErrUsage) {
			t.Errorf("parseIDs(%q): %v, want a usage error", bad, err)
		}
	}
}

func TestParseFlagsArgs(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	yes := fs.Bool("yes", false, "")
	topic := fs.String("topic", "", "")
	rest, err := parseFlagsArgs(fs, []string{"4", "--yes", "5", "--topic", "t", "6"}, func(k string) string {
		if k == "OUTBOX_TOPIC" {
			return "from-env"
		}
		return ""
	})
	if err != nil || !*yes || *topic != "t" || !slices.Equal(rest, []string{"4", "5", "6"}) {
		t.Errorf("parseFlagsArgs = %v, %v (yes %v, topic %q)", rest, err, *yes, *topic)
	}
}

func TestPrintable(t *testing.T) {
	for _, tc := range []struct {
		in         []byte
		null       bool
		form, want string
	}{
		{nil, true, "hex", "(null)"},
		{[]byte{}, false, "hex", `""`},
		{[]byte("héllo\nworld"), false, "hex", "héllo\nworld"},
		{[]byte{0, 1, 0xff}, false, "hex", "(3 bytes, hex) 0001ff"},
		{[]byte{0, 1, 0xff}, false, "base64", "(3 bytes, base64) AAH/"},
		{[]byte("a\x1b[31mred"), false, "hex", "(9 bytes, hex) 611b5b33316d726564"},
	} {
		if got := printable(tc.in, tc.null, tc.form); got != tc.want {
			t.Errorf("printable(%q, %s) = %q, want %q", tc.in, tc.form, got, tc.want)
		}
	}
}
