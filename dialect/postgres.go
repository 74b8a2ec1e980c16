package dialect

// Postgres returns the dialect for PostgreSQL 12 and later. Use it with any
// database/sql driver for PostgreSQL (lib/pq, pgx's stdlib).
//
// Its migrations install a statement-level trigger that notifies
// NotifyChannel when outbox rows are inserted, so an idle relay that
// listens wakes up the moment a transaction commits.
func Postgres() Dialect {
	return newSQLDialect(flavor{
		name:   "postgres",
		dollar: true,
		now:    "now()",
		plusMicros: func(base string) string {
			return "(" + base + " + CAST(? AS DOUBLE PRECISION) * INTERVAL '1 microsecond')"
		},
		ageMicros:        "EXTRACT(EPOCH FROM (now() - MIN(created_at))) * 1000000",
		returning:        true,
		skipLocked:       " FOR UPDATE SKIP LOCKED",
		forUpdate:        "FOR UPDATE",
		insertIgnore:     "INSERT",
		onConflictIgnore: " ON CONFLICT (shard) DO NOTHING",
		upsertHeartbeat:  " ON CONFLICT (relay_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
		notify:           true,
	})
}
