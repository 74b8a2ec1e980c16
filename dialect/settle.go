package dialect

import (
	"context"
	"database/sql"

	sq "github.com/Masterminds/squirrel"
)

// Recording the outcome of a batch: acks (the hot path, literal ids),
// retries and dead letters (bound values, squirrel).

// maxIDsPerStatement keeps IN lists well below every database's limit on
// bound parameters.
const maxIDsPerStatement = 5000

func (d *sqlDialect) Ack(ctx context.Context, db *sql.DB, ids []int64) (int64, error) {
	var total int64
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxIDsPerStatement)]
		ids = ids[len(chunk):]
		res, err := d.exec(ctx, db, d.ackSQL(chunk))
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// ackSQL deletes the rows of ids, reaching them by primary key only
// (byID).
func (d *sqlDialect) ackSQL(ids []int64) string {
	from, where := d.byID(ids)
	if where == "" {
		return "DELETE m FROM " + from
	}
	return "DELETE FROM " + from + " WHERE " + where
}

func (d *sqlDialect) Retry(ctx context.Context, db *sql.DB, retries []Retry) error {
	for len(retries) > 0 {
		chunk := retries[:min(len(retries), maxIDsPerStatement/4)]
		retries = retries[len(chunk):]
		if _, err := d.execSq(ctx, db, d.retrySQL(chunk)); err != nil {
			return err
		}
	}
	return nil
}

// retrySQL counts an attempt of each row and schedules the next one.
func (d *sqlDialect) retrySQL(retries []Retry) sq.Sqlizer {
	avail := sq.Case("m.id")
	lastErr := sq.Case("m.id")
	ids := make([]int64, len(retries))
	for i, r := range retries {
		ids[i] = r.RowID
		avail = avail.When(sq.Expr("?", r.RowID), d.later(max(r.Delay, 0).Microseconds()))
		lastErr = lastErr.When(sq.Expr("?", r.RowID), sq.Expr("?", r.Err))
	}
	from, where := d.byID(ids)
	up := d.sb.Update(from).
		Set("attempts", sq.Expr("m.attempts + 1")).
		Set("available_at", avail).
		Set("last_error", lastErr)
	if where != "" {
		up = up.Where(where)
	}
	return up
}

const deadLetterColumns = "message_id, topic, msg_key, key_hash, payload, headers, shard, created_at"

// deadLetterFrom is deadLetterColumns as the columns of m.
const deadLetterFrom = "m.message_id, m.topic, m.msg_key, m.key_hash, m.payload, m.headers, m.shard, m.created_at"

func (d *sqlDialect) DeadLetter(ctx context.Context, db *sql.DB, failures []Failure) error {
	if len(failures) == 0 {
		return nil
	}
	if len(failures) > maxIDsPerStatement/4 {
		if err := d.DeadLetter(ctx, db, failures[maxIDsPerStatement/4:]); err != nil {
			return err
		}
		failures = failures[:maxIDsPerStatement/4]
	}
	ids := make([]int64, len(failures))
	for i, f := range failures {
		ids[i] = f.RowID
	}
	return d.inTx(ctx, db, func(tx *sql.Tx) error {
		if d.f.lockRows {
			// Lock the rows first: a relay that races us for the same row
			// waits here and then finds it gone, so no row is dead-lettered
			// twice.
			rows, err := d.query(ctx, tx, d.lockRowsSQL(ids))
			if err != nil {
				return err
			}
			if ids, err = scanAll(rows, scanOne[int64]); err != nil || len(ids) == 0 {
				return err
			}
		}
		if _, err := d.execSq(ctx, tx, d.deadLetterSQL(ids, failures)); err != nil {
			return err
		}
		_, err := d.exec(ctx, tx, d.deleteRowsSQL(ids))
		return err
	})
}

// deleteRowsSQL deletes the rows of ids (after their copy): an ack.
func (d *sqlDialect) deleteRowsSQL(ids []int64) string { return d.ackSQL(ids) }

// lockRowsSQL locks the rows of ids that still exist.
func (d *sqlDialect) lockRowsSQL(ids []int64) string {
	from, where := d.byID(ids)
	if where != "" {
		where = " WHERE " + where
	}
	return "SELECT m.id FROM " + from + where + " FOR UPDATE"
}

// deadLetterSQL copies the rows of ids into the dead-letter table with
// their attempt counted and their error.
func (d *sqlDialect) deadLetterSQL(ids []int64, failures []Failure) sq.Sqlizer {
	lastErr := sq.Case("m.id")
	for _, f := range failures {
		lastErr = lastErr.When(sq.Expr("?", f.RowID), sq.Expr("?", f.Err))
	}
	from, where := d.byID(ids)
	// The inner select keeps ? placeholders: the insert numbers them all.
	sel := sq.Select(deadLetterFrom, "m.attempts + 1").Column(lastErr).Column(d.f.now).From(from)
	if where != "" {
		sel = sel.Where(where)
	}
	return d.sb.Insert(TableDeadLetters).
		Columns(deadLetterColumns, "attempts", "last_error", "dead_at").
		Select(sel)
}
