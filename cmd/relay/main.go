// Command relay publishes committed outbox messages to Kafka, applies the
// outbox migrations, and shows and repairs the outbox's state.
//
//	relay run       the daemon (run one or many, next to the database)
//	relay migrate   create or upgrade the outbox tables
//	relay stats     the state of the outbox: pending, retries, dead letters, shards, relays
//	relay dlq       list, show, replay and purge dead letters
//	relay prune     delete old dead letters
//	relay version   the version, commit and Go version of the binary
//
// Configuration comes from flags and OUTBOX_* environment variables (a flag
// beats its variable); secrets (the database URL, the SASL password) only
// from the environment or from files. Run "relay <command> --help" for the
// flags of a command.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/outboxrelay/outbox/internal/cli"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

const usage = `relay publishes committed outbox messages to Kafka.

Usage:
  relay <command> [flags]

Commands:
  run       publish outbox messages to Kafka until SIGTERM/SIGINT
  migrate   create or upgrade the outbox tables
  stats     show pending messages, retries, dead letters, shards and relays
  dlq       list, show, replay or purge dead letters (relay dlq --help)
  prune     delete dead letters older than an age
  version   print the version, commit and Go version

Examples:
  OUTBOX_DATABASE_URL=postgres://app@db:5432/app relay migrate
  OUTBOX_DATABASE_URL=postgres://app@db:5432/app OUTBOX_KAFKA_BROKERS=kafka:9092 relay run
  OUTBOX_DATABASE_URL=postgres://app@db:5432/app relay stats
  OUTBOX_DATABASE_URL=postgres://app@db:5432/app relay dlq list --since 24h

Run "relay <command> --help" for the flags of a command. The end-to-end demo
(SQLite and an in-process Kafka broker, nothing to install) is a command of its
own: go run ./cmd/outbox-demo
`

// realMain runs the command line args and returns the exit status: 0 on
// success (including a stop by signal), 1 on failure, 2 on a usage error.
func realMain(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr, getenv)
	case "migrate":
		err = cmdMigrate(args[1:], stdout, stderr, getenv)
	case "demo":
		// relay demo was a command before the demo moved out of relay's binary.
		fmt.Fprintln(stderr, "relay: the demo is a command of its own: go run ./cmd/outbox-demo (from a checkout)")
		return 2
	case "stats":
		err = cmdStats(args[1:], stdout, stderr, getenv)
	case "dlq":
		err = cmdDLQ(args[1:], stdout, stderr, getenv)
	case "prune":
		err = cmdPrune(args[1:], stdout, stderr, getenv)
	case "version", "--version", "-version":
		err = cmdVersion(stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "relay: unknown command %q%s; see relay --help\n", args[0], didYouMean(args[0], commands))
		return 2
	}
	return cli.Exit(stderr, "relay", args[0], err, ErrUsage)
}

// commands are relay's commands, for "did you mean".
var commands = []string{"run", "migrate", "stats", "dlq", "prune", "version"}

// didYouMean is ` (did you mean "x"?)` for the candidate closest to s, or "".
func didYouMean(s string, candidates []string) string {
	if c := cli.Closest(strings.TrimLeft(s, "-"), candidates); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

// newFlagSet returns a flag set whose --help prints about, examples, and
// every flag with its environment variable and default.
func newFlagSet(name, about, examples string, out io.Writer) *flag.FlagSet {
	return cli.FlagSet(cli.Usage{Program: "relay", Command: name, About: about, Examples: examples,
		FlagsHeading: "Flags (each also read from its environment variable; a flag wins):", Env: envName}, out)
}

// signalContext returns a context cancelled by the first SIGTERM or SIGINT;
// a second signal exits the process at once with status 1.
func signalContext(onFirst func(os.Signal)) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		onFirst(s)
		cancel()
		if _, ok := <-sigs; ok {
			fmt.Fprintln(os.Stderr, "relay: second signal: exiting now")
			os.Exit(1)
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(sigs)
		cancel()
	}
}
