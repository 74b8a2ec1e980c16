package dialect

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	sq "github.com/Masterminds/squirrel"
)

// flavor is what differs between the SQL dialects: the database clock,
// how rows are locked, the forms of an upsert, and how values are written
// as literals. The statements themselves are built once, by sqlDialect, so
// the three dialects cannot drift apart; testdata/<dialect>/*.sql shows
// every statement of every dialect whole, as the builders write it
// (TestGolden).
//
// The package writes SQL two ways, one per kind of statement:
//   - statements with bound values (leases, heartbeats, retries, dead
//     letters, stats) are built with squirrel;
//   - the hot paths (Insert, ReadBatch, Ack) are written by stmt, with their
//     values as literals: no bound parameter means one round trip on every
//     driver (lib/pq and go-sql-driver/mysql would prepare first) and no
//     placeholder limit.
type flavor struct {
	name Name
	// dollar selects $1-style placeholders (PostgreSQL) over ?.
	dollar bool

	// The clock. now is the database clock as the type stored in time
	// columns; later is now plus a number of microseconds written as its
	// one "?"; age is now minus MIN(created_at) in microseconds (NULL on an
	// empty table).
	now, later, age string

	// returning: UPDATE ... RETURNING is available (PostgreSQL, SQLite), so
	// leases are taken and renewed in one statement.
	returning bool
	// skipLocked is the clause that makes concurrent claims of free shards
	// pass each other by; empty where writes are serialized anyway (SQLite).
	skipLocked string
	// lockRows: dead-lettering locks its rows first, so two relays racing
	// for one row serialize (empty where writes are serialized anyway).
	lockRows bool
	// readCommitted runs the relay's short transactions in READ COMMITTED,
	// so InnoDB keeps no locks on rows a locking read skipped.
	readCommitted bool

	// insertIgnore is the INSERT option, and onConflict the suffix, that
	// skip rows whose key exists; upsertHeartbeat turns the heartbeat
	// insert into an upsert.
	insertIgnore, onConflict, upsertHeartbeat string

	// bytesLiteral and textLiteral write a value as a literal that needs no
	// escaping of what the caller supplied (hexadecimal, or an E'...' string
	// of validated UTF-8). Without them (SQLite, in-process: a round trip
	// costs nothing) Insert binds its values.
	bytesLiteral func(b *strings.Builder, v []byte)
	textLiteral  func(b *strings.Builder, s string)

	// shardNoIndex keeps the planner off the (shard, id) index in ReadBatch
	// (SQLite would read every row of the shards and sort them, instead of
	// walking the primary key in order until the batch is full).
	shardNoIndex bool
	// nullFlags: the driver reads an empty BLOB as nil (modernc.org/sqlite),
	// so ReadBatch also selects IS NULL to tell a null key or value from an
	// empty one.
	nullFlags bool
	// notify: committed inserts notify NotifyChannel (the migrations'
	// trigger).
	notify bool
}

type sqlDialect struct {
	f  flavor
	sb sq.StatementBuilderType
}

func newSQLDialect(f flavor) *sqlDialect {
	ph := sq.PlaceholderFormat(sq.Question)
	if f.dollar {
		ph = sq.Dollar
	}
	return &sqlDialect{f: f, sb: sq.StatementBuilder.PlaceholderFormat(ph)}
}

func (d *sqlDialect) Name() Name           { return d.f.name }
func (d *sqlDialect) SupportsNotify() bool { return d.f.notify }

// later returns now plus micros, as a squirrel expression.
func (d *sqlDialect) later(micros int64) sq.Sqlizer {
	return sq.Expr(d.f.later, micros)
}

// inTx runs fn in a short transaction, READ COMMITTED where the flavor asks.
func (d *sqlDialect) inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	var opts *sql.TxOptions
	if d.f.readCommitted {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, rollback(tx))
	}
	return tx.Commit()
}

func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

// querier is what queries need: *sql.DB, *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// execSq runs a squirrel statement on db or tx.
func execSq(ctx context.Context, db Execer, s sq.Sqlizer) (sql.Result, error) {
	q, args, err := s.ToSql()
	if err != nil {
		return nil, err
	}
	return db.ExecContext(ctx, q, args...)
}

// querySq runs a squirrel query and scans every row with scan.
func querySq[T any](ctx context.Context, db querier, s sq.Sqlizer, scan func(*sql.Rows, *T) error) ([]T, error) {
	q, args, err := s.ToSql()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return scanAll(rows, scan)
}

// scanAll reads every row with scan and closes rows.
func scanAll[T any](rows *sql.Rows, scan func(*sql.Rows, *T) error) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanLease(rows *sql.Rows, l *Lease) error { return rows.Scan(&l.Shard, &l.Fence) }

func scanOne[T any](rows *sql.Rows, v *T) error { return rows.Scan(v) }
