package dialect

import "time"

// sqliteNow is the current time in integer microseconds since the Unix
// epoch, the form the SQLite dialect stores times in. SQLite has no server:
// its clock is the clock of the machine that holds the file, which every
// process using the file shares.
const sqliteNow = "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"

// SQLite returns the dialect for SQLite 3.35 and later (RETURNING). It is
// written for modernc.org/sqlite (pure Go). Open the database in WAL mode
// with a busy timeout and immediate transactions, for example
//
//	file:app.db?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate
//
// SQLite has one writer at a time, so the claims are plain compare-and-set
// updates, and Insert binds its values (in-process, a prepare costs no
// round trip).
//
// Every statement it runs is in testdata/sqlite.
func SQLite() Dialect {
	return newSQLDialect(flavor{
		name:            NameSQLite,
		now:             sqliteNow,
		later:           "(" + sqliteNow + " + ?)",
		age:             "(" + sqliteNow + " - MIN(created_at))",
		returning:       true,
		insertIgnore:    "OR IGNORE",
		upsertHeartbeat: "ON CONFLICT (relay_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
		nullFlags:       true,
		shardNoIndex:    true,
		contains:        "instr(last_error, ?) > 0",
		timeArg:         func(t time.Time) any { return t.UnixMicro() },
	})
}
