package dialect

import (
	"context"
	"database/sql"
)

var _ WakeArmer = (*sqlDialect)(nil)

// Writers are the transactions that were inserting into the outbox at a
// moment (PostgreSQL virtual transaction ids).
type Writers struct{ vxids []string }

// None reports whether there were none.
func (w Writers) None() bool { return len(w.vxids) == 0 }

// ArmWake arms the wake-up of migrations/postgres/00004_wake_when_idle.sql;
// it does nothing where the dialect has no notifications.
func (d *sqlDialect) ArmWake(ctx context.Context, db *sql.DB) (bool, error) {
	if !d.f.notify {
		return false, nil
	}
	var disarmed bool
	err := db.QueryRowContext(ctx, "SELECT outbox_wake_arm()").Scan(&disarmed)
	return disarmed, err
}

// writersSQL lists the transactions that hold ROW EXCLUSIVE on the outbox:
// every insert takes it before its trigger runs, and keeps it to its end.
const writersSQL = `SELECT ARRAY(SELECT DISTINCT k.virtualtransaction FROM pg_locks k
 WHERE k.locktype = 'relation' AND k.relation = CAST('` + TableMessages + `' AS regclass)
  AND k.mode = 'RowExclusiveLock' AND k.pid IS DISTINCT FROM pg_backend_pid())`

// InFlightWriters lists the transactions inserting into the outbox now.
func (d *sqlDialect) InFlightWriters(ctx context.Context, db *sql.DB) (Writers, error) {
	if !d.f.notify {
		return Writers{}, nil
	}
	var list string
	if err := db.QueryRowContext(ctx, writersSQL).Scan(&list); err != nil {
		return Writers{}, err
	}
	return Writers{vxids: parseTextArray(list)}, nil
}

// WritersEnded reports whether every transaction of w has ended.
func (d *sqlDialect) WritersEnded(ctx context.Context, db *sql.DB, w Writers) (bool, error) {
	if w.None() {
		return true, nil
	}
	var running bool
	err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE virtualtransaction = ANY (CAST($1 AS text[])))", textArray(w.vxids)).Scan(&running)
	return !running, err
}
