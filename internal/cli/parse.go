package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// ValueError is a setting whose value is not what its flag expects. Source
// is how the user gave it ("--poll-interval" or "OUTBOX_POLL_INTERVAL"), so
// the message names what they typed, in the same words for both.
type ValueError struct {
	Source   string // "--shards" or "OUTBOX_SHARDS"
	Value    string
	Expected string // "a duration such as 250ms or 2s"
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("%s=%s: %s", e.Source, e.Value, e.Expected)
}

// FlagError is a command line the flag set cannot parse: an unknown flag
// (with a suggestion when one is close) or a flag without its value.
type FlagError struct {
	Flag       string // "--shard"
	Problem    string // "is not a flag" or "needs a value"
	Suggestion string // "--shards", or ""
	Help       string // "relay run --help"
}

func (e *FlagError) Error() string {
	s := e.Flag + " " + e.Problem
	if e.Suggestion != "" {
		s += " (did you mean " + e.Suggestion + "?)"
	}
	return s + "; see " + e.Help
}

// checked wraps a flag's value: a failed Set says what was expected, and a
// number outside its range is refused.
type checked struct {
	flag.Value
	expected string
	check    func(flag.Value) bool // nil: any value the flag parses

	// During Parse, a failed Set is recorded here with the flag's name:
	// the flag package's own message does not keep the error.
	name   string
	failed **ValueError
}

// boolChecked is checked for a bool flag, which must keep IsBoolFlag so
// "--kafka-tls" needs no value.
type boolChecked struct{ checked }

func (boolChecked) IsBoolFlag() bool { return true }

// Set parses s; on failure the error is the expected form only, so the
// caller can say where the value came from.
func (c *checked) Set(s string) error {
	err := c.set(s)
	if err != nil && c.failed != nil {
		*c.failed = &ValueError{Source: "--" + c.name, Value: s, Expected: err.Error()}
	}
	return err
}

func (c *checked) set(s string) error {
	if err := c.Value.Set(s); err != nil {
		if c.expected == "" {
			return err // a flag type with its own message (an age, ...)
		}
		return errors.New(c.expected)
	}
	if c.check != nil && !c.check(c.Value) {
		return errors.New(c.expected)
	}
	return nil
}

// checkedOf returns the checked value of a wrapped flag.
func checkedOf(f *flag.Flag) *checked {
	switch c := f.Value.(type) {
	case *checked:
		return c
	case *boolChecked:
		return &c.checked
	}
	return nil
}

// expectedOf describes the values a flag takes, from its type.
func expectedOf(f *flag.Flag) (string, bool) {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "", false
	}
	switch g.Get().(type) {
	case time.Duration:
		return "a duration such as 250ms or 2s", true
	case bool:
		return "true or false", true
	case int, int64, uint, uint64:
		ex := f.DefValue
		if ex == "0" || ex == "" {
			ex = "10"
		}
		return "a whole number such as " + ex, true
	case float64:
		return "a number such as 0.5", true
	}
	return "", false
}

// wrap replaces every flag's value by a checked one, once.
func wrap(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Value.(type) {
		case *checked, *boolChecked:
			return
		}
		exp, _ := expectedOf(f)
		c := checked{Value: f.Value, expected: exp}
		if exp == "true or false" {
			f.Value = &boolChecked{c}
		} else {
			f.Value = &c
		}
	})
}

// Range limits the integer flag name of fs to [lo, hi]; what it says when a
// value is outside ends with note, if any ("0 means ..."). Flags left at
// their default are not checked: a default of 0 may mean "automatic".
func Range(fs *flag.FlagSet, name string, lo, hi int64, note string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("cli.Range: no flag " + name) // a programming error, not user input
	}
	exp := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	if hi == 1<<63-1 {
		exp = fmt.Sprintf("a whole number of at least %d", lo)
	}
	if note != "" {
		exp += " (" + note + ")"
	}
	c := &checked{Value: unwrap(f.Value), expected: exp, check: func(v flag.Value) bool {
		n, ok := asInt(v.(flag.Getter).Get())
		return ok && n >= lo && n <= hi
	}}
	f.Value = c
	if _, ok := c.Value.(interface{ IsBoolFlag() bool }); ok {
		f.Value = &boolChecked{*c}
	}
}

