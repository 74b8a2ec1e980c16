package dialect_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// TestPrunePlanUsesDeadAtIndex asks each database for the plan of
// PruneDeadLetters' search (its golden file) on 4,096 dead letters none of
// which is old enough: it must be a range of the dead_at index, which ends
// at once, not a walk of the table (what it was before that index: every
// row read to find none).
func TestPrunePlanUsesDeadAtIndex(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		db := dbtest.Open(t, name)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		now := map[dialect.Name]string{
			dialect.NamePostgres: "now()",
			dialect.NameMySQL:    "UTC_TIMESTAMP(6)",
			dialect.NameSQLite:   "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
		}[name]
		const cols = "message_id, topic, shard, created_at, attempts, dead_at"
		exec := func(q string) {
			t.Helper()
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec("INSERT INTO " + dialect.TableDeadLetters + " (" + cols + ") VALUES ('m', 't', 0, " + now + ", 1, " + now + ")")
		for range 12 {
			exec("INSERT INTO " + dialect.TableDeadLetters + " (" + cols + ") SELECT " + cols + " FROM " + dialect.TableDeadLetters)
		}
		exec(map[dialect.Name]string{dialect.NamePostgres: "ANALYZE ", dialect.NameMySQL: "ANALYZE TABLE ", dialect.NameSQLite: "ANALYZE "}[name] +
			dialect.TableDeadLetters)
		q, args := goldenStatement(t, filepath.Join("testdata", string(name), "dlq_prune_find.sql"))
		explain := "EXPLAIN "
		if name == dialect.NameSQLite {
			explain = "EXPLAIN QUERY PLAN "
		}
		plan := planText(t, ctx, db.DB, explain+q, args)
		if !strings.Contains(plan, "outbox_dead_letters_dead_at") || strings.Contains(plan, "Seq Scan") {
			t.Errorf("the prune's search does not use the dead_at index:\n%s", plan)
		}
	})
}

// planText returns every column of every row of the plan, one row a line.
func planText(t *testing.T, ctx context.Context, db *sql.DB, q string, args []any) string {
	t.Helper()
	var b strings.Builder
	queryRows(t, ctx, db, q, args, func(_ []string, vals []sql.NullString) {
		for _, v := range vals {
			b.WriteString(v.String + " ")
		}
		b.WriteString("\n")
	})
	return b.String()
}

// queryRows runs q and calls row with the column names and the values of
// each row, failing t on any error.
func queryRows(t *testing.T, ctx context.Context, db *sql.DB, q string, args []any, row func(cols []string, vals []sql.NullString)) {
	t.Helper()
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row(cols, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
