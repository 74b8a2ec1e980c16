package dialect_test

import (
	"context"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// TestAbandonedQueryStopsOnServer runs a long query (a sleep: a scan that
// takes seconds, as a read of a huge backlog may) through the path of every
// relay statement, gives up after 300 ms, and asks the server whether it
// still runs it. The conformance suite's AbandonedStatementStops does the
// same for statements waiting on a lock; this one covers a statement that
// runs, which a MariaDB server does not stop when the client hangs up.
func TestAbandonedQueryStopsOnServer(t *testing.T) {
	for _, tc := range []struct {
		name       dialect.Name
		sleep      string
		running    string
		controlRun bool // without the bound, the server runs on (the check can fail)
	}{
		{dialect.NamePostgres,
			"SELECT pg_sleep(3) AS outbox_bound_probe",
			"SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%outbox_bound_probe%' AND pid <> pg_backend_pid()",
			false},
		{dialect.NameMySQL,
			"SELECT SLEEP(3) AS outbox_bound_probe",
			"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%outbox_bound_probe%' AND ID <> CONNECTION_ID()",
			true},
	} {
		t.Run(string(tc.name), func(t *testing.T) {
			tdb := dbtest.OpenEmpty(t, tc.name)
			db := tdb.DB
			probe := func(run func(ctx context.Context) error) int {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				if err := run(ctx); err == nil {
					t.Fatalf("a 3 s query finished within 300 ms")
				}
				time.Sleep(500 * time.Millisecond)
				var n int
				if err := db.QueryRow(tc.running).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			bounded := func(ctx context.Context) error {
				rows, err := dialect.RelayQuery(ctx, tdb.Dialect, db, tc.sleep)
				if err == nil {
					for rows.Next() {
					}
					err = rows.Err()
					rows.Close()
				}
				return err
			}
			if n := probe(bounded); n != 0 {
				t.Errorf("the server still runs %d abandoned queries 500 ms after the relay gave up", n)
			}
			if !tc.controlRun {
				return
			}
			plain := func(ctx context.Context) error {
				rows, err := db.QueryContext(ctx, tc.sleep)
				if err == nil {
					rows.Close()
				}
				return ctx.Err()
			}
			if n := probe(plain); n == 0 {
				t.Errorf("control: without the server-side bound the abandoned query stopped as well; " +
					"the check above proves nothing on this server (a driver that now kills the query?)")
			}
			time.Sleep(3 * time.Second) // let the control's sleep end before the next test
		})
	}
}
