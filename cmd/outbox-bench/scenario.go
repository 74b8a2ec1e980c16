package main

import (
	"context"
	"flag"
	"io"
	"time"
)

// scenario is one benchmark as the command line knows it. The harness
// (run) parses and checks its flags, prepares its environment, runs it,
// and prints its result line; the scenario's own file says only what it
// measures.
type scenario struct {
	name     string
	summary  string // one line, for the list of scenarios in the usage
	about    string // the --help text: what it measures and how
	examples string
	// flags registers the scenario's own flags on fs (the common ones,
	// co, are already there) and returns the benchmark they configure.
	flags func(fs *flag.FlagSet, co *commonOpts) benchmark
}

// benchmark is a scenario configured by its flags.
type benchmark interface {
	// check validates the scenario's own flags, after the common ones
	// passed; it returns a usage error.
	check() error
	// needs says what environment the run needs.
	needs() needs
	// run measures, recording failed checks in c, and returns the result
	// line (its verdict is filled in by the harness). An error ends the
	// run without a result line.
	run(ctx context.Context, e *env, c *checks) (result, error)
}

// needs is the environment a benchmark runs in.
type needs struct {
	pool   int      // connections of the application's pool
	topics []string // created on the broker; none: no broker
	// switchable: kfake's listeners can be taken off the network and put
	// back (env.brokerDown), without --broker-rtt too.
	switchable bool
}

// result is a scenario's JSON line: a struct that embeds header and
// verdict.
type result interface {
	setVerdict(verdict)
}

// setVerdict sets the verdict of the result line that embeds v.
func (v *verdict) setVerdict(x verdict) { *v = x }

// command runs one command of outbox-bench with the arguments after its
// name.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// run is the command of the scenario: flags, environment, measurement,
// result line. It returns an error wrapping errCheck when the scenario's
// own checks failed (the line is printed all the same).
func (s *scenario) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(s.name, s.about, s.examples, stderr)
	co := addCommon(fs)
	b := s.flags(fs, co)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := firstError(co.check(), b.check()); err != nil {
		return err
	}
	e, err := setup(ctx, s.name, co, b.needs(), stderr)
	if err != nil {
		return err
	}
	defer e.close()
	var c checks
	res, err := b.run(ctx, e, &c)
	if err != nil {
		return err
	}
	res.setVerdict(c.verdict())
	if err := emit(stdout, res); err != nil {
		return err
	}
	return c.err()
}

// elapsed returns the seconds since the run started (before its
// environment was set up), for the total_seconds of a result.
func (e *env) elapsed() float64 { return secs(time.Since(e.started)) }
