package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/outboxrelay/outbox/dialect"
)

// ---------------------------------------------------------------------------
// The benchmark's own tables
//
// Some scenarios compare the outbox table with tables of their own, made in
// the run's namespace next to it (and dropped with it).

// Tables of the scenarios.
const (
	// slimTable is drain's raw_slim table: the columns a publisher needs
	// (id, topic, msg_key, payload, headers), the primary key only.
	slimTable = "bench_slim_outbox"
	// plainOutboxTable is commit's plain variant: outbox_messages's
	// columns and indexes, without its trigger.
	plainOutboxTable = "bench_plain_outbox"
	// ordersTable is commit's business table.
	ordersTable = "bench_orders"
	// holdTable is pressure's proof that the held snapshot lasted: a row
	// committed after the snapshot was taken, which it must not see.
	holdTable = "bench_hold"
)

// createSlim creates slimTable.
func (e *env) createSlim(ctx context.Context) error {
	var q string
	switch e.name {
	case "postgres":
		q = "CREATE TABLE " + slimTable + ` (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic   varchar(249) NOT NULL,
    msg_key bytea,
    payload bytea,
    headers bytea)`
	case "mysql":
		q = "CREATE TABLE " + slimTable + ` (
    id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    topic   VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    msg_key MEDIUMBLOB,
    payload LONGBLOB,
    headers MEDIUMBLOB) ENGINE = InnoDB`
	default:
		q = "CREATE TABLE " + slimTable + ` (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT NOT NULL,
    msg_key BLOB,
    payload BLOB,
    headers BLOB)`
	}
	return e.exec(ctx, q)
}

// fillSlim copies the rows of the outbox into slimTable, in id order, and
// returns how many it copied.
func (e *env) fillSlim(ctx context.Context) (int64, error) {
	r, err := e.db.ExecContext(ctx, "INSERT INTO "+slimTable+" (topic, msg_key, payload, headers) SELECT topic, msg_key, payload, headers FROM "+
		dialect.TableMessages+" ORDER BY id")
	if err != nil {
		return 0, fmt.Errorf("filling %s: %w", slimTable, err)
	}
	return r.RowsAffected()
}

// createPlainOutbox creates plainOutboxTable with the columns, defaults
// and indexes of the outbox table, and no trigger.
func (e *env) createPlainOutbox(ctx context.Context) error {
	switch e.name {
	case "postgres":
		return e.exec(ctx, "CREATE TABLE "+plainOutboxTable+" (LIKE "+dialect.TableMessages+
			" INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING INDEXES)")
	case "mysql":
		return e.exec(ctx, "CREATE TABLE "+plainOutboxTable+" LIKE "+dialect.TableMessages)
	}
	// SQLite has no CREATE TABLE ... LIKE: the table's and its indexes'
	// own statements, renamed.
	rows, err := e.db.QueryContext(ctx, "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type = 'index'", dialect.TableMessages)
	if err != nil {
		return err
	}
	var stmts []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return err
		}
		stmts = append(stmts, strings.ReplaceAll(s, dialect.TableMessages, plainOutboxTable))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(stmts) == 0 {
		return fmt.Errorf("no schema for %s in sqlite_master", dialect.TableMessages)
	}
	return e.exec(ctx, stmts...)
}

// createOrders creates ordersTable, commit's business table.
func (e *env) createOrders(ctx context.Context) error {
	var q string
	switch e.name {
	case "postgres":
		q = "CREATE TABLE " + ordersTable + ` (
    id         bigserial PRIMARY KEY,
    customer   text NOT NULL,
    amount     integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`
	case "mysql":
		q = "CREATE TABLE " + ordersTable + ` (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer   VARCHAR(64) NOT NULL,
    amount     INT NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE = InnoDB`
	default:
		q = "CREATE TABLE " + ordersTable + ` (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    customer   TEXT NOT NULL,
    amount     INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`
	}
	return e.exec(ctx, q)
}

// emptyTable deletes every row of table (TRUNCATE where there is one).
func (e *env) emptyTable(ctx context.Context, table string) error {
	if e.name == "sqlite" {
		return e.exec(ctx, "DELETE FROM "+table)
	}
	return e.exec(ctx, "TRUNCATE TABLE "+table)
}

// exec runs stmts on the application's pool, one after the other.
func (e *env) exec(ctx context.Context, stmts ...string) error {
	for _, q := range stmts {
		if _, err := e.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", firstLine(q), err)
		}
	}
	return nil
}

// firstLine returns the first line of a statement, for errors.
func firstLine(q string) string {
	if i := strings.IndexByte(q, '\n'); i >= 0 {
		return q[:i] + " ..."
	}
	return q
}

// placeholders returns n placeholders of the dialect, from $first on
// PostgreSQL: "$1,$2" or "?,?".
func placeholders(name string, first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if name == "postgres" {
			fmt.Fprintf(&b, "$%d", first+i)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
