package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// defaultMigrateWait is how long relay migrate waits for a database that
// does not answer yet: long enough for a database container started at
// the same time, short enough that a wrong host fails a deploy job.
const defaultMigrateWait = time.Minute

// waitForDatabaseFor is waitForDatabase bounded by limit (0: one ping). A
// database that still does not answer is an error naming the flag.
func waitForDatabaseFor(ctx context.Context, db *sql.DB, d database, limit time.Duration, log *slog.Logger) error {
	wctx, cancel := context.WithTimeout(ctx, max(limit, time.Nanosecond))
	defer cancel()
	err := waitForDatabase(wctx, db, d, log)
	if ctx.Err() != nil {
		return fmt.Errorf("stopped by a signal while waiting for database %s", d.display)
	}
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// The bound passed: one last ping says why.
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err = db.PingContext(pctx); err == nil {
		return nil
	}
	return fmt.Errorf("database %s did not answer within --wait-for-database %s: %w", d.display, limit, err)
}
