package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/outboxrelay/outbox/admin"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/ctxtime"
)

const pruneAbout = `Deletes dead letters dead for longer than --older-than (by the database
clock), in chunks of --chunk-size, each a short statement of its own, so it
never holds long locks. --dead-letters is required: it names what is pruned.
"relay run --prune-interval" does the same in the background.`

func cmdPrune(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newAdminFlagSet("prune", pruneAbout, "  relay prune --dead-letters --older-than 30d", stdout)
	af := addAdminFlags(fs)
	deadLetters := fs.Bool("dead-letters", false, "prune the dead-letter table (required)")
	olderThan := fs.String("older-than", "", "age of the dead letters to delete (examples: 36h, 30d, 2w; required)")
	if err := parseFlags(fs, args, adminEnv(getenv)); err != nil {
		return err
	}
	if !*deadLetters {
		return fmt.Errorf("%w: say what to prune: --dead-letters (example: relay prune --dead-letters --older-than 30d)", ErrUsage)
	}
	if *olderThan == "" {
		return fmt.Errorf("%w: --older-than is required %s", ErrUsage, ageExamples)
	}
	age, err := parseAge("older-than", *olderThan)
	if err != nil {
		return err
	}
	return af.withAdmin(getenv, func(ctx context.Context, a *admin.Admin, where string) error {
		n, err := a.PruneDeadLetters(ctx, age)
		fmt.Fprintf(stdout, "prune: deleted %d dead letters older than %s\n", n, *olderThan)
		if err != nil {
			return dbError(where, err)
		}
		return nil
	})
}

// Background pruning (relay run --prune-interval).
const (
	minPruneInterval = time.Minute
	// pruneTimeout bounds one background prune, whatever the interval: a
	// prune of a large backlog goes on at the next interval.
	pruneTimeout = 5 * time.Minute
	// firstPruneWithin is the longest wait for the first prune after the
	// start (a random part of it, so that relays started together do not
	// prune together).
	firstPruneWithin = 10 * time.Second
)

// checkPruneInterval validates --prune-interval: 0 (never) or at least
// minPruneInterval.
func checkPruneInterval(d time.Duration) error {
	if d != 0 && d < minPruneInterval {
		return fmt.Errorf("%w: --prune-interval %s: give 0 (never) or at least %s (example: --prune-interval 1h)", ErrUsage, d, minPruneInterval)
	}
	return nil
}

// pruneLoop prunes the dead letters older than olderThan soon after the
// start, then every interval (plus or minus a tenth, at random, so that
// relays that all have it spread out) until ctx ends. Each prune has its
// own timeout, pruneTimeout; failures are logged and retried at the next
// interval. Several relays pruning at once is safe (each chunk deletes by
// id, re-checking the age), only wasted work.
func pruneLoop(ctx context.Context, db *sql.DB, d dialect.Dialect, interval, olderThan time.Duration, log *slog.Logger) {
	a, err := admin.New(db, d, admin.Config{})
	if err != nil {
		log.Error("dead-letter pruning disabled", "err", err)
		return
	}
	wait := rand.N(min(interval, firstPruneWithin))
	for ctxtime.Sleep(ctx, wait) {
		pctx, cancel := context.WithTimeout(ctx, pruneTimeout)
		n, err := a.PruneDeadLetters(pctx, olderThan)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("pruning dead letters failed; trying again at the next interval", "err", err, "deleted", n, "next_in", interval)
		case n > 0:
			log.Info("pruned dead letters", "deleted", n, "older_than", olderThan)
		}
		wait = interval - interval/10 + rand.N(interval/5+1)
	}
}
