package dialect

import (
	"context"
	"database/sql"
)

var _ WakeArmer = (*sqlDialect)(nil)

// ArmWake arms the wake-up of migrations/postgres/00004_wake_when_idle.sql;
// it does nothing where the dialect has no notifications.
func (d *sqlDialect) ArmWake(ctx context.Context, db *sql.DB) (bool, error) {
	if !d.f.notify {
		return false, nil
	}
	var flipped bool
	err := db.QueryRowContext(ctx, "SELECT outbox_wake_arm()").Scan(&flipped)
	return flipped, err
}
