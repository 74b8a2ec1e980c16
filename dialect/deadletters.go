package dialect

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
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
	// AfterID and UpToID page oldest-first walks (replay, purge): only ids
	// above AfterID and, when UpToID > 0, at most UpToID.
	AfterID, UpToID int64
	// OldestFirst orders by id ascending instead of newest first.
	OldestFirst bool
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
	order := "id DESC"
	if f.OldestFirst {
		order = "id"
	}
	q := d.sb.Select(columns).From(TableDeadLetters).OrderBy(order)
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
	if f.AfterID > 0 {
		q = q.Where(sq.Gt{"id": f.AfterID})
	}
	if f.UpToID > 0 {
		q = q.Where(sq.LtOrEq{"id": f.UpToID})
	}
	if f.Limit > 0 {
		q = q.Limit(uint64(f.Limit))
	}
	return q
}

// DeadLetterSpan is the extent of a selection of dead letters.
type DeadLetterSpan struct {
	Count     int64
	Low, High int64 // lowest and highest id; 0 when Count is 0
}

func (d *sqlDialect) DeadLetterSpan(ctx context.Context, db *sql.DB, f DeadLetterFilter) (DeadLetterSpan, error) {
	var sp DeadLetterSpan
	var lo, hi sql.NullInt64
	if err := d.one(ctx, db, d.deadLetterSpanSQL(f), &sp.Count, &lo, &hi); err != nil {
		return DeadLetterSpan{}, err
	}
	sp.Low, sp.High = lo.Int64, hi.Int64
	return sp, nil
}

// deadLetterSpanSQL counts the dead letters f selects and finds their
// lowest and highest ids.
func (d *sqlDialect) deadLetterSpanSQL(f DeadLetterFilter) sq.Sqlizer {
	return d.sb.Select("COUNT(*)", "MIN(id)", "MAX(id)").FromSelect(d.listDeadLettersSQL(f, "id"), "sel")
}

// MaxReplayIDs is the most dead letters ReplayDeadLetters and
// DeleteDeadLetters take in one call (one transaction).
const MaxReplayIDs = 1000

// ReplayOutcome is what ReplayDeadLetters did with its ids.
type ReplayOutcome struct {
	Replayed int64     // moved into the outbox
	Refused  []Refusal // left in the dead-letter table, by id
}

// Refusal is a dead letter that a replay left where it is, and why.
type Refusal struct {
	ID        int64
	MessageID string
	// NewerID is the newer dead letter of the same message id, when that
	// is why (only the newest of a message id is replayed); 0 when the
	// message id is pending in the outbox again.
	NewerID int64
}

// Reason says why r was refused.
func (r Refusal) Reason() string {
	if r.NewerID > 0 {
		return fmt.Sprintf("dead letter %d is a newer one of the same message id (only the newest is replayed)", r.NewerID)
	}
	return "its message id is pending in the outbox again"
}

func (d *sqlDialect) ReplayDeadLetters(ctx context.Context, db *sql.DB, ids []int64) (ReplayOutcome, error) {
	if len(ids) == 0 {
		return ReplayOutcome{}, nil
	}
	if len(ids) > MaxReplayIDs {
		return ReplayOutcome{}, &TooManyIDsError{N: len(ids), Max: MaxReplayIDs}
	}
	var out ReplayOutcome
	err := d.inTx(ctx, db, func(tx *sql.Tx) error {
		var err error
		out, err = d.replayTx(ctx, tx, ids)
		return err
	})
	if err != nil {
		return ReplayOutcome{}, err
	}
	return out, nil
}

