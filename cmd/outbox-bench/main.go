// Command outbox-bench is the reproducible benchmark of the outbox library:
// it measures the relay against what the database and the broker can do
// without it, the end-to-end latency, the cost of Enqueue, and the relay's
// memory and idle CPU.
//
//	go run ./cmd/outbox-bench <scenario> [flags]
//
// Scenarios:
//
//	drain     relay throughput on a preloaded outbox, next to a plain
//	          SELECT+DELETE loop on the outbox table (raw_db) and on a slim
//	          table of the same messages (raw_slim), and a bare Sarama
//	          producer (raw_broker)
//	latency   commit-to-consume latency under a steady open-loop load
//	enqueue   Enqueue against a hand-written multi-row INSERT, and the
//	          network round trips of each
//	commit    the application's business transactions a second with
//	          Enqueue, with a plain insert into a table of the outbox's shape,
//	          and with neither, a relay running; then how soon an idle relay
//	          wakes after a commit
//	pressure  the relay's drain rate or latency, over time and overall,
//	          after a churn of messages under a snapshot another session
//	          holds (dead rows vacuum cannot remove)
//	memory    peak RSS of a relay process draining a large outbox
//	idle      CPU of a relay process with nothing to do
//	outage    CPU of a relay while the broker is gone, and its resumption
//
// Every scenario prints exactly one JSON line on stdout (its settings, its
// figures, "go", "cpus", "time", "ok" and any "problems"); progress and
// diagnostics go to stderr. It checks its own result (every record reached
// the broker, no message was lost, ...) and exits 1 when a check fails, 2 on
// bad flags. "outbox-bench <scenario> --help" lists the flags of a scenario.
//
// The database defaults to the test servers of outboxtest/dbtest: PostgreSQL at
// OUTBOX_TEST_POSTGRES_DSN (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable), MySQL/MariaDB at
// OUTBOX_TEST_MYSQL_DSN (default root@tcp(127.0.0.1:3306)/test), SQLite in a
// temporary file; --dsn overrides them. Each run works in a namespace of its
// own, created empty and dropped at the end: the schema outbox_bench
// (PostgreSQL), the database outbox_bench (MySQL), a temporary file (SQLite).
// The broker is an in-process Kafka-protocol broker (kfake over TCP
// loopback) unless --brokers names a real cluster.
//
// The memory and idle scenarios run the relay in a child process: the
// benchmark re-executes itself with the hidden command relay-child and passes
// the database and brokers in OUTBOX_BENCH_* environment variables.
//
// The code: scenario.go is the harness every scenario runs on (flags,
// environment, result line), with flags.go, env.go, database.go and
// report.go; each scenario's file (drain.go, latency.go, enqueue.go,
// commit.go, pressure.go, memory.go, idle.go, outage.go) holds its entry in the table,
// its flags and what it measures; tables.go makes the tables some of them
// compare the outbox table with. verify.go reads a topic back against the loaded outbox;
// rig.go and child.go run relays in this process and in a child.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/outboxrelay/outbox/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// benchmarks are the scenarios, in the order of the usage.
var benchmarks = []*scenario{&drainScenario, &latencyScenario, &enqueueScenario, &commitScenario, &pressureScenario, &memoryScenario, &idleScenario, &outageScenario}

// scenarios maps the command-line names to their commands. relay-child is
// the hidden command the memory and idle scenarios start their relay with;
// the help names print the usage (a nil command).
var scenarios = func() map[string]command {
	m := map[string]command{childCommand: cmdChild, "help": nil, "-h": nil, "-help": nil, "--help": nil}
	for _, s := range benchmarks {
		m[s.name] = s.run
	}
	return m
}()

// usage returns the text of "outbox-bench help".
func usage() string {
	var b strings.Builder
	b.WriteString("outbox-bench measures the outbox library and its relay.\n\nUsage:\n  outbox-bench <scenario> [flags]\n\nScenarios:\n")
	for _, s := range benchmarks {
		fmt.Fprintf(&b, "  %-9s %s\n", s.name, s.summary)
	}
	b.WriteString(`
Each scenario prints one JSON line on stdout and exits 1 if its own checks
fail, 2 on bad flags.

Examples:
  go run ./cmd/outbox-bench drain --dialect postgres
  go run ./cmd/outbox-bench latency --dialect mysql --rate 2000
  go run ./cmd/outbox-bench enqueue --dialect sqlite
  go run ./cmd/outbox-bench drain --brokers kafka-1:9092 --topic bench.outbox

Run "outbox-bench <scenario> --help" for the flags of a scenario.
`)
	return b.String()
}

// errCheck is wrapped by the error of a scenario whose own checks failed
// (its JSON line is printed all the same, with "ok": false).
var errCheck = errors.New("check failed")

// realMain runs the command line args and returns the exit status: 0 on
// success, 1 on failure (including a failed check), 2 on a usage error.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	stderr = newScrubWriter(stderr)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	run, known := scenarios[args[0]]
	if !known {
		fmt.Fprintf(stderr, "outbox-bench: unknown scenario %q\n\n%s", args[0], usage())
		return 2
	}
	if run == nil {
		fmt.Fprint(stdout, usage())
		return 0
	}
	err := run(ctx, args[1:], stdout, stderr)
	return cli.Exit(stderr, "outbox-bench", args[0], err, errUsage)
}
