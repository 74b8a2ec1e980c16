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
		res, err := db.ExecContext(ctx, d.ackSQL(chunk))
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

// ackSQL deletes the rows of ids.
func (d *sqlDialect) ackSQL(ids []int64) string {
	s := d.newStmt(false, 64+21*len(ids))
	s.WriteString("DELETE FROM " + TableMessages + " WHERE id IN (")
	s.ints(ids)
	s.WriteByte(')')
	return s.String()
}

func (d *sqlDialect) Retry(ctx context.Context, db *sql.DB, retries []Retry) error {
	for len(retries) > 0 {
		chunk := retries[:min(len(retries), maxIDsPerStatement/4)]
		retries = retries[len(chunk):]
		if _, err := execSq(ctx, db, d.retrySQL(chunk)); err != nil {
			return err
		}
	}
	return nil
}

// retrySQL counts an attempt of each row and schedules the next one.
func (d *sqlDialect) retrySQL(retries []Retry) sq.Sqlizer {
	avail := sq.Case("id")
	lastErr := sq.Case("id")
	ids := make([]int64, len(retries))
	for i, r := range retries {
		ids[i] = r.RowID
		avail = avail.When(sq.Expr("?", r.RowID), d.later(max(r.Delay, 0).Microseconds()))
		lastErr = lastErr.When(sq.Expr("?", r.RowID), sq.Expr("?", r.Err))
	}
	return d.sb.Update(TableMessages).
		Set("attempts", sq.Expr("attempts + 1")).
		Set("available_at", avail).
		Set("last_error", lastErr).
		Where(sq.Eq{"id": ids})
}

const deadLetterColumns = "message_id, topic, msg_key, key_hash, payload, headers, shard, created_at"

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
			var err error
			if ids, err = querySq(ctx, tx, d.lockRowsSQL(ids), scanOne[int64]); err != nil || len(ids) == 0 {
				return err
			}
		}
		if _, err := execSq(ctx, tx, d.deadLetterSQL(ids, failures)); err != nil {
			return err
		}
		_, err := execSq(ctx, tx, d.deleteRowsSQL(ids))
		return err
	})
}

// deleteRowsSQL deletes the rows of ids (after their copy).
func (d *sqlDialect) deleteRowsSQL(ids []int64) sq.Sqlizer {
	return d.sb.Delete(TableMessages).Where(sq.Eq{"id": ids})
}

// lockRowsSQL locks the rows of ids that still exist.
func (d *sqlDialect) lockRowsSQL(ids []int64) sq.Sqlizer {
	return d.sb.Select("id").From(TableMessages).Where(sq.Eq{"id": ids}).Suffix("FOR UPDATE")
}

// deadLetterSQL copies the rows of ids into the dead-letter table with
// their attempt counted and their error.
func (d *sqlDialect) deadLetterSQL(ids []int64, failures []Failure) sq.Sqlizer {
	lastErr := sq.Case("id")
	for _, f := range failures {
		lastErr = lastErr.When(sq.Expr("?", f.RowID), sq.Expr("?", f.Err))
	}
	// The inner select keeps ? placeholders: the insert numbers them all.
	sel := sq.Select(deadLetterColumns, "attempts + 1").Column(lastErr).Column(d.f.now).
		From(TableMessages).Where(sq.Eq{"id": ids})
	return d.sb.Insert(TableDeadLetters).
		Columns(deadLetterColumns, "attempts", "last_error", "dead_at").
		Select(sel)
}
