package dialecttest

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// horizon returns the dialect's Horizon; every dialect of the package
// implements it (returning ErrNoHorizon where the database cannot tell).
func (s suite) horizon(t *testing.T) dialect.Horizon {
	t.Helper()
	h, ok := s.Dialect.(dialect.Horizon)
	if !ok {
		t.Fatalf("%s does not implement dialect.Horizon", s.Dialect.Name())
	}
	return h
}

// settleWaitsForOpenInserts checks the settle marks a relay's read floor
// rests on: a mark counts every id handed out when it was taken, and it is
// settled only once every transaction that could still commit one of
// those ids has ended. An insert left open (a late committer) keeps every
// mark taken while it runs unsettled; its end settles them.
func (s suite) settleWaitsForOpenInserts(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	h := s.horizon(t)
	s.insert(t, db, onShard("a", "k", 0), onShard("b", "k", 1))
	m1, _, err := h.Settle(ctx, db, dialect.SettleMark{})
	if s.Dialect.Name() == dialect.NameMySQL {
		if !errors.Is(err, dialect.ErrNoHorizon) {
			t.Fatalf("Settle on MySQL: %v, want ErrNoHorizon", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	first := s.read(t, db, allShards(), 10)
	if len(first) != 2 || m1.MaxID < first[1].RowID || !m1.Settled() {
		t.Fatalf("mark after two committed rows (ids %d, %d): max %d settled %v, want settled at or above both",
			first[0].RowID, first[1].RowID, m1.MaxID, m1.Settled())
	}
	if s.Dialect.Name() == dialect.NameSQLite {
		return // one writer at a time: ids are handed out in commit order
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := s.Dialect.Insert(ctx, tx, []dialect.InsertRow{onShard("late", "late", 0)}); err != nil {
		t.Fatal(err)
	}
	s.insert(t, db, onShard("after", "k2", 0))
	m2, prev, err := h.Settle(ctx, db, m1)
	if err != nil {
		t.Fatal(err)
	}
	after := s.read(t, db, allShards(), 10)
	if !prev || m2.MaxID < after[len(after)-1].RowID || m2.Settled() {
		t.Fatalf("mark with an insert open: previous settled %v (want true), max %d (want >= %d), settled %v (want false)",
			prev, m2.MaxID, after[len(after)-1].RowID, m2.Settled())
	}
	m3, prev, err := h.Settle(ctx, db, m2)
	if err != nil {
		t.Fatal(err)
	}
	if prev || m3.Settled() {
		t.Fatalf("the open insert's marks settled (previous %v, new %v) while it runs", prev, m3.Settled())
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	_, prev, err = h.Settle(ctx, db, m3)
	if err != nil {
		t.Fatal(err)
	}
	if !prev {
		t.Fatal("a mark stayed unsettled after the insert it waited for committed")
	}

	// Without the partial index LowestDeferred would scan the table: no
	// horizon until it is back.
	if _, err := db.ExecContext(ctx, "DROP INDEX outbox_messages_deferred"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Settle(ctx, db, m3); !errors.Is(err, dialect.ErrNoHorizon) {
		t.Fatalf("Settle without the deferred index: %v, want ErrNoHorizon", err)
	}
	if _, err := db.ExecContext(ctx, "CREATE INDEX outbox_messages_deferred ON "+dialect.TableMessages+" (id) WHERE available_at > created_at"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Settle(ctx, db, m3); err != nil {
		t.Fatalf("Settle with the index back: %v", err)
	}

	// A sequence that caches ids hands them out out of order across
	// sessions: no horizon, and the relay reads from the lowest id.
	if _, err := db.ExecContext(ctx, "ALTER SEQUENCE "+pgSerialSequence(t, db)+" CACHE 20"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Settle(ctx, db, m3); !errors.Is(err, dialect.ErrNoHorizon) {
		t.Fatalf("Settle with a cached sequence: %v, want ErrNoHorizon", err)
	}
}

// pgSerialSequence names the sequence of the outbox's id column.
func pgSerialSequence(t *testing.T, db *sql.DB) string {
	t.Helper()
	var name string
	if err := db.QueryRow("SELECT pg_get_serial_sequence('" + dialect.TableMessages + "', 'id')").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// lowestDeferred checks the other bound of the read floor: the lowest row
// of a shard set that a read may have passed because it was not available
// (delayed at enqueue, or waiting for a retry), whether or not it is
// available now, until it is gone.
func (s suite) lowestDeferred(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	h := s.horizon(t)
	if s.Dialect.Name() == dialect.NameMySQL {
		if _, _, err := h.LowestDeferred(ctx, db, []int{0}); !errors.Is(err, dialect.ErrNoHorizon) {
			t.Fatalf("LowestDeferred on MySQL: %v, want ErrNoHorizon", err)
		}
		return
	}
	lowest := func(shards ...int) (int64, bool) {
		t.Helper()
		id, ok, err := h.LowestDeferred(ctx, db, shards)
		if err != nil {
			t.Fatal(err)
		}
		return id, ok
	}
	delayed := onShard("delayed", "d", 1)
	delayed.Delay = 400 * time.Millisecond
	s.insert(t, db, onShard("a", "a", 0), delayed, onShard("b", "b", 0), onShard("c", "c", 1))
	if _, ok := lowest(0); ok {
		t.Fatal("shard 0 has a deferred row, but none was delayed or retried")
	}
	if _, ok := lowest(); ok {
		t.Fatal("no shards have a deferred row")
	}
	recs := s.read(t, db, allShards(), 10)
	if len(recs) != 3 || recs[0].MessageID != "a" {
		t.Fatalf("read %v, want a, b, c (the delayed row not yet)", ids(recs))
	}
	id, ok := lowest(0, 1)
	if !ok || id >= recs[1].RowID || id <= recs[0].RowID {
		t.Fatalf("lowest deferred of shards 0, 1: %d %v, want the delayed row between a (%d) and b (%d)", id, ok, recs[0].RowID, recs[1].RowID)
	}
	// b waits for a retry: shard 0 has a deferred row now.
	if err := s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: recs[1].RowID, Delay: time.Hour, Err: "x"}}); err != nil {
		t.Fatal(err)
	}
	if got, ok := lowest(0); !ok || got != recs[1].RowID {
		t.Fatalf("lowest deferred of shard 0 after a retry: %d %v, want %d", got, ok, recs[1].RowID)
	}
	// Available again, the delayed row still counts until it is gone.
	time.Sleep(delayed.Delay)
	if got, ok := lowest(1); !ok || got != id {
		t.Fatalf("lowest deferred of shard 1 once available: %d %v, want %d", got, ok, id)
	}
	if _, err := s.Dialect.Ack(ctx, db, []int64{id}); err != nil {
		t.Fatal(err)
	}
	if _, ok := lowest(1); ok {
		t.Fatal("shard 1 has a deferred row after the delayed one was acknowledged")
	}
}

// readAfter checks ReadRequest.After: a read leaves out the rows at or
// below it.
func (s suite) readAfter(t *testing.T, db *sql.DB) {
	s.insert(t, db, onShard("a", "k", 0), onShard("b", "k", 0), onShard("c", "k", 1))
	all := s.read(t, db, allShards(), 10)
	recs, err := s.Dialect.ReadBatch(ctxT(t), db, dialect.ReadRequest{Shards: allShards(), Limit: 10, After: all[0].RowID})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(recs); len(got) != 2 || got[0] != "b" || got[1] != "c" {
		t.Fatalf("read after a: %v, want b, c", got)
	}
}
