package dialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

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
	// joinIDs reaches rows by id through a join of the id list with the
	// primary key (eq_ref, forced), not with id IN (...): InnoDB's
	// planner scans a small table for an IN list that covers much of it,
	// and a locking scan waits on every uncommitted insert it meets (an
	// application transaction still open), rows the relay never asked for.
	joinIDs bool
	// boundOnServer gives every relay statement the server-side time limit
	// of its context's deadline (MariaDB's max_statement_time, MySQL 8's
	// MAX_EXECUTION_TIME for reads): go-sql-driver/mysql closes the
	// connection when a context ends, but the server would run on.
	boundOnServer bool

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
	// readOnPrimary makes ReadBatch walk the primary key (MySQL: FORCE
	// INDEX). Through (shard, id) InnoDB read the range of every shard and
	// sorted them, walking every delete-marked entry that purge had not
	// removed (a held transaction keeps all of them) on every batch; on the
	// primary key the read stops at the batch's last row.
	readOnPrimary bool
	// nullFlags: the driver reads an empty BLOB as nil (modernc.org/sqlite),
	// so ReadBatch also selects IS NULL to tell a null key or value from an
	// empty one.
	nullFlags bool
	// notify: committed inserts notify NotifyChannel (the migrations'
	// trigger).
	notify bool

	// forceShardIndex makes the per-shard probes of the operators'
	// overview use the (shard, id) index: InnoDB's planner preferred the
	// retry index, whose prefix is shard too, and sorted every row of the
	// shard (10 s on a 10M-row outbox instead of 1 ms).
	forceShardIndex bool
	// contains is the condition "last_error contains the bound value", with
	// one "?" (no LIKE: the operator's text may hold % and _).
	contains string
	// timeArg is a time as a bound value compared with a time column.
	timeArg func(t time.Time) any
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

// exec runs one of the relay's statements on db or tx, bounded on the
// server where the flavor can (bounded).
func (d *sqlDialect) exec(ctx context.Context, db Execer, q string, args ...any) (sql.Result, error) {
	return db.ExecContext(ctx, d.bounded(ctx, q), args...)
}

// query runs one of the relay's queries on db or tx, bounded on the server
// where the flavor can (bounded).
func (d *sqlDialect) query(ctx context.Context, db querier, q string, args ...any) (*sql.Rows, error) {
	return db.QueryContext(ctx, d.bounded(ctx, q), args...)
}

// execSq runs a squirrel statement with exec.
func (d *sqlDialect) execSq(ctx context.Context, db Execer, s sq.Sqlizer) (sql.Result, error) {
	q, args, err := s.ToSql()
	if err != nil {
		return nil, err
	}
	return d.exec(ctx, db, q, args...)
}

// querySq runs a squirrel query with query and scans every row with scan.
func querySq[T any](ctx context.Context, d *sqlDialect, db querier, s sq.Sqlizer, scan func(*sql.Rows, *T) error) ([]T, error) {
	q, args, err := s.ToSql()
	if err != nil {
		return nil, err
	}
	rows, err := d.query(ctx, db, q, args...)
	if err != nil {
		return nil, err
	}
	return scanAll(rows, scan)
}

// bounded returns q with the server-side time limit of ctx's deadline, when
// the flavor has one (boundOnServer) and ctx has a deadline: a statement the
// relay gives up on then stops on the server too, instead of holding its
// locks and its connection's thread until it finishes. MariaDB runs the
// executable comment (SET STATEMENT max_statement_time, which also ends a
// lock wait); MySQL 8 reads it as a comment, and takes the
// MAX_EXECUTION_TIME hint of a SELECT, which MariaDB reads as a comment.
// PostgreSQL needs none of it: lib/pq and pgx send a cancel request when
// the context ends.
func (d *sqlDialect) bounded(ctx context.Context, q string) string {
	dl, ok := ctx.Deadline()
	if !ok || !d.f.boundOnServer {
		return q
	}
	return d.boundedFor(time.Until(dl), q)
}

// boundedFor returns q bounded to run at most left on the server.
func (d *sqlDialect) boundedFor(left time.Duration, q string) string {
	ms := max(left.Milliseconds(), 1)
	var b strings.Builder
	b.Grow(len(q) + 96)
	fmt.Fprintf(&b, "/*M! SET STATEMENT max_statement_time=%d.%03d FOR */ ", ms/1000, ms%1000)
	if rest, ok := strings.CutPrefix(q, "SELECT "); ok {
		fmt.Fprintf(&b, "SELECT /*+ MAX_EXECUTION_TIME(%d) */ ", ms)
		q = rest
	}
	b.WriteString(q)
	return b.String()
}

// byID returns the FROM clause, with the outbox table as m, and the
// condition (empty when the clause needs none) that reach the rows of ids
// through the primary key and only them (joinIDs), whatever the planner
// thinks of the table's size.
func (d *sqlDialect) byID(ids []int64) (from, where string) {
	s := d.newStmt(false, 32+21*len(ids))
	if !d.f.joinIDs {
		s.WriteString("m.id IN (")
		s.ints(ids)
		s.WriteByte(')')
		return TableMessages + " AS m", s.String()
	}
	s.WriteString("JSON_TABLE('[")
	s.ints(ids)
	s.WriteString("]', '$[*]' COLUMNS (id BIGINT PATH '$')) AS x STRAIGHT_JOIN " + TableMessages +
		" AS m FORCE INDEX (PRIMARY) ON m.id = x.id")
	return s.String(), ""
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
