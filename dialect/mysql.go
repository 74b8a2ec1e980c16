package dialect

import (
	"strings"
	"time"
)

// MySQL returns the dialect for MySQL 8.0 and MariaDB 10.6 and later. It
// uses only SQL that both accept (no RETURNING) and keeps time in UTC
// (UTC_TIMESTAMP), whatever the session time zone. Use it with
// github.com/go-sql-driver/mysql; parseTime=true is optional.
//
// Every statement it runs is in testdata/mysql.
func MySQL() Dialect {
	return newSQLDialect(flavor{
		name:  NameMySQL,
		now:   "UTC_TIMESTAMP(6)",
		later: "(UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)",
		age:   "TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6))",
		// No RETURNING: shards are taken in a short READ COMMITTED
		// transaction (SELECT ... FOR UPDATE SKIP LOCKED, UPDATE, SELECT).
		skipLocked:    "FOR UPDATE SKIP LOCKED",
		lockRows:      true,
		readCommitted: true,
		// Acks, retries and dead letters reach their rows by primary key
		// only, so they never wait on an application's open transaction;
		// every relay statement carries its deadline to the server.
		joinIDs:         true,
		boundOnServer:   true,
		insertIgnore:    "IGNORE",
		upsertHeartbeat: "ON DUPLICATE KEY UPDATE heartbeat_at = UTC_TIMESTAMP(6)",
		// X'..' is a binary string whatever sql_mode and the connection's
		// character set say; topics are ASCII, ids UTF-8 bytes.
		bytesLiteral:    mysqlHex,
		textLiteral:     func(b *strings.Builder, s string) { mysqlHex(b, []byte(s)) },
		contains:        "LOCATE(?, last_error) > 0",
		forceShardIndex: true,
		readOnPrimary:   true,
		// DATETIME(6) columns hold UTC; the driver writes a time in its
		// location, UTC unless the DSN says loc=.
		timeArg: func(t time.Time) any { return t.UTC().Format(mysqlLayout) },
	})
}

func mysqlHex(b *strings.Builder, v []byte) {
	b.WriteString("X'")
	writeHex(b, v)
	b.WriteByte('\'')
}
