package dialect

import (
	"context"
	"database/sql"
	"time"

	sq "github.com/Masterminds/squirrel"
)

// The operators' statements on the dead-letter table: list, replay into
// the outbox, delete, prune. They bind their values (squirrel) and run
// outside the relay's hot paths.

// DeadLetter is a row of the dead-letter table.
type DeadLetter struct {
	ID        int64 // the dead-letter table's own id
	MessageID string
	Topic     string
	Key       []byte
	Value     []byte
	Headers   []byte // encoded as in the outbox table
	Shard     int
	Attempts  int    // failed attempts, the last one included
	LastError string // why it was dead-lettered
	CreatedAt time.Time
	DeadAt    time.Time
}

// DeadLetterFilter selects dead letters. A zero field selects everything.
type DeadLetterFilter struct {
	IDs           []int64   // only these ids
	Topic         string    // only this topic
	Since         time.Time // dead at or after Since
	Before        time.Time // dead before Before
	ErrorContains string    // last error contains this text (case as the database compares)
	// BelowID pages newest-first listings: only ids below it.
	BelowID int64
	// Limit is the most rows to return; zero or negative means no limit.
	Limit int
}

func (d *sqlDialect) ListDeadLetters(ctx context.Context, db *sql.DB, f DeadLetterFilter) ([]DeadLetter, error) {
	return querySq(ctx, d, db, d.listDeadLettersSQL(f, deadLetterListColumns), scanDeadLetter)
}

func (d *sqlDialect) DeadLetterIDs(ctx context.Context, db *sql.DB, f DeadLetterFilter) ([]int64, error) {
	return querySq(ctx, d, db, d.listDeadLettersSQL(f, "id"), scanOne[int64])
}

const deadLetterListColumns = "id, message_id, topic, msg_key, payload, headers, shard, attempts, last_error, created_at, dead_at"

func scanDeadLetter(rows *sql.Rows, dl *DeadLetter) error {
	var lastErr sql.NullString
	var created, dead dbTime
	if err := rows.Scan(&dl.ID, &dl.MessageID, &dl.Topic, &dl.Key, &dl.Value, &dl.Headers, &dl.Shard,
		&dl.Attempts, &lastErr, &created, &dead); err != nil {
		return err
	}
	dl.LastError, dl.CreatedAt, dl.DeadAt = lastErr.String, created.t, dead.t
	return nil
}

// listDeadLettersSQL selects columns of the dead letters f selects, newest
// (highest id) first.
func (d *sqlDialect) listDeadLettersSQL(f DeadLetterFilter, columns string) sq.SelectBuilder {
	q := d.sb.Select(columns).From(TableDeadLetters).OrderBy("id DESC")
	if len(f.IDs) > 0 {
		q = q.Where(sq.Eq{"id": f.IDs})
	}
	if f.Topic != "" {
		q = q.Where(sq.Eq{"topic": f.Topic})
	}
	if !f.Since.IsZero() {
		q = q.Where(sq.GtOrEq{"dead_at": d.f.timeArg(f.Since)})
	}
	if !f.Before.IsZero() {
		q = q.Where(sq.Lt{"dead_at": d.f.timeArg(f.Before)})
	}
	if f.ErrorContains != "" {
		q = q.Where(d.f.contains, f.ErrorContains)
	}
	if f.BelowID > 0 {
		q = q.Where(sq.Lt{"id": f.BelowID})
	}
	if f.Limit > 0 {
		q = q.Limit(uint64(f.Limit))
	}
	return q
}

// MaxReplayIDs is the most dead letters ReplayDeadLetters and
// DeleteDeadLetters take in one call (one transaction).
const MaxReplayIDs = 1000

func (d *sqlDialect) ReplayDeadLetters(ctx context.Context, db *sql.DB, ids []int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	if len(ids) > MaxReplayIDs {
		return 0, &TooManyIDsError{N: len(ids), Max: MaxReplayIDs}
	}
	var n int64
	err := d.inTx(ctx, db, func(tx *sql.Tx) error {
		var err error
		n, err = d.replayTx(ctx, tx, ids)
		return err
	})
	return n, err
}

