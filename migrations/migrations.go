// Package migrations creates and upgrades the outbox tables with goose v3.
//
// The SQL files of each dialect are embedded and exported as an fs.FS. Up
// applies them with goose's Provider and a version table of its own
// (VersionTable), so the outbox never collides with an application's own
// goose history, and under a lock, so that several processes starting at
// once (relays, application replicas) can all call Up safely.
//
// # Applications that already use goose
//
// Keep the outbox migrations apart from yours: their version numbers start
// at 1 and would clash with your own files. Either call Up at start-up, or
// run a second goose Provider over FS with VersionTable:
//
//	fsys, _ := migrations.FS(dialect.Postgres())
//	p, _ := goose.NewProvider(goose.DialectPostgres, db, fsys,
//		goose.WithTableName(migrations.VersionTable))
//	_, err := p.Up(ctx)
//
// With the goose CLI: goose -dir <copy of the files> -table outbox_goose_version postgres "$DSN" up.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/ctxtime"
)

// VersionTable is the goose version table of the outbox migrations.
const VersionTable = "outbox_goose_version"

// lockTable is the lock table used on SQLite, which has no session lock.
const lockTable = "outbox_goose_lock"

// lockID is the PostgreSQL advisory lock id: the ASCII bytes of "outb".
const lockID = 0x6f75_7462

// DefaultLockTimeout is how long NewProvider's migrators wait for the
// migration lock that another migrator holds.
const DefaultLockTimeout = 10 * time.Minute

// LockTimeoutError is returned when another migrator (relay migrate, an
// application calling Up) held the migration lock for all of Waited. It
// wraps ErrLockTimeout.
type LockTimeoutError struct {
	Waited time.Duration
}

func (e *LockTimeoutError) Error() string {
	return fmt.Sprintf("migrations: migration lock still held by another session after %s", e.Waited)
}

// Unwrap returns ErrLockTimeout.
func (e *LockTimeoutError) Unwrap() error { return ErrLockTimeout }

// ErrLockTimeout is wrapped by LockTimeoutError.
var ErrLockTimeout = errors.New("migrations: migration lock held by another session")

// ErrUnsupportedDialect is returned for a dialect that has no migrations.
var ErrUnsupportedDialect = errors.New("migrations: unsupported dialect")

//go:embed postgres/*.sql mysql/*.sql sqlite/*.sql
var files embed.FS

// FS returns the migration files of the dialect d, at the root of the
// returned file system.
func FS(d dialect.Dialect) (fs.FS, error) {
	if _, err := gooseDialect(d); err != nil {
		return nil, err
	}
	return fs.Sub(files, string(d.Name()))
}

func gooseDialect(d dialect.Dialect) (goose.Dialect, error) {
	if d == nil {
		return "", fmt.Errorf("%w: nil", ErrUnsupportedDialect)
	}
	switch d.Name() {
	case dialect.NamePostgres:
		return goose.DialectPostgres, nil
	case dialect.NameMySQL:
		return goose.DialectMySQL, nil
	case dialect.NameSQLite:
		return goose.DialectSQLite3, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnsupportedDialect, d.Name())
}

// NewProvider returns a goose Provider for the outbox migrations of d on db,
// with the outbox version table and a lock that serializes concurrent
// callers. Use it for Status, Down and the other Provider methods.
func NewProvider(db *sql.DB, d dialect.Dialect) (*goose.Provider, error) {
	return NewProviderLockTimeout(db, d, DefaultLockTimeout)
}

// NewProviderLockTimeout is NewProvider whose migrators wait at most
// lockTimeout for the migration lock held by another one, then fail with a
// *LockTimeoutError. On SQLite a lock older than lockTimeout is taken as
// abandoned by a crashed migrator and taken over instead.
func NewProviderLockTimeout(db *sql.DB, d dialect.Dialect, lockTimeout time.Duration) (*goose.Provider, error) {
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	gd, err := gooseDialect(d)
	if err != nil {
		return nil, err
	}
	fsys, err := FS(d)
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithTableName(VersionTable), goose.WithDisableGlobalRegistry(true)}
	switch gd {
	case goose.DialectPostgres:
		opts = append(opts, goose.WithSessionLocker(postgresLocker{timeout: lockTimeout}))
	case goose.DialectMySQL:
		// MySQL DDL commits on its own: create goose's version table apart
		// from the DML that records version 0.
		opts = append(opts, goose.WithSessionLocker(mysqlLocker{timeout: lockTimeout}), goose.WithIsolateDDL(true))
	case goose.DialectSQLite3:
		opts = append(opts, goose.WithLocker(&sqliteLocker{poll: 50 * time.Millisecond, stale: lockTimeout}))
	}
	return goose.NewProvider(gd, db, fsys, opts...)
}

