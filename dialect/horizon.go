package dialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Where a relay's reads may start. Every acknowledged message leaves a dead
// row and dead index entries until vacuum (PostgreSQL) or purge (InnoDB)
// removes them, and neither can while any session holds an older snapshot.
// A read that starts at the lowest id walks all of them, on every batch. A
// relay therefore remembers a floor below which its shards hold no live row
// and reads above it. Two things can put a live row below a floor: a
// transaction still open that took a lower id (a late committer), and a row
// the read passed because it was not available yet (delayed, or waiting for
// a retry). SettleMark and LowestDeferred are how a relay rules both out.

// ErrNoHorizon is returned by Settle where the dialect cannot tell which
// transactions may still commit rows of the outbox (MySQL and MariaDB: InnoDB
// shows its transactions, but not which tables they wrote, only to users
// with the PROCESS privilege), or where the database is set up so that it
// cannot (a cached id sequence). The relay then reads from the lowest id.
var ErrNoHorizon = errors.New("dialect: cannot tell which outbox ids are settled")

// SettleMark is a point in the outbox's id sequence: MaxID, the highest id
// handed out when the mark was taken, and the transactions that were then
// able to commit a row at or below it. When they have all ended, every id up
// to MaxID is settled: its row is committed, or it will never exist.
type SettleMark struct {
	MaxID int64
	// pending names the transactions to wait for (PostgreSQL virtual
	// transaction ids); none: settled when taken.
	pending []string
}

// Settled reports whether every id up to m.MaxID was settled when m was
// taken.
func (m SettleMark) Settled() bool { return len(m.pending) == 0 }

// Horizon is implemented by dialects that can tell how far the ids of the
// outbox are settled. The dialects of this package implement it; Settle
// returns ErrNoHorizon where the database cannot tell.
type Horizon interface {
	// Settle takes a new mark and reports whether prev has settled since it
	// was taken (every transaction it waited for has ended). A zero prev
	// has nothing to wait for.
	Settle(ctx context.Context, db *sql.DB, prev SettleMark) (next SettleMark, prevSettled bool, err error)
	// LowestDeferred returns the lowest id among the rows of shards that
	// were ever not available when read (delayed at enqueue, or scheduled
	// for a retry), whether or not they are available now; ok is false
	// when there is none. A floor must stay below it.
	LowestDeferred(ctx context.Context, db *sql.DB, shards []int) (id int64, ok bool, err error)
}

var _ Horizon = (*sqlDialect)(nil)

func (d *sqlDialect) Settle(ctx context.Context, db *sql.DB, prev SettleMark) (SettleMark, bool, error) {
	switch d.f.name {
	case NamePostgres:
		return d.settlePostgres(ctx, db, prev)
	case NameSQLite:
		// One writer at a time, holding the write lock from its first
		// insert to its commit: ids are handed out in commit order, so
		// every id the newest committed allocation counted is settled.
		// sqlite_sequence is written in the same transaction as the row.
		var seq sql.NullInt64
		err := db.QueryRowContext(ctx, "SELECT seq FROM sqlite_sequence WHERE name = '"+TableMessages+"'").Scan(&seq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return SettleMark{}, false, err
		}
		return SettleMark{MaxID: seq.Int64}, true, nil
	default:
		return SettleMark{}, false, ErrNoHorizon
	}
}

