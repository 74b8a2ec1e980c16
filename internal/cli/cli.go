// Package cli holds what the two commands of this module (relay and
// outbox-bench) share about their command lines: the --help text of a
// subcommand's flags, errors a user can act on (Parse, SetFromEnv, Range),
// and the exit status of its error.
//
// It stays on the standard flag package: the commands are flat (one level
// of subcommands, dispatched by a switch), every flag is also an
// environment variable, and what flag lacked (error wording, suggestions,
// help on stdout, ranges) is a 200-line wrapper; kong, ff or cobra would
// add a dependency and a second way to declare flags for no feature the
// commands need.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Usage is what a subcommand's --help prints.
type Usage struct {
	Program, Command string // "relay", "run"; Command is empty for a program without subcommands
	About, Examples  string // Examples is left out when empty
	FlagsHeading     string // the line above the flags, e.g. "Flags:"
	// Env, when set, names the environment variable of each flag, shown
	// under it.
	Env func(flag string) string
	// ShortDash prints one-letter flags with one dash.
	ShortDash bool
}

// FlagSet returns a flag set that reports errors (ContinueOnError) and
// whose --help prints u and every flag, sorted, with its default, to out.
func FlagSet(u Usage, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(u.Command, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: %s [flags]\n\n%s\n", name(u.Program, u.Command), u.About)
		if u.Examples != "" {
			fmt.Fprintf(out, "\nExamples:\n%s\n", u.Examples)
		}
		fmt.Fprintf(out, "\n%s\n", u.FlagsHeading)
		var flags []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
		sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
		for _, f := range flags {
			def := ""
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			dash := "--"
			if u.ShortDash && len(f.Name) == 1 {
				dash = "-"
			}
			fmt.Fprintf(out, "  %s%s\n      %s%s\n", dash, f.Name, strings.ReplaceAll(f.Usage, "\n", "\n      "), def)
			if u.Env != nil {
				fmt.Fprintf(out, "      env %s\n", u.Env(f.Name))
			}
		}
	}
	return fs
}

// name is "program command", or program when command is empty.
func name(program, command string) string {
	return strings.TrimSpace(program + " " + command)
}

// Exit prints err of program's command to stderr and returns the exit
// status: 0 for no error or --help, 2 for an error wrapping usage (a bad
// command line; a leading "usage: " is left out), 1 for any other. command
// is empty for a program without subcommands.
func Exit(stderr io.Writer, program, command string, err, usage error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, usage):
		// "usage: --x must be ..." reads better without its label: the
		// exit status says it is a usage error.
		fmt.Fprintf(stderr, "%s: %s\n", name(program, command), strings.TrimPrefix(err.Error(), usage.Error()+": "))
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name(program, command), err)
		return 1
	}
}