// Up applies every pending outbox migration of d to db. It is idempotent:
// with nothing pending it changes nothing.
func Up(ctx context.Context, db *sql.DB, d dialect.Dialect) error {
	// Processes that start together race for goose's version table before
	// and around the lock: on MySQL one has been seen (rarely) to find the
	// table without its version-0 row ("missing zero version migration"),
	// on SQLite to get SQLITE_BUSY at once. Up is idempotent and the lock
	// serializes the migrations, so those cases are retried, briefly.
	for attempt := 1; ; attempt++ {
		p, err := NewProvider(db, d)
		if err != nil {
			return err
		}
		_, err = p.Up(ctx)
		if err == nil {
			return nil
		}
		if attempt == 5 || !transient(err) || ctx.Err() != nil {
			return fmt.Errorf("migrations: up (%s): %w", d.Name(), err)
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}

// postgresLocker is a goose SessionLocker on a session-level advisory lock.
// It polls pg_try_advisory_lock every lockPoll (goose's own polls once a
// second), rather than wait inside pg_advisory_lock: a session waiting in
// a statement holds a snapshot, and CREATE INDEX CONCURRENTLY (migration
// 3), run by the lock's holder, waits for every older snapshot to end: the
// two would deadlock, and PostgreSQL would fail the waiting migrator.
type postgresLocker struct{ timeout time.Duration }

// lockPoll is how often a PostgreSQL migrator asks for the lock again.
const lockPoll = 50 * time.Millisecond

func (l postgresLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	deadline := time.Now().Add(l.timeout)
	for {
		var got bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", lockID).Scan(&got); err != nil {
			return fmt.Errorf("migrations: taking the migration lock: %w", err)
		}
		if got {
			return nil
		}
		if time.Now().After(deadline) {
			return &LockTimeoutError{Waited: l.timeout}
		}
		if !ctxtime.Sleep(ctx, lockPoll) {
			return fmt.Errorf("migrations: taking the migration lock: %w", ctx.Err())
		}
	}
}

func (postgresLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", lockID)
	return err
}

// mysqlLockName is the MySQL/MariaDB user lock (GET_LOCK) name, made
// unique per database (user locks are server-wide; names are at most 64
// characters).
const mysqlLockName = "LEFT(CONCAT('outbox_migrations.', DATABASE()), 64)"

// mysqlLocker is a goose SessionLocker on MySQL's GET_LOCK. The server
// releases the lock when the session ends, so a crashed migrator never
// leaves it behind. (goose's own MySQL table locker needs parseTime=true in
// the DSN; this one works with any DSN.)
type mysqlLocker struct{ timeout time.Duration }

func (l mysqlLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	var got sql.NullInt64
	err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+mysqlLockName+", ?)", max(1, int(l.timeout.Seconds()))).Scan(&got)
	if err != nil {
		return fmt.Errorf("migrations: taking the migration lock: %w", err)
	}
	if got.Int64 != 1 {
		return &LockTimeoutError{Waited: l.timeout}
	}
	return nil
}

func (l mysqlLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, "SELECT RELEASE_LOCK("+mysqlLockName+")")
	return err
}

// transient reports the start-up races that Up retries.
func transient(err error) bool {
	s := err.Error()
	return strings.Contains(s, "missing zero version") || strings.Contains(s, "database is locked") || strings.Contains(s, "SQLITE_BUSY")
}

// sqliteLocker is a goose Locker for SQLite: a row in a lock table, taken
// with an INSERT that only one writer can win. A lock older than stale is
// considered abandoned by a crashed process and taken over.
type sqliteLocker struct {
	poll, stale time.Duration
}

func (l *sqliteLocker) Lock(ctx context.Context, db *sql.DB) error {
	const create = "CREATE TABLE IF NOT EXISTS " + lockTable + " (id INTEGER PRIMARY KEY, locked_at INTEGER NOT NULL)"
	for {
		_, err := db.ExecContext(ctx, create)
		if err == nil {
			_, err = db.ExecContext(ctx, "DELETE FROM "+lockTable+" WHERE id = 1 AND locked_at < ?",
				time.Now().Add(-l.stale).UnixMicro())
		}
		if err == nil {
			_, err = db.ExecContext(ctx, "INSERT INTO "+lockTable+" (id, locked_at) VALUES (1, ?)", time.Now().UnixMicro())
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("migrations: waiting for the migration lock: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(l.poll):
		}
	}
}

func (l *sqliteLocker) Unlock(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, "DELETE FROM "+lockTable+" WHERE id = 1")
	return err
}
