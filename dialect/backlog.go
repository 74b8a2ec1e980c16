package dialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The bounded look at the outbox behind the relay's gauges (package
// prommetrics refreshes them on an interval). Unlike Stats, which counts
// whole tables, every part of it reads a bounded number of index entries,
// whatever the size of the table:
//   - pending: COUNT(*) of at most limit rows of the outbox (any index, or a
//     scan that stops after limit rows);
//   - the oldest due message: the earliest created_at among the first
//     window rows in id order (the primary key) whose available_at has
//     passed. Ids follow commit order closely, so the first due rows in id
//     order hold the oldest due message (window of them absorbs the skew of
//     long transactions). Delayed and retrying rows are skipped, not
//     counted in the window: the walk reads every not-yet-due row that
//     comes before the window's due rows in id order, so its cost grows
//     with them (one index entry and one row each), and the statement is
//     bounded in time by its context (see docs/operations.md for figures);
//   - dead letters: COUNT(*) of at most limit rows of the dead-letter
//     table;
//   - the database clock, so the age needs no relay clock.

// ErrNoBacklog is returned by ReadBacklog and Now for a Dialect that is
// not one of this package's.
var ErrNoBacklog = errors.New("dialect: this dialect has no backlog queries")

// DefaultBacklogLimit is the most rows ReadBacklog counts in each table
// when given a limit of 0 or less.
const DefaultBacklogLimit = 100_000

// backlogWindow is how many due rows, in id order, ReadBacklog looks at for
// the oldest due message.
const backlogWindow = 10_000

// Backlog is a bounded look at the outbox tables.
type Backlog struct {
	// Pending counts the rows of the outbox table, up to the limit.
	Pending int64
	// PendingCapped is set when Pending reached the limit (there may be
	// more).
	PendingCapped bool
	// OldestDueAge is the age, on the database clock, of the oldest message
	// whose time has come (available_at has passed): how far behind the
	// outbox is. 0 when no message is due.
	OldestDueAge time.Duration
	// DeadLetters counts the rows of the dead-letter table, up to the limit.
	DeadLetters int64
	// DeadLettersCapped is set when DeadLetters reached the limit.
	DeadLettersCapped bool
}

// ReadBacklog reads Backlog with one statement whose cost is bounded by
// limit (DefaultBacklogLimit when limit <= 0); see testdata/<dialect>/
// backlog.sql. d must be one of this package's dialects, else ErrNoBacklog.
func ReadBacklog(ctx context.Context, d Dialect, db *sql.DB, limit int) (Backlog, error) {
	sd, ok := d.(*sqlDialect)
	if !ok {
		return Backlog{}, ErrNoBacklog
	}
	if limit <= 0 {
		limit = DefaultBacklogLimit
	}
	var b Backlog
	var oldest, now dbTime
	row := db.QueryRowContext(ctx, sd.bounded(ctx, sd.backlogSQL(limit)))
	if err := row.Scan(&b.Pending, &oldest, &b.DeadLetters, &now); err != nil {
		return Backlog{}, fmt.Errorf("dialect: reading the backlog: %w", err)
	}
	b.PendingCapped = b.Pending >= int64(limit)
	b.DeadLettersCapped = b.DeadLetters >= int64(limit)
	if !oldest.t.IsZero() && now.t.After(oldest.t) {
		b.OldestDueAge = now.t.Sub(oldest.t)
	}
	return b, nil
}

// backlogSQL is the statement of ReadBacklog. LIMIT sits in derived tables
// (FROM subqueries), which MySQL, MariaDB, PostgreSQL and SQLite all accept.
func (d *sqlDialect) backlogSQL(limit int) string {
	n := strconv.Itoa(limit)
	w := strconv.Itoa(backlogWindow)
	return "SELECT" +
		" (SELECT COUNT(*) FROM (SELECT 1 AS x FROM " + TableMessages + " LIMIT " + n + ") p)," +
		" (SELECT MIN(o.created_at) FROM" +
		" (SELECT created_at FROM " + TableMessages + " WHERE available_at <= " + d.f.now + " ORDER BY id LIMIT " + w + ") o)," +
		" (SELECT COUNT(*) FROM (SELECT 1 AS x FROM " + TableDeadLetters + " LIMIT " + n + ") d)," +
		" " + d.f.now
}

// Now returns the database clock (one SELECT). d must be one of this
// package's dialects, else ErrNoBacklog. The relay measures its offset
// from the local clock with it, to tell how long a message waited between
// its commit (created_at, database clock) and its publication.
func Now(ctx context.Context, d Dialect, db *sql.DB) (time.Time, error) {
	sd, ok := d.(*sqlDialect)
	if !ok {
		return time.Time{}, ErrNoBacklog
	}
	q, _, err := sd.clockSQL().ToSql() // the statement of Overview's clock
	if err != nil {
		return time.Time{}, err
	}
	var now dbTime
	if err := db.QueryRowContext(ctx, sd.bounded(ctx, q)).Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("dialect: reading the database clock: %w", err)
	}
	return now.t, nil
}
