// Package plainsql holds the hand-written SQL that the benchmarks compare
// the library with: what a user would write with database/sql and no
// outbox library.
package plainsql

import (
	"strconv"
	"strings"

	"github.com/outboxrelay/outbox/dialect"
)

// Now is each dialect's database clock, as its migrations store it.
var Now = map[dialect.Name]string{
	"postgres": "now()",
	"mysql":    "UTC_TIMESTAMP(6)",
	"sqlite":   "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
}

// Insert is a multi-row INSERT of rows outbox rows with bound parameters
// (message_id, topic, msg_key, key_hash, payload, headers, shard per row)
// for the dialect named dialectName: the floor Enqueue is compared with.
func Insert(dialectName dialect.Name, rows int) string {
	return InsertInto(dialect.TableMessages, dialectName, rows)
}

// InsertInto is Insert into table, a table with the outbox table's
// columns.
func InsertInto(table string, dialectName dialect.Name, rows int) string {
	var q strings.Builder
	q.WriteString("INSERT INTO " + table +
		" (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at) VALUES ")
	n := 0
	for i := range rows {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('(')
		for c := range 7 {
			if c > 0 {
				q.WriteByte(',')
			}
			n++
			if dialectName == dialect.NamePostgres {
				q.WriteString("$" + strconv.Itoa(n))
			} else {
				q.WriteByte('?')
			}
		}
		q.WriteString("," + Now[dialectName] + "," + Now[dialectName] + ")")
	}
	return q.String()
}
