package migrations_test

import (
	"context"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/migrations"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// insertDeadLetter is one dead-letter row, written through ex.
const insertDeadLetter = "INSERT INTO " + dialect.TableDeadLetters +
	" (message_id, topic, shard, created_at, attempts, dead_at) VALUES ('m', 't', 0, CURRENT_TIMESTAMP, 1, CURRENT_TIMESTAMP)"

// TestDeadAtIndexRerunnable: migration 3 (the dead_at index) succeeds on a
// database where the index exists already (an operator built it by hand
// ahead of the migration, on a large table), and its Down after a Down.
func TestDeadAtIndexRerunnable(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		db := dbtest.OpenEmpty(t, name)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p, err := migrations.NewProvider(db.DB, db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.UpTo(ctx, 2); err != nil {
			t.Fatalf("UpTo(2): %v", err)
		}
		byHand := "CREATE INDEX outbox_dead_letters_dead_at ON " + dialect.TableDeadLetters + " (dead_at)"
		if _, err := db.DB.ExecContext(ctx, byHand); err != nil {
			t.Fatal(err)
		}
		if _, err := p.UpTo(ctx, 3); err != nil {
			t.Fatalf("migration 3 with the index built by hand: %v", err)
		}
		if _, err := p.DownTo(ctx, 2); err != nil {
			t.Fatalf("DownTo(2): %v", err)
		}
		if _, err := p.UpTo(ctx, 3); err != nil {
			t.Fatalf("UpTo(3) after a Down: %v", err)
		}
	})
}

// TestDeadAtIndexDoesNotBlockWriters: on PostgreSQL, migration 3 builds its
// index without blocking the relays' writes to the dead-letter table:
// while it waits for a transaction that wrote a dead letter before it
// started, another dead letter is written at once (a plain CREATE INDEX
// queues it behind its SHARE lock); and a migrator waiting for the lock
// meanwhile does not deadlock with it.
func TestDeadAtIndexDoesNotBlockWriters(t *testing.T) {
	db := dbtest.OpenEmpty(t, dialect.NamePostgres)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := migrations.NewProvider(db.DB, db.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 2); err != nil {
		t.Fatalf("UpTo(2): %v", err)
	}
	early, err := db.DB.BeginTx(ctx, nil) // a relay's dead-letter move, not committed yet
	if err != nil {
		t.Fatal(err)
	}
	defer early.Rollback()
	if _, err := early.ExecContext(ctx, insertDeadLetter); err != nil {
		t.Fatal(err)
	}
	migrated := make(chan error, 1)
	go func() { _, err := p.UpTo(ctx, 3); migrated <- err }()

	// Wait for the index build to wait for the early transaction.
	waiting := "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'CREATE INDEX%outbox_dead_letters_dead_at%'" +
		" AND pid IN (SELECT pid FROM pg_locks WHERE relation = '" + dialect.TableDeadLetters + "'::regclass)"
	for n := 0; n == 0; {
		if err := db.DB.QueryRowContext(ctx, waiting).Scan(&n); err != nil {
			t.Fatalf("waiting for the index build to start: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	late := db.OpenMore(t)
	late.SetMaxOpenConns(1)
	if _, err := late.ExecContext(ctx, "SET lock_timeout = '3s'"); err != nil {
		t.Fatal(err)
	}
	if _, err := late.ExecContext(ctx, insertDeadLetter); err != nil {
		t.Errorf("a dead letter written while the index builds: %v; want no wait", err)
	}
	// Another migrator (of another schema: the lock is per database)
	// waits for the migration lock meanwhile. Waiting inside
	// pg_advisory_lock, it held a snapshot that the index build, once the
	// early transaction ended, waited for: deadlock detected.
	other := dbtest.OpenEmpty(t, dialect.NamePostgres)
	otherDone := make(chan error, 1)
	go func() { otherDone <- migrations.Up(ctx, other.DB, other.Dialect) }()
	time.Sleep(300 * time.Millisecond) // for it to reach the lock; it cannot pass it
	if err := early.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-migrated; err != nil {
		t.Fatalf("UpTo(3): %v", err)
	}
	if err := <-otherDone; err != nil {
		t.Fatalf("Up of another schema, waiting for the lock meanwhile: %v", err)
	}
	var valid bool
	err = db.DB.QueryRowContext(ctx, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'outbox_dead_letters_dead_at'::regclass").Scan(&valid)
	if err != nil || !valid {
		t.Fatalf("index after the migration: valid %v, %v", valid, err)
	}
}
