package dialect

import (
	"context"
	"database/sql"
)

var _ WakeArmer = (*sqlDialect)(nil)

// Writers are the transactions that were inserting into the outbox when a
// wake-up was armed (PostgreSQL virtual transaction ids).
type Writers struct{ vxids []string }

// None reports whether there were none.
func (w Writers) None() bool { return len(w.vxids) == 0 }

// armSQL arms the wake-up of migrations/postgres/00004_wake_when_idle.sql
// and, only when it found the flag disarmed, lists the transactions that
// hold ROW EXCLUSIVE on the outbox (every insert takes it before it runs
// the trigger, and keeps it to its end), after the arming: the inserts
// that may have run while the flag was disarmed and not committed yet.
const armSQL = `SELECT s.a, CASE WHEN s.a THEN ARRAY(SELECT DISTINCT k.virtualtransaction FROM pg_locks k
  WHERE s.a AND k.locktype = 'relation' AND k.relation = CAST('` + TableMessages + `' AS regclass)
   AND k.mode = 'RowExclusiveLock' AND k.pid IS DISTINCT FROM pg_backend_pid()) END
FROM (SELECT outbox_wake_arm() AS a OFFSET 0) s`

// ArmWake arms the wake-up; it does nothing where the dialect has no
// notifications.
func (d *sqlDialect) ArmWake(ctx context.Context, db *sql.DB) (bool, Writers, error) {
	if !d.f.notify {
		return false, Writers{}, nil
	}
	var (
		disarmed bool
		list     sql.NullString
	)
	if err := db.QueryRowContext(ctx, armSQL).Scan(&disarmed, &list); err != nil {
		return false, Writers{}, err
	}
	return disarmed, Writers{vxids: parseTextArray(list.String)}, nil
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
