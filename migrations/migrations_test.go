package migrations_test

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/migrations"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

type otherDialect struct{ dialect.Dialect }

func (otherDialect) Name() dialect.Name { return "oracle" }

func TestUnsupportedDialect(t *testing.T) {
	for _, d := range []dialect.Dialect{nil, otherDialect{}} {
		if _, err := migrations.FS(d); !errors.Is(err, migrations.ErrUnsupportedDialect) {
			t.Errorf("FS(%v) error = %v, want ErrUnsupportedDialect", d, err)
		}
		if err := migrations.Up(context.Background(), nil, d); !errors.Is(err, migrations.ErrUnsupportedDialect) {
			t.Errorf("Up(%v) error = %v, want ErrUnsupportedDialect", d, err)
		}
	}
}

func TestFS(t *testing.T) {
	for _, name := range dbtest.Names {
		fsys, err := migrations.FS(dbtest.Dialect(name))
		if err != nil {
			t.Fatal(err)
		}
		files, err := fs.Glob(fsys, "*.sql")
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no migration files at the root of FS (%v)", name, err)
		}
	}
}

func tableExists(t *testing.T, db *dbtest.DB, table string) bool {
	t.Helper()
	var n int
	err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n)
	return err == nil
}

// TestUp: Up applies everything, is idempotent, uses its own version table,
// and four processes running it at once all succeed with one history.
func TestUp(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		db := dbtest.OpenEmpty(t, name)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A pool of its own, as a separate process would have.
				if err := migrations.Up(ctx, db.OpenMore(t), db.Dialect); err != nil {
					t.Errorf("concurrent Up: %v", err)
				}
			}()
		}
		wg.Wait()
		if err := migrations.Up(ctx, db.DB, db.Dialect); err != nil {
			t.Fatalf("Up again: %v", err)
		}
		for _, table := range []string{dialect.TableMessages, dialect.TableShards, dialect.TableRelays, dialect.TableDeadLetters, migrations.VersionTable} {
			if !tableExists(t, db, table) {
				t.Errorf("table %s missing after Up", table)
			}
		}
		if tableExists(t, db, "goose_db_version") {
			t.Error("goose_db_version created: the outbox must keep its own version table")
		}
		p, err := migrations.NewProvider(db.DB, db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		if pending, err := p.HasPending(ctx); err != nil || pending {
			t.Fatalf("HasPending = %v, %v after Up", pending, err)
		}
		var applied int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + migrations.VersionTable + " WHERE version_id > 0").Scan(&applied); err != nil {
			t.Fatal(err)
		}
		sources := p.ListSources()
		if applied != len(sources) {
			t.Fatalf("%d migrations recorded in %s for %d sources: concurrent Up applied one twice", applied, migrations.VersionTable, len(sources))
		}
		// Down and Up again: the files are reversible.
		if _, err := p.DownTo(ctx, 0); err != nil {
			t.Fatalf("DownTo(0): %v", err)
		}
		if tableExists(t, db, dialect.TableMessages) {
			t.Fatal("outbox_messages still exists after DownTo(0)")
		}
		if err := migrations.Up(ctx, db.DB, db.Dialect); err != nil {
			t.Fatalf("Up after Down: %v", err)
		}
	})
}
