package cli

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseErrors(t *testing.T) {
	newFS := func() *flag.FlagSet {
		fs := FlagSet(Usage{Program: "p", Command: "c"}, io.Discard)
		fs.Duration("poll-interval", time.Second, "")
		fs.Bool("tls", false, "")
		fs.Int("shards", 64, "")
		fs.Int("zero", 0, "")
		Range(fs, "shards", 1, 10, "")
		fs.String("mode", "a", "")
		OneOf(fs, "mode", []string{"a", "b", "c"}, "")
		return fs
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--poll-interval", "250"}, "--poll-interval=250: a duration such as 250ms or 2s"},
		{[]string{"--tls=yes"}, "--tls=yes: true or false"},
		{[]string{"--zero", "x"}, "--zero=x: a whole number such as 10"},
		{[]string{"--shards", "11"}, "--shards=11: a whole number from 1 to 10"},
		{[]string{"--shards", "x"}, "--shards=x: a whole number from 1 to 10"},
		{[]string{"--shard", "3"}, "--shard is not a flag (did you mean --shards?); see p c --help"},
		{[]string{"-tsl"}, "--tsl is not a flag (did you mean --tls?); see p c --help"},
		{[]string{"--shards"}, "--shards needs a value; see p c --help"},
		{[]string{"--mode", "d"}, "--mode=d: one of a, b or c"},
	} {
		err := Parse(newFS(), tc.args, "p c --help")
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q) = %v; want %q", tc.args, err, tc.want)
		}
		var ve *ValueError
		var fe *FlagError
		if !errors.As(err, &ve) && !errors.As(err, &fe) {
			t.Errorf("Parse(%q) = %T, want a *ValueError or *FlagError", tc.args, err)
		}
	}
	fs := newFS()
	if err := SetFromEnv(fs, "poll-interval", "X_POLL", "250"); err == nil || err.Error() != "X_POLL=250: a duration such as 250ms or 2s" {
		t.Errorf("SetFromEnv = %v", err)
	}
	if err := Parse(fs, []string{"--tls", "--shards=3"}, ""); err != nil {
		t.Errorf("good flags refused: %v", err)
	}
	if fs.Lookup("shards").Value.String() != "3" || fs.Lookup("tls").Value.String() != "true" {
		t.Errorf("values not set: %s %s", fs.Lookup("shards").Value, fs.Lookup("tls").Value)
	}
}

func TestParseHelp(t *testing.T) {
	var out strings.Builder
	fs := FlagSet(Usage{Program: "p", Command: "c", About: "About."}, &out)
	fs.Int("n", 1, "count")
	if err := Parse(fs, []string{"--help"}, ""); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	if !strings.Contains(out.String(), "Usage: p c [flags]") || !strings.Contains(out.String(), "--n") {
		t.Errorf("help:\n%s", out.String())
	}
	out.Reset()
	_ = Parse(fs, []string{"--bogus"}, "")
	if out.Len() != 0 {
		t.Errorf("an error printed the help:\n%s", out.String())
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"shard", "shards", 1}, {"kitten", "sitting", 3}, {"tsl", "tls", 1}, {"ab", "ba", 1}, {"abc", "", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}
