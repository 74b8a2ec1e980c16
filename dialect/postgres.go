package dialect

import (
	"strings"
	"time"
)

// Postgres returns the dialect for PostgreSQL 12 and later. Use it with any
// database/sql driver for PostgreSQL (lib/pq, pgx's stdlib).
//
// Its migrations install a statement-level trigger that notifies
// NotifyChannel when outbox rows are inserted, so an idle relay that
// listens wakes up the moment a transaction commits.
//
// Every statement it runs is in testdata/postgres.
func Postgres() Dialect {
	return newSQLDialect(flavor{
		name:   NamePostgres,
		dollar: true,
		now:    "now()",
		later:  "(now() + CAST(? AS DOUBLE PRECISION) * INTERVAL '1 microsecond')",
		age:    "EXTRACT(EPOCH FROM (now() - MIN(created_at))) * 1000000",
		// One UPDATE ... WHERE shard IN (SELECT ... FOR UPDATE SKIP LOCKED)
		// RETURNING takes free shards.
		returning:       true,
		skipLocked:      "FOR UPDATE SKIP LOCKED",
		lockRows:        true,
		onConflict:      "ON CONFLICT (shard) DO NOTHING",
		upsertHeartbeat: "ON CONFLICT (relay_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
		// E'...' strings read the same whatever standard_conforming_strings
		// says: bytea in its hex input form, text escaped (it is UTF-8
		// without NUL: Validate sees to it).
		bytesLiteral: func(b *strings.Builder, v []byte) {
			b.WriteString(`E'\\x`)
			writeHex(b, v)
			b.WriteString(`'::bytea`)
		},
		textLiteral: func(b *strings.Builder, s string) {
			b.WriteString("E'")
			for i := 0; i < len(s); i++ {
				switch c := s[i]; c {
				case '\\', '\'':
					b.WriteByte(c)
					b.WriteByte(c)
				default:
					b.WriteByte(c)
				}
			}
			b.WriteByte('\'')
		},
		notify:   true,
		contains: "strpos(last_error, ?) > 0",
		timeArg:  func(t time.Time) any { return t.UTC() },
	})
}