// DurationAtLeast limits the duration flag name of fs to lo or more, like
// Range.
func DurationAtLeast(fs *flag.FlagSet, name string, lo time.Duration, note string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("cli.DurationAtLeast: no flag " + name) // a programming error, not user input
	}
	exp := "a positive duration such as 250ms or 2s"
	if lo > time.Millisecond {
		exp = fmt.Sprintf("a duration of at least %s, such as 15s or 1m30s", lo)
	} else if lo == 0 {
		exp = "a duration such as 250ms or 2s, or 0"
	}
	if note != "" {
		exp += " (" + note + ")"
	}
	f.Value = &checked{Value: unwrap(f.Value), expected: exp, check: func(v flag.Value) bool {
		d, ok := v.(flag.Getter).Get().(time.Duration)
		return ok && d >= lo
	}}
}

// DurationOffOrAtLeast limits the duration flag name of fs to 0 (off, as
// note says) or at least lo.
func DurationOffOrAtLeast(fs *flag.FlagSet, name string, lo time.Duration, note string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("cli.DurationOffOrAtLeast: no flag " + name) // a programming error, not user input
	}
	exp := fmt.Sprintf("0, or a duration of at least %s such as 1h", lo)
	if note != "" {
		exp += " (" + note + ")"
	}
	f.Value = &checked{Value: unwrap(f.Value), expected: exp, check: func(v flag.Value) bool {
		d, ok := v.(flag.Getter).Get().(time.Duration)
		return ok && (d == 0 || d >= lo)
	}}
}

// OneOf limits the string flag name of fs to choices; what it says when a
// value is not one of them lists them, and ends with note, if any.
func OneOf(fs *flag.FlagSet, name string, choices []string, note string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("cli.OneOf: no flag " + name) // a programming error, not user input
	}
	var quoted []string
	for _, c := range choices {
		if c != "" {
			quoted = append(quoted, c)
		}
	}
	exp := "one of " + strings.Join(quoted, ", ")
	if len(quoted) == 2 {
		exp = quoted[0] + " or " + quoted[1]
	} else if len(quoted) > 2 {
		exp = "one of " + strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
	}
	if note != "" {
		exp += " (" + note + ")"
	}
	f.Value = &checked{Value: unwrap(f.Value), expected: exp, check: func(v flag.Value) bool {
		return slices.Contains(choices, v.String())
	}}
}

func unwrap(v flag.Value) flag.Value {
	switch c := v.(type) {
	case *checked:
		return c.Value
	case *boolChecked:
		return c.Value
	}
	return v
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case uint:
		return int64(n), true
	case uint64:
		return int64(n), true
	}
	return 0, false
}

// Parse parses args like fs.Parse, with errors a user can act on: a bad
// value is a *ValueError naming the flag as typed with what was expected,
// an unknown flag a *FlagError with the closest flag and where the help
// is. fs should come from FlagSet, whose --help then prints to the
// writer it was given (and Parse returns flag.ErrHelp).
func Parse(fs *flag.FlagSet, args []string, help string) error {
	wrap(fs)
	usage := fs.Usage
	fs.Usage = func() {}
	out := fs.Output()
	fs.SetOutput(io.Discard)
	var failed *ValueError
	fs.VisitAll(func(f *flag.Flag) { c := checkedOf(f); c.name, c.failed = f.Name, &failed })
	err := fs.Parse(args)
	fs.VisitAll(func(f *flag.Flag) { checkedOf(f).failed = nil })
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case failed != nil:
		return failed
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		return &FlagError{Flag: "--" + name, Problem: "is not a flag", Suggestion: suggest(fs, name), Help: help}
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		name = strings.TrimLeft(name, "-")
		return &FlagError{Flag: "--" + name, Problem: "needs a value", Help: help}
	}
	return fmt.Errorf("%s; see %s", msg, help)
}

// SetFromEnv sets flag name of fs to value, taken from the environment
// variable env; a bad value is a *ValueError naming env.
func SetFromEnv(fs *flag.FlagSet, name, env, value string) error {
	wrap(fs)
	if err := fs.Set(name, value); err != nil {
		return &ValueError{Source: env, Value: value, Expected: err.Error()}
	}
	return nil
}
