package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
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
	fs := newAdminFlagSet("prune", pruneAbout, "  relay prune --dead-letters --older-than 30d", stderr)
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
	db, d, a, err := af.open(getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, stop := adminContext()
	defer stop()
	n, err := a.PruneDeadLetters(ctx, age)
	fmt.Fprintf(stdout, "prune: deleted %d dead letters older than %s\n", n, *olderThan)
	if err != nil {
		return dbError(d.display, err)
	}
	return nil
}

// pruneLoop prunes the dead letters older than olderThan every interval
// until ctx ends (relay run --prune-interval). Failures are logged and
// retried at the next interval.
func pruneLoop(ctx context.Context, db *sql.DB, d dialect.Dialect, interval, olderThan time.Duration, log *slog.Logger) {
	a, err := admin.New(db, d, admin.Config{})
	if err != nil {
		log.Error("dead-letter pruning disabled", "err", err)
		return
	}
	for ctxtime.Sleep(ctx, interval) {
		pctx, cancel := context.WithTimeout(ctx, interval)
		n, err := a.PruneDeadLetters(pctx, olderThan)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("pruning dead letters failed; trying again at the next interval", "err", err, "deleted", n, "next_in", interval)
		case n > 0:
			log.Info("pruned dead letters", "deleted", n, "older_than", olderThan)
		}
	}
}
