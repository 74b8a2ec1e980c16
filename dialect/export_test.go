package dialect

import (
	"context"
	"database/sql"
)

// RelayQuery runs q the way the relay runs its queries: bounded on the
// server by ctx's deadline where the dialect can (for dialect_test).
func RelayQuery(ctx context.Context, d Dialect, db *sql.DB, q string) (*sql.Rows, error) {
	return d.(*sqlDialect).query(ctx, db, q)
}