// replayTx moves the dead letters of ids that still exist back into the
// outbox, in one transaction: lock them (a concurrent replay waits, then
// finds them gone), refuse if a message id is pending again, copy, delete.
func (d *sqlDialect) replayTx(ctx context.Context, tx *sql.Tx, ids []int64) (int64, error) {
	if d.f.lockRows {
		locked, err := querySq(ctx, d, tx, d.lockDeadLettersSQL(ids), scanOne[int64])
		if err != nil || len(locked) == 0 {
			return 0, err
		}
		ids = locked
	}
	pending, err := querySq(ctx, d, tx, d.pendingAgainSQL(ids), func(rows *sql.Rows, p *pendingAgain) error {
		return rows.Scan(&p.id, &p.messageID)
	})
	if err != nil {
		return 0, err
	}
	if len(pending) > 0 {
		e := &PendingAgainError{}
		for _, p := range pending {
			e.IDs = append(e.IDs, p.id)
			e.MessageIDs = append(e.MessageIDs, p.messageID)
		}
		return 0, e
	}
	if _, err := d.execSq(ctx, tx, d.replaySQL(ids)); err != nil {
		if IsUniqueViolation(err) {
			// Two dead letters of one message id in the same chunk.
			return 0, &PendingAgainError{IDs: ids, err: err}
		}
		return 0, err
	}
	res, err := d.execSq(ctx, tx, d.deleteDeadLettersSQL(ids))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

type pendingAgain struct {
	id        int64
	messageID string
}

// lockDeadLettersSQL locks the dead letters of ids that still exist.
func (d *sqlDialect) lockDeadLettersSQL(ids []int64) sq.Sqlizer {
	return d.sb.Select("id").From(TableDeadLetters).Where(sq.Eq{"id": ids}).OrderBy("id").Suffix("FOR UPDATE")
}

// pendingAgainSQL finds the dead letters of ids whose message id is in the
// outbox again.
func (d *sqlDialect) pendingAgainSQL(ids []int64) sq.Sqlizer {
	return d.sb.Select("dl.id", "dl.message_id").
		From(TableDeadLetters + " AS dl").
		Join(TableMessages + " AS m ON m.message_id = dl.message_id").
		Where(sq.Eq{"dl.id": ids}).OrderBy("dl.id")
}

// replaySQL copies the dead letters of ids into the outbox in their order,
// as new messages: attempts 0, available now, no last error, the same
// message id, key, shard, value and headers.
func (d *sqlDialect) replaySQL(ids []int64) sq.Sqlizer {
	// The inner select keeps ? placeholders: the insert numbers them all.
	sel := sq.Select("message_id, topic, msg_key, key_hash, payload, headers, shard").
		Column(d.f.now).Column(d.f.now).Column("0").
		From(TableDeadLetters).Where(sq.Eq{"id": ids}).OrderBy("id")
	return d.sb.Insert(TableMessages).
		Columns("message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at, attempts").
		Select(sel)
}

func (d *sqlDialect) deleteDeadLettersSQL(ids []int64) sq.Sqlizer {
	return d.sb.Delete(TableDeadLetters).Where(sq.Eq{"id": ids})
}

func (d *sqlDialect) DeleteDeadLetters(ctx context.Context, db *sql.DB, ids []int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	if len(ids) > MaxReplayIDs {
		return 0, &TooManyIDsError{N: len(ids), Max: MaxReplayIDs}
	}
	res, err := d.execSq(ctx, db, d.deleteDeadLettersSQL(ids))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (d *sqlDialect) PruneDeadLetters(ctx context.Context, db *sql.DB, olderThan time.Duration, limit int) (int64, error) {
	if limit <= 0 || limit > MaxReplayIDs {
		limit = MaxReplayIDs
	}
	ids, err := querySq(ctx, d, db, d.pruneCandidatesSQL(olderThan, limit), scanOne[int64])
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	res, err := d.execSq(ctx, db, d.pruneDeadLettersSQL(ids, olderThan))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// pruneCandidatesSQL finds up to limit of the oldest dead letters dead for
// longer than olderThan, by the database clock. It walks the primary key
// from the oldest row and stops at limit: dead_at grows with id.
func (d *sqlDialect) pruneCandidatesSQL(olderThan time.Duration, limit int) sq.Sqlizer {
	return d.sb.Select("id").From(TableDeadLetters).
		Where(sq.Expr("dead_at < "+d.f.later, -olderThan.Microseconds())).
		OrderBy("id").Limit(uint64(limit))
}

// pruneDeadLettersSQL deletes the candidates, checking their age again.
func (d *sqlDialect) pruneDeadLettersSQL(ids []int64, olderThan time.Duration) sq.Sqlizer {
	return d.sb.Delete(TableDeadLetters).Where(sq.Eq{"id": ids}).
		Where(sq.Expr("dead_at < "+d.f.later, -olderThan.Microseconds()))
}