// replayTx moves the dead letters of ids that still exist back into the
// outbox, in one transaction: lock them (a concurrent replay waits, then
// finds them gone), set aside those it must refuse (message id pending
// again, or an older dead letter of a message id that has a newer one),
// copy the rest, delete them.
func (d *sqlDialect) replayTx(ctx context.Context, tx *sql.Tx, ids []int64) (ReplayOutcome, error) {
	var out ReplayOutcome
	if d.f.lockRows {
		locked, err := querySq(ctx, d, tx, d.lockDeadLettersSQL(ids), scanOne[int64])
		if err != nil || len(locked) == 0 {
			return out, err
		}
		ids = locked
	}
	scan := func(rows *sql.Rows, r *Refusal) error { return rows.Scan(&r.ID, &r.MessageID, &r.NewerID) }
	pending, err := querySq(ctx, d, tx, d.pendingAgainSQL(ids), scan)
	if err != nil {
		return out, err
	}
	older, err := querySq(ctx, d, tx, d.olderDuplicatesSQL(ids), scan)
	if err != nil {
		return out, err
	}
	out.Refused = mergeRefusals(pending, older)
	rest := slices.DeleteFunc(slices.Clone(ids), func(id int64) bool {
		return slices.ContainsFunc(out.Refused, func(r Refusal) bool { return r.ID == id })
	})
	if len(rest) == 0 {
		return out, nil
	}
	if _, err := d.execSq(ctx, tx, d.replaySQL(rest)); err != nil {
		return out, err // a unique violation: enqueued again meanwhile; try again
	}
	res, err := d.execSq(ctx, tx, d.deleteDeadLettersSQL(rest))
	if err != nil {
		return out, err
	}
	out.Replayed, err = res.RowsAffected()
	return out, err
}

// mergeRefusals merges two lists of refusals sorted by id, one per id
// (pending again wins).
func mergeRefusals(pending, older []Refusal) []Refusal {
	out := slices.Clone(pending)
	for _, r := range older {
		if !slices.ContainsFunc(pending, func(p Refusal) bool { return p.ID == r.ID }) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Refusal) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// lockDeadLettersSQL locks the dead letters of ids that still exist.
func (d *sqlDialect) lockDeadLettersSQL(ids []int64) sq.Sqlizer {
	return d.sb.Select("id").From(TableDeadLetters).Where(sq.Eq{"id": ids}).OrderBy("id").Suffix("FOR UPDATE")
}

// pendingAgainSQL finds the dead letters of ids whose message id is in the
// outbox again.
func (d *sqlDialect) pendingAgainSQL(ids []int64) sq.Sqlizer {
	return d.sb.Select("dl.id", "dl.message_id", "0").
		From(TableDeadLetters + " AS dl").
		Join(TableMessages + " AS m ON m.message_id = dl.message_id").
		Where(sq.Eq{"dl.id": ids}).OrderBy("dl.id")
}

// olderDuplicatesSQL finds the dead letters of ids that have a newer dead
// letter of the same message id (through the message_id index), with the
// newest of them: only that one may be replayed, the outbox holds a
// message id once.
func (d *sqlDialect) olderDuplicatesSQL(ids []int64) sq.Sqlizer {
	return d.sb.Select("dl.id", "dl.message_id", "MAX(n.id)").
		From(TableDeadLetters+" AS dl").
		Join(TableDeadLetters+" AS n ON n.message_id = dl.message_id AND n.id > dl.id").
		Where(sq.Eq{"dl.id": ids}).GroupBy("dl.id", "dl.message_id").OrderBy("dl.id")
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
// longer than olderThan, by the database clock: a range of the dead_at
// index (migration 00003) from its start, which ends at once when none is
// old enough (it used to walk the primary key, every row when none was).
func (d *sqlDialect) pruneCandidatesSQL(olderThan time.Duration, limit int) sq.Sqlizer {
	return d.sb.Select("id").From(TableDeadLetters).
		Where(sq.Expr("dead_at < "+d.f.later, -olderThan.Microseconds())).
		OrderBy("dead_at").Limit(uint64(limit))
}

// pruneDeadLettersSQL deletes the candidates, checking their age again.
func (d *sqlDialect) pruneDeadLettersSQL(ids []int64, olderThan time.Duration) sq.Sqlizer {
	return d.sb.Delete(TableDeadLetters).Where(sq.Eq{"id": ids}).
		Where(sq.Expr("dead_at < "+d.f.later, -olderThan.Microseconds()))
}
