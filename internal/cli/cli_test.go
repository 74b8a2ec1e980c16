package cli_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/outboxrelay/outbox/internal/cli"
)

var errUsage = errors.New("usage")

func TestExit(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
		out  string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{fmt.Errorf("%w: --n must be positive", errUsage), 2, "prog cmd: --n must be positive\n"},
		{errors.New("database down"), 1, "prog cmd: database down\n"},
	} {
		var b strings.Builder
		if got := cli.Exit(&b, "prog", "cmd", tc.err, errUsage); got != tc.want || b.String() != tc.out {
			t.Errorf("Exit(%v) = %d, %q; want %d, %q", tc.err, got, b.String(), tc.want, tc.out)
		}
		b.Reset()
		want := strings.ReplaceAll(tc.out, "prog cmd:", "prog:")
		if got := cli.Exit(&b, "prog", "", tc.err, errUsage); got != tc.want || b.String() != want {
			t.Errorf("Exit(%v) without a command = %d, %q; want %d, %q", tc.err, got, b.String(), tc.want, want)
		}
	}
}

func TestFlagSetHelp(t *testing.T) {
	var b strings.Builder
	fs := cli.FlagSet(cli.Usage{Program: "prog", Command: "cmd", About: "Does things.", FlagsHeading: "Flags:",
		Env: func(f string) string { return "PROG_" + strings.ToUpper(f) }, ShortDash: true}, &b)
	fs.Int("n", 3, "how many")
	fs.String("name", "", "who")
	if err := fs.Parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(--help) = %v", err)
	}
	want := "Usage: prog cmd [flags]\n\nDoes things.\n\nFlags:\n  -n\n      how many (default 3)\n      env PROG_N\n  --name\n      who\n      env PROG_NAME\n"
	if b.String() != want {
		t.Errorf("help:\n%s\nwant:\n%s", b.String(), want)
	}
}

func Example() {
	fs := cli.FlagSet(cli.Usage{Program: "prog", Command: "run", About: "Runs.", Examples: "  prog run --n 2", FlagsHeading: "Flags:"}, os.Stdout)
	fs.Int("n", 1, "how many")
	err := fs.Parse([]string{"--help"})
	fmt.Println("exit status", cli.Exit(os.Stdout, "prog", "run", err, errUsage))
	// Output:
	// Usage: prog run [flags]
	//
	// Runs.
	//
	// Examples:
	//   prog run --n 2
	//
	// Flags:
	//   --n
	//       how many (default 1)
	// exit status 0
}
