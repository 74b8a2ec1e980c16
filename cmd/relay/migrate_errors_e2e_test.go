package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"

	_ "github.com/lib/pq"
)

// TestE2EMigrateErrors: relay migrate's errors after it connected say what
// to do, and never show the password: a user that may not create tables,
// a search_path naming no schema, the migration lock held by another
// migrator, a migration that fails partway. It creates a database and a
// role of its own on the local PostgreSQL, and drops them after.
func TestE2EMigrateErrors(t *testing.T) {
	relayBinary(t)
	ctx := context.Background()
	admin, err := sql.Open("postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprintf("%d", os.Getpid())
	dbName, role := "relay_migrate_errors_"+suffix, "relay_noprivs_"+suffix
	const pw = "pw-migrate-secret"
	for _, q := range []string{
		"DROP DATABASE IF EXISTS " + dbName + " WITH (FORCE)",
		"DROP ROLE IF EXISTS " + role,
		"CREATE DATABASE " + dbName,
		"CREATE ROLE " + role + " LOGIN PASSWORD '" + pw + "'",
	} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { // after the deferred closes of the connections to dbName
		defer admin.Close()
		for _, q := range []string{"DROP DATABASE IF EXISTS " + dbName + " WITH (FORCE)", "DROP ROLE IF EXISTS " + role} {
			if _, err := admin.ExecContext(ctx, q); err != nil {
				t.Errorf("cleanup: %s: %v", q, err)
			}
		}
	})
	owner, err := sql.Open("postgres", "postgres://postgres@127.0.0.1:5432/"+dbName+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	// Schema "broken" has a table in migration 1's way: the migration
	// fails partway (its CREATE TABLE IF NOT EXISTS skips it, the index on
	// a column it lacks fails).
	for _, q := range []string{
		"CREATE SCHEMA broken",
		"CREATE TABLE broken.outbox_messages (x int)",
		"CREATE SCHEMA locked",
	} {
		if _, err := owner.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	userURL := "postgres://" + role + ":" + pw + "@127.0.0.1:5432/" + dbName + "?sslmode=disable"
	runCLICases(t, []cliCase{
		{"no privilege", []string{"OUTBOX_DATABASE_URL=" + userURL}, []string{"migrate"}, 1,
			"relay migrate: postgres://127.0.0.1:5432/" + dbName + ": the user may not create the outbox tables: it needs CREATE on the schema of its search_path (GRANT CREATE ON SCHEMA public TO <user>), or run relay migrate as the schema's owner (permission denied for schema public)", ""},
		{"no schema", []string{"OUTBOX_DATABASE_URL=" + userURL + "&search_path=nosuch"}, []string{"migrate"}, 1,
			"relay migrate: postgres://127.0.0.1:5432/" + dbName + ": no schema to create the outbox tables in: the user's search_path names no schema that exists; set one in the URL (?search_path=app) or create it (CREATE SCHEMA app AUTHORIZATION <user>) (no schema has been selected to create in)", ""},
	})
	// The cases above run first: goose finds its version table in any
	// schema when the search_path has none, so "no schema" needs a
	// database where no migration has started.
	// Another migrator holds the migration lock (an advisory lock of the
	// database) for the whole test.
	conn, err := owner.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", 0x6f75_7462); err != nil {
		t.Fatal(err)
	}
	lockedEnv := []string{"OUTBOX_DATABASE_URL=postgres://postgres@127.0.0.1:5432/" + dbName + "?sslmode=disable&search_path=locked"}
	runCLICases(t, []cliCase{
		{"lock held", lockedEnv, []string{"migrate", "--lock-timeout", "1s"}, 1,
			"relay migrate: postgres://127.0.0.1:5432/" + dbName + ": another relay migrate (or an application migrating the outbox tables) holds the migration lock; waited 1s (--lock-timeout): run it again when that one has finished", ""},
	})
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", 0x6f75_7462); err != nil {
		t.Fatal(err)
	}

	runCLICases(t, []cliCase{
		{"partway", []string{"OUTBOX_DATABASE_URL=postgres://postgres@127.0.0.1:5432/" + dbName + "?sslmode=disable&search_path=broken"}, []string{"migrate"}, 1,
			"relay migrate: postgres://127.0.0.1:5432/" + dbName + ": migration 1 (00001_outbox.sql) failed, after 0 applied in this run; the migrations before it stay applied; fix the cause and run relay migrate again, which goes on from migration 1: pq: relation \"outbox_messages\" already exists (42P07)", ""},
	})
}