// settleSQL reads, in this order, the highest id the outbox's identity
// sequence has handed out and the transactions that hold ROW EXCLUSIVE on
// the outbox table (every INSERT takes that lock before it draws an id, and
// keeps it to the end of its transaction); and whether any transaction of
// the previous mark still runs (a running transaction always holds the lock
// on its own virtual transaction id). The sub-select of the lock holders
// refers to s.l, so it runs after the sequence was read. It also reports
// what would make a mark wrong: a sequence with a cache (a session could
// hand out ids below the one read here later), a prepared transaction
// holding the lock (its virtual transaction id is not a running backend's,
// and changes across a restart: such a mark is never settled while one
// does), and whether the partial index that LowestDeferred needs exists
// and is valid (a failed CONCURRENTLY build leaves it invalid).
const settleSQL = `SELECT s.l, s.cache,
 ARRAY(SELECT DISTINCT k.virtualtransaction FROM pg_locks k
  WHERE k.locktype = 'relation' AND k.relation = s.rel AND k.mode = 'RowExclusiveLock'
   AND k.pid IS DISTINCT FROM pg_backend_pid() AND s.l >= 0),
 EXISTS (SELECT 1 FROM pg_locks k WHERE k.virtualtransaction = ANY (CAST($1 AS text[]))),
 EXISTS (SELECT 1 FROM pg_locks k WHERE k.locktype = 'relation' AND k.relation = s.rel AND k.mode = 'RowExclusiveLock' AND k.pid IS NULL),
 COALESCE((SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass('` + deferredIndex + `')), false)
FROM (SELECT COALESCE(pg_sequence_last_value(q.seqrelid), 0) AS l, q.seqcache AS cache, CAST('` + TableMessages + `' AS regclass) AS rel
 FROM pg_sequence q WHERE q.seqrelid = CAST(pg_get_serial_sequence('` + TableMessages + `', 'id') AS regclass) OFFSET 0) s`

// deferredIndex is the partial index of migration 00005 that LowestDeferred
// reads.
const deferredIndex = "outbox_messages_deferred"

func (d *sqlDialect) settlePostgres(ctx context.Context, db *sql.DB, prev SettleMark) (SettleMark, bool, error) {
	var (
		next                  SettleMark
		cache                 int64
		pending               string
		running, prepared, ok bool
	)
	err := db.QueryRowContext(ctx, settleSQL, textArray(prev.pending)).Scan(&next.MaxID, &cache, &pending, &running, &prepared, &ok)
	var st interface{ SQLState() string }
	switch {
	case errors.As(err, &st) && st.SQLState() == "42501":
		return SettleMark{}, false, fmt.Errorf("%w: the relay's role may not read the sequence of %s.id (GRANT SELECT ON SEQUENCE ... TO the relay's role): %v", ErrNoHorizon, TableMessages, err)
	case err != nil:
		return SettleMark{}, false, err
	case cache > 1:
		return SettleMark{}, false, fmt.Errorf("%w: the sequence of %s.id caches %d values per session (ALTER ... SET CACHE 1 to let relays skip dead rows)", ErrNoHorizon, TableMessages, cache)
	case !ok:
		return SettleMark{}, false, fmt.Errorf("%w: the index %s is missing or invalid (run relay migrate; drop an invalid one first)", ErrNoHorizon, deferredIndex)
	}
	next.pending = parseTextArray(pending)
	if prepared {
		// Never settled while a prepared transaction may hold ids.
		next.pending = append(next.pending, preparedPending)
		return next, false, nil
	}
	return next, !running, nil
}

// preparedPending stands, in a mark's pending list, for the prepared
// transactions that held the lock when it was taken: no running
// transaction has this virtual id, so it is the marks taken while none is
// prepared that settle.
const preparedPending = "-1/0"

// textArray writes ss as a PostgreSQL array literal. Virtual transaction
// ids are digits and a slash: nothing to quote.
func textArray(ss []string) string {
	return "{" + strings.Join(ss, ",") + "}"
}

// parseTextArray reads the array literal of virtual transaction ids that
// settleSQL returns.
func parseTextArray(s string) []string {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func (d *sqlDialect) LowestDeferred(ctx context.Context, db *sql.DB, shards []int) (int64, bool, error) {
	if d.f.name == NameMySQL {
		return 0, false, ErrNoHorizon // no partial index: the query would scan the table
	}
	if len(shards) == 0 {
		return 0, false, nil
	}
	ids := make([]int64, len(shards))
	for i, s := range shards {
		ids[i] = int64(s)
	}
	s := d.newStmt(false, 128+4*len(shards))
	// The condition is the partial index's own (outbox_messages_deferred):
	// the scan meets deferred rows only.
	s.WriteString("SELECT MIN(id) FROM " + TableMessages + " WHERE available_at > created_at AND shard IN (")
	s.ints(ids)
	s.WriteByte(')')
	var id sql.NullInt64
	rows, err := d.query(ctx, db, s.String())
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return 0, false, err
		}
	}
	return id.Int64, id.Valid, rows.Err()
}
