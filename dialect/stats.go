package dialect

import (
	"context"
	"database/sql"
	"time"

	sq "github.com/Masterminds/squirrel"
)

func (d *sqlDialect) Stats(ctx context.Context, db *sql.DB) (Stats, error) {
	q, args, err := d.statsSQL().ToSql()
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	var retrying, delayed sql.NullInt64
	var age sql.NullFloat64
	if err := db.QueryRowContext(ctx, d.bounded(ctx, q), args...).Scan(&s.Pending, &retrying, &delayed, &age, &s.DeadLetters); err != nil {
		return Stats{}, err
	}
	s.Retrying, s.Delayed = retrying.Int64, delayed.Int64
	if age.Valid && age.Float64 > 0 {
		s.OldestAge = time.Duration(age.Float64) * time.Microsecond
	}
	return s, nil
}

func (d *sqlDialect) statsSQL() sq.Sqlizer {
	return d.sb.Select("COUNT(*)",
		"SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END)",
		"SUM(CASE WHEN available_at > "+d.f.now+" THEN 1 ELSE 0 END)",
		d.f.age,
		"(SELECT COUNT(*) FROM "+TableDeadLetters+")").
		From(TableMessages)
}

// MaxPendingShard returns the highest shard of a pending message (ok is
// false when the outbox is empty). The SQL is the same on every dialect and
// uses the (shard, id) index.
func MaxPendingShard(ctx context.Context, db *sql.DB) (shard int, ok bool, err error) {
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, maxPendingShardSQL).Scan(&v); err != nil {
		return 0, false, err
	}
	return int(v.Int64), v.Valid, nil
}

const maxPendingShardSQL = "SELECT MAX(shard) FROM " + TableMessages
