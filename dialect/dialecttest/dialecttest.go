// Package dialecttest is the conformance suite of the outbox dialects: the
// definition of a correct dialect. Every dialect of this module passes it
// against a real server, and a new dialect is done when it passes too:
//
//	func TestConformance(t *testing.T) {
//		dialecttest.Run(t, dialecttest.Harness{
//			Dialect: mydialect.New(),
//			Open:    openFreshMigratedDB, // isolated per call, closed at cleanup
//		})
//	}
package dialecttest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// Harness is what the suite needs from a dialect under test.
type Harness struct {
	// Dialect is the dialect under test.
	Dialect dialect.Dialect
	// Open returns a fresh database with the outbox migrations applied,
	// isolated from every other call and closed when tb ends.
	Open func(tb testing.TB) *sql.DB
}

// numShards is the shard count of the suite's databases.
const numShards = 8

type suite struct {
	Harness
}

// Run runs the whole suite, one subtest per property, in parallel.
func Run(t *testing.T, h Harness) {
	s := suite{h}
	tests := []struct {
		name string
		fn   func(*testing.T, *sql.DB)
	}{
		{"RollbackLeavesNothing", s.rollbackLeavesNothing},
		{"CommitMakesVisible", s.commitMakesVisible},
		{"RoundTrip", s.roundTrip},
		{"DuplicateMessageID", s.duplicateMessageID},
		{"ShardIDOrder", s.shardIDOrder},
		{"DelayedDelivery", s.delayedDelivery},
		{"RetryHoldsBackItsKeyOnly", s.retryHoldsBackItsKeyOnly},
		{"RetryBecomesAvailable", s.retryBecomesAvailable},
		{"ManyWaitingKeys", s.manyWaitingKeys},
		{"ReadExcludes", s.readExcludes},
		{"ReadMaxBytes", s.readMaxBytes},
		{"Ack", s.ack},
		{"DeadLetterMovesAtomically", s.deadLetter},
		{"DeadLetterRace", s.deadLetterRace},
		{"EnsureShards", s.ensureShards},
		{"ClaimersNeverShareAShard", s.claimersNeverShareAShard},
		{"ExpiredLeaseTakenOver", s.expiredLeaseTakenOver},
		{"Release", s.release},
		{"Heartbeat", s.heartbeat},
		{"Stats", s.stats},
		{"ConcurrentWritersAndClaimers", s.concurrent},
		{"LateCommitterBlocksNothing", s.lateCommitters},
		{"AbandonedStatementStops", s.abandonedStatementStops},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := h.Open(t)
			tc.fn(t, db)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func keyHash(key []byte) int64 {
	h := fnv.New64a()
	h.Write(key)
	return int64(h.Sum64())
}

// msg builds a row; key "" means no key.
func msg(id, key string, value string) dialect.InsertRow {
	m := dialect.InsertRow{MessageID: id, Topic: "orders", Value: []byte(value)}
	if key != "" {
		m.Key = []byte(key)
		m.KeyHash = keyHash(m.Key)
		m.Shard = int(uint64(m.KeyHash) % numShards)
	} else {
		m.Shard = int(uint64(keyHash([]byte(id))) % numShards)
	}
	return m
}

// onShard returns a row of key on shard, whatever the key's hash.
func onShard(id, key string, shard int) dialect.InsertRow {
	m := msg(id, key, id)
	m.Shard = shard
	return m
}

func allShards() []int {
	s := make([]int, numShards)
	for i := range s {
		s[i] = i
	}
	return s
}

func (s suite) insert(t *testing.T, db *sql.DB, msgs ...dialect.InsertRow) {
	t.Helper()
	ctx := ctxT(t)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Dialect.Insert(ctx, tx, msgs); err != nil {
		tx.Rollback()
		t.Fatalf("Insert: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func (s suite) read(t *testing.T, db *sql.DB, shards []int, limit int) []dialect.Row {
	t.Helper()
	recs, err := s.Dialect.ReadBatch(ctxT(t), db, dialect.ReadRequest{Shards: shards, Limit: limit})
	if err != nil {
		t.Fatalf("ReadBatch: %v", err)
	}
	return recs
}

func ids(recs []dialect.Row) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.MessageID
	}
	return out
}

func (s suite) rollbackLeavesNothing(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Dialect.Insert(ctx, tx, []dialect.InsertRow{msg("a", "k1", "1"), msg("b", "k2", "2"), msg("c", "", "3")}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := s.read(t, db, allShards(), 100); len(got) != 0 {
		t.Fatalf("rolled-back rows are visible: %v", ids(got))
	}
	st, err := s.Dialect.Stats(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 {
		t.Fatalf("Stats.Pending = %d after rollback, want 0", st.Pending)
	}
}

func (s suite) commitMakesVisible(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Dialect.Insert(ctx, tx, []dialect.InsertRow{msg("a", "k1", "1"), msg("b", "k1", "2")}); err != nil {
		t.Fatal(err)
	}
	// Another connection must not see uncommitted rows.
	if got := s.read(t, db, allShards(), 100); len(got) != 0 {
		tx.Rollback()
		t.Fatalf("uncommitted rows are visible to another connection: %v", ids(got))
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.read(t, db, allShards(), 100)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after commit read %v, want [a b]", got)
	}
}

func (s suite) roundTrip(t *testing.T, db *sql.DB) {
	big := bytes.Repeat([]byte{0, 1, 2, 0xff, 'x'}, 50_000)
	in := []dialect.InsertRow{
		msg("binary", "", ""),
		msg("nilkey", "", ""),
		msg("emptykey", "", ""),
		msg("nilvalue", "k", ""),
		msg("big", "k", ""),
		msg("utf8-ключ-🔑", "k", ""),
		// Quotes, backslashes and comment markers must reach the table as
		// they are, whether the dialect binds or writes literals.
		msg(`q'uo"te\\-- /*x*/ \x41 $$`, `k'\\`, ""),
	}
	in[0].Key, in[0].Value = []byte{0, 'a', 0, 0xfe}, []byte{0, 0, 0xff, 0}
	in[0].KeyHash = keyHash(in[0].Key)
	in[0].Headers = []byte{1, 2, 0, 3}
	in[1].Value = []byte("no key")
	in[2].Key, in[2].KeyHash, in[2].Value = []byte{}, keyHash(nil), []byte{}
	in[3].Value = nil
	in[4].Value = big
	in[5].Value = []byte("ünïcødé")
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	in[6].Value, in[6].Headers = all, []byte("'\\'")
	for i := range in {
		in[i].Shard = 3
	}
	s.insert(t, db, in...)
	got := s.read(t, db, []int{3}, 100)
	if len(got) != len(in) {
		t.Fatalf("read %d rows, want %d", len(got), len(in))
	}
	for i, r := range got {
		w := in[i]
		if r.MessageID != w.MessageID || r.Topic != w.Topic || r.Shard != 3 || r.Attempts != 0 {
			t.Errorf("row %d: got id=%q topic=%q shard=%d attempts=%d", i, r.MessageID, r.Topic, r.Shard, r.Attempts)
		}
		if !bytes.Equal(r.Key, w.Key) || (r.Key == nil) != (w.Key == nil) {
			t.Errorf("row %s: key %q (nil=%v), want %q (nil=%v)", w.MessageID, r.Key, r.Key == nil, w.Key, w.Key == nil)
		}
		if !bytes.Equal(r.Value, w.Value) || (r.Value == nil) != (w.Value == nil) {
			t.Errorf("row %s: value of %d bytes (nil=%v), want %d bytes (nil=%v)", w.MessageID, len(r.Value), r.Value == nil, len(w.Value), w.Value == nil)
		}
		if !bytes.Equal(r.Headers, w.Headers) {
			t.Errorf("row %s: headers %v, want %v", w.MessageID, r.Headers, w.Headers)
		}
		if d := time.Since(r.CreatedAt); d < -time.Minute || d > time.Minute {
			t.Errorf("row %s: created_at %v is %v from now: not UTC or not the database clock?", w.MessageID, r.CreatedAt, d)
		}
	}
}

func (s suite) duplicateMessageID(t *testing.T, db *sql.DB) {
	s.insert(t, db, msg("same", "k", "1"))
	ctx := ctxT(t)
	err := s.Dialect.Insert(ctx, db, []dialect.InsertRow{msg("same", "k", "2")})
	if err == nil {
		t.Fatal("second insert of the same message id succeeded")
	}
	if got := s.read(t, db, allShards(), 10); len(got) != 1 || string(got[0].Value) != "1" {
		t.Fatalf("after duplicate insert read %d rows, want the first one only", len(got))
	}
}

func (s suite) shardIDOrder(t *testing.T, db *sql.DB) {
	for tx := 0; tx < 10; tx++ {
		var batch []dialect.InsertRow
		for i := 0; i < 20; i++ {
			n := tx*20 + i
			batch = append(batch, onShard("m"+strconv.Itoa(n), "k"+strconv.Itoa(n%13), n%numShards))
		}
		s.insert(t, db, batch...)
	}
	got := s.read(t, db, []int{1, 6}, 1000)
	if len(got) != 50 {
		t.Fatalf("read %d rows of shards 1 and 6, want 50", len(got))
	}
	for i, r := range got {
		if r.Shard != 1 && r.Shard != 6 {
			t.Fatalf("row of shard %d returned for shards [1 6]", r.Shard)
		}
		if i > 0 && r.RowID <= got[i-1].RowID {
			t.Fatalf("rows not in id order: %d after %d", r.RowID, got[i-1].RowID)
		}
	}
	first := s.read(t, db, allShards(), 10)
	if want := []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}; !slices.Equal(ids(first), want) {
		t.Fatalf("limit 10 read %v, want the 10 oldest %v", ids(first), want)
	}
}

func (s suite) delayedDelivery(t *testing.T, db *sql.DB) {
	later := onShard("later", "k", 0)
	later.Delay = time.Hour
	soon := onShard("soon", "k2", 0)
	soon.Delay = 400 * time.Millisecond
	s.insert(t, db, later, soon, onShard("now", "k3", 0))
	if got := ids(s.read(t, db, []int{0}, 10)); !slices.Equal(got, []string{"now"}) {
		t.Fatalf("read %v, want only [now]", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := ids(s.read(t, db, []int{0}, 10))
		if slices.Equal(got, []string{"soon", "now"}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delayed message never became available: read %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s suite) retryHoldsBackItsKeyOnly(t *testing.T, db *sql.DB) {
	// One shard, three keys: a1 fails and waits; a2 (same key) must wait
	// behind it, b1 (other key) flows. A delayed c1 that never failed holds
	// back nothing: c2 flows.
	c1 := onShard("c1", "c", 2)
	c1.Delay = time.Hour
	s.insert(t, db, onShard("a1", "a", 2), onShard("b1", "b", 2), onShard("a2", "a", 2), c1, onShard("c2", "c", 2))
	recs := s.read(t, db, []int{2}, 10)
	if got := ids(recs); !slices.Equal(got, []string{"a1", "b1", "a2", "c2"}) {
		t.Fatalf("first read %v, want [a1 b1 a2 c2]", got)
	}
	ctx := ctxT(t)
	if err := s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: recs[0].RowID, Delay: time.Hour, Err: "broker said no"}}); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.read(t, db, []int{2}, 10)); !slices.Equal(got, []string{"b1", "c2"}) {
		t.Fatalf("after a1 failed, read %v, want [b1 c2]: a2 must wait behind a1, other keys flow", got)
	}
}

// manyWaitingKeys checks the hold-back with few and with many waiting keys
// (a dialect may switch strategy with the count): every waiting key holds
// back its later rows, and only those; an earlier row of a waiting key, a
// keyless row and rows of other keys flow.
func (s suite) manyWaitingKeys(t *testing.T, db *sql.DB) {
	for _, n := range []int{3, 150} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			shard := 10
			if n > 10 {
				shard = 11
			}
			var all []dialect.InsertRow
			early := onShard(fmt.Sprintf("n%d-early", n), fmt.Sprintf("n%d-w0", n), shard)
			all = append(all, early)
			for i := 0; i < n; i++ {
				key := fmt.Sprintf("n%d-w%d", n, i)
				all = append(all, onShard(key+"-1", key, shard), onShard(fmt.Sprintf("n%d-free%d", n, i), fmt.Sprintf("n%d-f%d", n, i), shard), onShard(key+"-2", key, shard))
			}
			nokey := onShard(fmt.Sprintf("n%d-nokey", n), "", shard)
			nokey.Key, nokey.KeyHash = nil, 0
			all = append(all, nokey)
			s.insert(t, db, all...)
			recs := s.read(t, db, []int{shard}, 10_000)
			if len(recs) != len(all) {
				t.Fatalf("first read got %d rows, want %d", len(recs), len(all))
			}
			var retries []dialect.Retry
			var want []string
			for _, r := range recs {
				switch {
				case strings.HasSuffix(r.MessageID, "-1"):
					retries = append(retries, dialect.Retry{RowID: r.RowID, Delay: time.Hour, Err: "no"})
				case strings.HasSuffix(r.MessageID, "-2"):
				default:
					want = append(want, r.MessageID)
				}
			}
			if err := s.Dialect.Retry(ctxT(t), db, retries); err != nil {
				t.Fatal(err)
			}
			if got := ids(s.read(t, db, []int{shard}, 10_000)); !slices.Equal(got, want) {
				t.Fatalf("with %d keys waiting read %d rows %v..., want %d rows %v...", n, len(got), got[:min(len(got), 6)], len(want), want[:min(len(want), 6)])
			}
			// A small limit still skips the held-back rows, in id order.
			if got := ids(s.read(t, db, []int{shard}, 2)); !slices.Equal(got, want[:2]) {
				t.Fatalf("limit 2 read %v, want %v", got, want[:2])
			}
		})
	}
}

func (s suite) readExcludes(t *testing.T, db *sql.DB) {
	s.insert(t, db, onShard("x1", "x", 7), onShard("x2", "x", 7), onShard("y1", "y", 7), onShard("x3", "x", 7))
	recs := s.read(t, db, []int{7}, 10)
	if len(recs) != 4 {
		t.Fatalf("read %v, want 4 rows", ids(recs))
	}
	got, err := s.Dialect.ReadBatch(ctxT(t), db, dialect.ReadRequest{Shards: []int{7}, Limit: 2, Exclude: []int64{recs[0].RowID, recs[2].RowID}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), []string{"x2", "x3"}) {
		t.Fatalf("read excluding x1 and y1 gave %v, want [x2 x3]", ids(got))
	}

	// Runs of consecutive ids and scattered ids: a dialect may write them
	// as ranges or as a list, but must leave out exactly the ids given.
	var more []dialect.InsertRow
	for i := 0; i < 150; i++ {
		more = append(more, onShard(fmt.Sprintf("r%03d", i), "", 8))
	}
	s.insert(t, db, more...)
	rows := s.read(t, db, []int{8}, 1000)
	if len(rows) != 150 {
		t.Fatalf("read %d rows, want 150", len(rows))
	}
	for _, tc := range []struct {
		name string
		keep func(i int) bool
	}{
		{"all but one", func(i int) bool { return i == 50 }},
		{"two runs and the ends", func(i int) bool { return i == 0 || i == 70 || i == 71 || i == 149 }},
		{"every other", func(i int) bool { return i%2 == 1 }},
		{"none", func(int) bool { return false }},
	} {
		var excl []int64
		var want []string
		for i, r := range rows {
			if tc.keep(i) {
				want = append(want, r.MessageID)
			} else {
				excl = append(excl, r.RowID)
			}
		}
		got, err := s.Dialect.ReadBatch(ctxT(t), db, dialect.ReadRequest{Shards: []int{8}, Limit: 1000, Exclude: excl})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), want) {
			t.Errorf("%s: read %v, want %v", tc.name, ids(got), want)
		}
	}
}

func (s suite) readMaxBytes(t *testing.T, db *sql.DB) {
	var in []dialect.InsertRow
	for i := 0; i < 5; i++ {
		m := onShard(fmt.Sprintf("b%d", i), "", 6)
		m.Value = bytes.Repeat([]byte{'v'}, 100)
		in = append(in, m)
	}
	s.insert(t, db, in...)
	for _, tc := range []struct{ maxBytes, want int }{{0, 5}, {1, 1}, {100, 1}, {101, 2}, {250, 3}, {10_000, 5}} {
		got, err := s.Dialect.ReadBatch(ctxT(t), db, dialect.ReadRequest{Shards: []int{6}, Limit: 10, MaxBytes: tc.maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want || got[0].MessageID != "b0" {
			t.Errorf("MaxBytes %d: read %v, want the first %d", tc.maxBytes, ids(got), tc.want)
		}
	}
}

func (s suite) retryBecomesAvailable(t *testing.T, db *sql.DB) {
	s.insert(t, db, onShard("a1", "a", 5), onShard("a2", "a", 5))
	recs := s.read(t, db, []int{5}, 10)
	ctx := ctxT(t)
	if err := s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: recs[0].RowID, Delay: 300 * time.Millisecond, Err: "x"}}); err != nil {
		t.Fatal(err)
	}
	if got := s.read(t, db, []int{5}, 10); len(got) != 0 {
		t.Fatalf("read %v while a1 waits, want nothing", ids(got))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.read(t, db, []int{5}, 10)
		if len(got) == 2 {
			if got[0].MessageID != "a1" || got[0].Attempts != 1 || got[1].MessageID != "a2" || got[1].Attempts != 0 {
				t.Fatalf("after backoff read %v with attempts %d,%d; want [a1 a2] with 1,0", ids(got), got[0].Attempts, got[1].Attempts)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retried message never became available: read %v", ids(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s suite) ack(t *testing.T, db *sql.DB) {
	s.insert(t, db, msg("a", "k", "1"), msg("b", "k", "2"), msg("c", "j", "3"))
	recs := s.read(t, db, allShards(), 10)
	ctx := ctxT(t)
	n, err := s.Dialect.Ack(ctx, db, []int64{recs[0].RowID, recs[1].RowID})
	if err != nil || n != 2 {
		t.Fatalf("Ack = %d, %v; want 2, nil", n, err)
	}
	n, err = s.Dialect.Ack(ctx, db, []int64{recs[0].RowID, recs[1].RowID})
	if err != nil || n != 0 {
		t.Fatalf("second Ack = %d, %v; want 0, nil", n, err)
	}
	if got := ids(s.read(t, db, allShards(), 10)); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("after ack read %v, want [c]", got)
	}
	if n, err := s.Dialect.Ack(ctx, db, nil); err != nil || n != 0 {
		t.Fatalf("Ack(nil) = %d, %v", n, err)
	}
}

func (s suite) deadLetterRow(t *testing.T, db *sql.DB, messageID string) (count, attempts int, lastErr string, payload []byte) {
	t.Helper()
	q := "SELECT attempts, last_error, payload FROM " + dialect.TableDeadLetters + " WHERE message_id = 'X'"
	rows, err := db.QueryContext(ctxT(t), strings.Replace(q, "X", messageID, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		count++
		var le sql.NullString
		if err := rows.Scan(&attempts, &le, &payload); err != nil {
			t.Fatal(err)
		}
		lastErr = le.String
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return count, attempts, lastErr, payload
}

func (s suite) deadLetter(t *testing.T, db *sql.DB) {
	s.insert(t, db, onShard("poison", "p", 1), onShard("fine", "f", 1))
	recs := s.read(t, db, []int{1}, 10)
	ctx := ctxT(t)
	if err := s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: recs[0].RowID, Err: "first"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Dialect.DeadLetter(ctx, db, []dialect.Failure{{RowID: recs[0].RowID, Err: "message too large"}}); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.read(t, db, []int{1}, 10)); !slices.Equal(got, []string{"fine"}) {
		t.Fatalf("after dead-lettering read %v, want [fine]", got)
	}
	count, attempts, lastErr, payload := s.deadLetterRow(t, db, "poison")
	if count != 1 || attempts != 2 || lastErr != "message too large" || string(payload) != "poison" {
		t.Fatalf("dead letter: count=%d attempts=%d last_error=%q payload=%q; want 1, 2, %q, %q",
			count, attempts, lastErr, payload, "message too large", "poison")
	}
	st, err := s.Dialect.Stats(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 1 || st.DeadLetters != 1 {
		t.Fatalf("Stats = %+v, want Pending 1, DeadLetters 1", st)
	}
	// A row already gone is skipped, not an error.
	if err := s.Dialect.DeadLetter(ctx, db, []dialect.Failure{{RowID: recs[0].RowID, Err: "again"}}); err != nil {
		t.Fatalf("dead-lettering a row already gone: %v", err)
	}
	if count, _, _, _ := s.deadLetterRow(t, db, "poison"); count != 1 {
		t.Fatalf("%d dead letters after a second DeadLetter of a gone row, want 1", count)
	}
}

func (s suite) deadLetterRace(t *testing.T, db *sql.DB) {
	s.insert(t, db, onShard("p1", "p", 4), onShard("p2", "p", 4))
	recs := s.read(t, db, []int{4}, 10)
	failures := []dialect.Failure{{RowID: recs[0].RowID, Err: "e"}, {RowID: recs[1].RowID, Err: "e"}}
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Dialect.DeadLetter(ctx, db, failures)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !isRetriableContention(err) {
			t.Errorf("concurrent DeadLetter: %v", err)
		}
	}
	for _, id := range []string{"p1", "p2"} {
		if count, _, _, _ := s.deadLetterRow(t, db, id); count != 1 {
			t.Errorf("%s dead-lettered %d times by 6 racing relays, want once", id, count)
		}
	}
}

// isRetriableContention reports lock contention errors a relay retries
// (deadlock victims, SQLite busy); they must never corrupt data.
func isRetriableContention(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "deadlock") || strings.Contains(s, "database is locked") || strings.Contains(s, "busy")
}

func (s suite) ensureShards(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Dialect.EnsureShards(ctx, db, 64); err != nil {
				t.Errorf("concurrent EnsureShards: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := s.Dialect.EnsureShards(ctx, db, 64); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+dialect.TableShards).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 64 {
		t.Fatalf("%d shard rows, want 64", n)
	}
	if err := s.Dialect.EnsureShards(ctx, db, 0); err == nil {
		t.Fatal("EnsureShards(0) succeeded")
	}
}

func (s suite) claimersNeverShareAShard(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	if err := s.Dialect.EnsureShards(ctx, db, 16); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	owner := map[int]string{}
	var wg sync.WaitGroup
	for c := 0; c < 6; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := fmt.Sprintf("relay-%d", c)
			for round := 0; round < 5; round++ {
				leases, err := s.Dialect.Acquire(ctx, db, me, 16, time.Minute)
				if err != nil {
					if isRetriableContention(err) {
						continue
					}
					t.Errorf("%s: Acquire: %v", me, err)
					return
				}
				mu.Lock()
				for _, l := range leases {
					if o, ok := owner[l.Shard]; ok {
						t.Errorf("shard %d given to %s while %s holds it", l.Shard, me, o)
					}
					owner[l.Shard] = me
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				for _, l := range leases {
					delete(owner, l.Shard)
				}
				mu.Unlock()
				if err := s.Dialect.Release(ctx, db, me, leases); err != nil {
					t.Errorf("%s: Release: %v", me, err)
				}
			}
		}()
	}
	wg.Wait()
	// And one claim takes everything: all 16, each once.
	leases, err := s.Dialect.Acquire(ctx, db, "last", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, l := range leases {
		if seen[l.Shard] {
			t.Fatalf("shard %d returned twice", l.Shard)
		}
		seen[l.Shard] = true
	}
	if len(seen) != 16 {
		t.Fatalf("acquired %d free shards, want 16", len(seen))
	}
}

func sortLeases(ls []dialect.Lease) []dialect.Lease {
	sort.Slice(ls, func(i, j int) bool { return ls[i].Shard < ls[j].Shard })
	return ls
}

func (s suite) expiredLeaseTakenOver(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	if err := s.Dialect.EnsureShards(ctx, db, 4); err != nil {
		t.Fatal(err)
	}
	old, err := s.Dialect.Acquire(ctx, db, "a", 10, 500*time.Millisecond)
	if err != nil || len(old) != 4 {
		t.Fatalf("a: Acquire = %v, %v; want 4 leases", old, err)
	}
	if got, err := s.Dialect.Acquire(ctx, db, "b", 10, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("b took %v (err %v) from a live lease", got, err)
	}
	// The owner renews before expiry: still its own.
	if got, err := s.Dialect.Renew(ctx, db, "a", old, 500*time.Millisecond); err != nil || len(got) != 4 {
		t.Fatalf("a: Renew = %v, %v; want 4", got, err)
	}
	var taken []dialect.Lease
	deadline := time.Now().Add(10 * time.Second)
	for len(taken) < 4 {
		got, err := s.Dialect.Acquire(ctx, db, "b", 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, got...)
		if time.Now().After(deadline) {
			t.Fatalf("b took %d of 4 expired shards", len(taken))
		}
		time.Sleep(50 * time.Millisecond)
	}
	sortLeases(old)
	sortLeases(taken)
	for i := range taken {
		if taken[i].Fence <= old[i].Fence {
			t.Fatalf("shard %d: fence %d after takeover, not above %d", taken[i].Shard, taken[i].Fence, old[i].Fence)
		}
	}
	if got, err := s.Dialect.Renew(ctx, db, "a", old, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("old owner renewed %v (err %v) after takeover; want nothing", got, err)
	}
	if err := s.Dialect.Release(ctx, db, "a", old); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Dialect.Renew(ctx, db, "b", taken, time.Minute); err != nil || len(got) != 4 {
		t.Fatalf("new owner Renew = %v, %v after old owner's Release; want 4", got, err)
	}
}

func (s suite) release(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	if err := s.Dialect.EnsureShards(ctx, db, 4); err != nil {
		t.Fatal(err)
	}
	a, err := s.Dialect.Acquire(ctx, db, "a", 3, time.Hour)
	if err != nil || len(a) != 3 {
		t.Fatalf("a: Acquire(3) = %v, %v", a, err)
	}
	b, err := s.Dialect.Acquire(ctx, db, "b", 10, time.Hour)
	if err != nil || len(b) != 1 {
		t.Fatalf("b: Acquire = %v, %v; want the 1 free shard", b, err)
	}
	if err := s.Dialect.Release(ctx, db, "a", a[:2]); err != nil {
		t.Fatal(err)
	}
	got, err := s.Dialect.Acquire(ctx, db, "b", 10, time.Hour)
	if err != nil || len(got) != 2 {
		t.Fatalf("b: Acquire after a released 2 = %v, %v; want 2 at once", got, err)
	}
	if renewed, err := s.Dialect.Renew(ctx, db, "a", a, time.Hour); err != nil || len(renewed) != 1 {
		t.Fatalf("a: Renew = %v, %v; want only the shard it kept", renewed, err)
	}
}

func (s suite) heartbeat(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	live, err := s.Dialect.Heartbeat(ctx, db, "a", time.Minute)
	if err != nil || live != 1 {
		t.Fatalf("Heartbeat(a) = %d, %v; want 1", live, err)
	}
	if live, err = s.Dialect.Heartbeat(ctx, db, "b", time.Minute); err != nil || live != 2 {
		t.Fatalf("Heartbeat(b) = %d, %v; want 2", live, err)
	}
	if live, err = s.Dialect.Heartbeat(ctx, db, "a", time.Minute); err != nil || live != 2 {
		t.Fatalf("Heartbeat(a) again = %d, %v; want 2", live, err)
	}
	if err := s.Dialect.Deregister(ctx, db, "a"); err != nil {
		t.Fatal(err)
	}
	if live, err = s.Dialect.Heartbeat(ctx, db, "b", time.Minute); err != nil || live != 1 {
		t.Fatalf("after Deregister(a): %d, %v; want 1", live, err)
	}
	// c goes silent; b's heartbeat with a short ttl forgets it.
	if _, err := s.Dialect.Heartbeat(ctx, db, "c", time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if live, err = s.Dialect.Heartbeat(ctx, db, "b", 200*time.Millisecond); err != nil || live != 1 {
		t.Fatalf("silent relay not forgotten: live = %d, %v; want 1", live, err)
	}
}

func (s suite) stats(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	st, err := s.Dialect.Stats(ctx, db)
	if err != nil || st != (dialect.Stats{}) {
		t.Fatalf("empty Stats = %+v, %v", st, err)
	}
	delayed := onShard("d", "d", 0)
	delayed.Delay = time.Hour
	s.insert(t, db, onShard("a", "a", 0), onShard("b", "b", 0), delayed)
	time.Sleep(50 * time.Millisecond)
	recs := s.read(t, db, []int{0}, 10)
	if err := s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: recs[0].RowID, Delay: time.Hour, Err: "x"}}); err != nil {
		t.Fatal(err)
	}
	st, err = s.Dialect.Stats(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 3 || st.Retrying != 1 || st.Delayed != 2 || st.DeadLetters != 0 {
		t.Fatalf("Stats = %+v; want Pending 3, Retrying 1, Delayed 2", st)
	}
	if st.OldestAge < 10*time.Millisecond || st.OldestAge > time.Minute {
		t.Fatalf("Stats.OldestAge = %v, want between 10ms and 1m", st.OldestAge)
	}
}

// concurrent: 8 writers enqueue 20,000 messages on 200 keys in
// transactions of 1-5 messages, a tenth of them rolled back, while 3
// claimers lease shards (with hand-back and rotation), read, fail one
// message in twenty with a short retry (leaving the rest of its key for
// later) and ack the others. At the end every committed message was acked
// exactly once, in per-key order, and no rolled-back message was ever read.
func (s suite) concurrent(t *testing.T, db *sql.DB) {
	const (
		writers      = 8
		perWriter    = 2500
		keysPerWrite = 25
		claimers     = 3
		shards       = 16
	)
	ctx := ctxT(t)
	if err := s.Dialect.EnsureShards(ctx, db, shards); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		key string
		seq int
	}
	var (
		mu         sync.Mutex
		committed  = map[string]entry{} // message id -> key, seq
		rolledBack = map[string]bool{}
		acked      = map[string]int{}
		lastSeq    = map[string]int{}
		owner      = map[int]string{}
		writersOn  atomic.Int32
		retried    atomic.Int64
	)
	writersOn.Store(writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer writersOn.Add(-1)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			seq := map[string]int{}
			for sent := 0; sent < perWriter; {
				n := min(1+rng.IntN(5), perWriter-sent)
				abort := rng.IntN(10) == 0
				var batch []dialect.InsertRow
				var ents []entry
				next := map[string]int{}
				for i := 0; i < n; i++ {
					key := fmt.Sprintf("w%d-k%d", w, rng.IntN(keysPerWrite))
					id := fmt.Sprintf("w%d-%d", w, sent+i)
					e := entry{key: key}
					if !abort {
						next[key]++
						e.seq = seq[key] + next[key]
					}
					m := msg(id, key, key)
					m.Shard = int(uint64(m.KeyHash) % shards)
					batch = append(batch, m)
					ents = append(ents, e)
				}
				// Record the outcome before the commit, so that a claimer
				// that reads the rows right after it can check them.
				mu.Lock()
				for i, m := range batch {
					if abort {
						rolledBack[m.MessageID] = true
					} else {
						committed[m.MessageID] = ents[i]
					}
				}
				mu.Unlock()
				if err := s.writeTx(ctx, db, batch, abort); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				for k, v := range next {
					seq[k] += v
				}
				sent += n
			}
		}()
	}
	var failed atomic.Bool
	fail := func(format string, args ...any) {
		failed.Store(true)
		t.Errorf(format, args...)
	}
	var cwg sync.WaitGroup
	for c := 0; c < claimers; c++ {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			me := fmt.Sprintf("claimer-%d", c)
			rng := rand.New(rand.NewPCG(uint64(c), 99))
			var held []dialect.Lease
			drop := func(ls []dialect.Lease) {
				mu.Lock()
				for _, l := range ls {
					delete(owner, l.Shard)
				}
				mu.Unlock()
				if err := s.Dialect.Release(ctx, db, me, ls); err != nil && !isRetriableContention(err) {
					fail("%s: Release: %v", me, err)
				}
			}
			defer func() { drop(held) }()
			for round := 0; !failed.Load(); round++ {
				live, err := s.Dialect.Heartbeat(ctx, db, me, 10*time.Second)
				if err != nil {
					if isRetriableContention(err) {
						continue
					}
					fail("%s: Heartbeat: %v", me, err)
					return
				}
				share := (shards + live - 1) / live
				if len(held) > share { // hand back above the fair share
					drop(held[share:])
					held = held[:share]
				}
				if round%40 == 39 && len(held) > 0 { // rotate: hand one shard over
					drop(held[:1])
					held = held[1:]
				}
				if len(held) < share {
					got, err := s.Dialect.Acquire(ctx, db, me, share-len(held), time.Minute)
					if err != nil && !isRetriableContention(err) {
						fail("%s: Acquire: %v", me, err)
						return
					}
					mu.Lock()
					for _, l := range got {
						if o, ok := owner[l.Shard]; ok {
							fail("shard %d acquired by %s while %s holds it", l.Shard, me, o)
						}
						owner[l.Shard] = me
					}
					mu.Unlock()
					held = append(held, got...)
				}
				if len(held) == 0 {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				sh := make([]int, len(held))
				for i, l := range held {
					sh[i] = l.Shard
				}
				recs, err := s.Dialect.ReadBatch(ctx, db, dialect.ReadRequest{Shards: sh, Limit: 200})
				if err != nil {
					fail("%s: ReadBatch: %v", me, err)
					return
				}
				if len(recs) == 0 {
					if writersOn.Load() == 0 {
						st, err := s.Dialect.Stats(ctx, db)
						if err == nil && st.Pending == 0 {
							return
						}
					}
					time.Sleep(time.Millisecond)
					continue
				}
				// Fail one message in twenty, as a relay whose publish
				// failed: it is retried shortly, and the later messages of
				// its key in this batch are left alone (they must wait
				// behind it). The rest is acked.
				var idList []int64
				var retries []dialect.Retry
				failedKeys := map[string]bool{}
				var ackedRecs []dialect.Row
				for _, r := range recs {
					k := string(r.Key)
					if failedKeys[k] {
						continue
					}
					if rng.IntN(20) == 0 {
						failedKeys[k] = true
						retries = append(retries, dialect.Retry{RowID: r.RowID, Delay: 3 * time.Millisecond, Err: "injected"})
						continue
					}
					idList = append(idList, r.RowID)
					ackedRecs = append(ackedRecs, r)
				}
				recs = ackedRecs
				var n int64
				for {
					n, err = s.Dialect.Ack(ctx, db, idList)
					if err == nil || !isRetriableContention(err) {
						break
					}
				}
				if err != nil {
					fail("%s: Ack: %v", me, err)
					return
				}
				if n != int64(len(recs)) {
					fail("%s: Ack deleted %d of %d rows it read: another claimer acked them", me, n, len(recs))
				}
				for len(retries) > 0 {
					err = s.Dialect.Retry(ctx, db, retries)
					if err == nil {
						retried.Add(int64(len(retries)))
						break
					}
					if !isRetriableContention(err) {
						fail("%s: Retry: %v", me, err)
						return
					}
				}
				mu.Lock()
				for _, r := range recs {
					acked[r.MessageID]++
					if rolledBack[r.MessageID] {
						fail("rolled-back message %s was read", r.MessageID)
					}
					e, ok := committed[r.MessageID]
					if !ok {
						fail("read %s, which no writer committed", r.MessageID)
						continue
					}
					if e.seq != lastSeq[e.key]+1 {
						fail("key %s: seq %d acked after %d", e.key, e.seq, lastSeq[e.key])
					}
					lastSeq[e.key] = e.seq
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	cwg.Wait()
	if failed.Load() {
		return
	}
	// Order was checked live; check completeness and uniqueness.
	total := 0
	for id, e := range committed {
		total++
		if acked[id] != 1 {
			t.Errorf("committed message %s (key %s seq %d) acked %d times, want 1", id, e.key, e.seq, acked[id])
		}
	}
	for id := range rolledBack {
		if acked[id] != 0 {
			t.Errorf("rolled-back message %s acked", id)
		}
	}
	if len(acked) != total {
		t.Errorf("%d distinct messages acked, %d committed", len(acked), total)
	}
	if total+len(rolledBack) != writers*perWriter {
		t.Errorf("%d committed + %d rolled back, want %d", total, len(rolledBack), writers*perWriter)
	}
	if retried.Load() == 0 {
		t.Error("no message was retried: the test did not exercise hold-back")
	}
	t.Logf("%s: %d committed, %d rolled back, %d retries; all acked exactly once in per-key order",
		s.Dialect.Name(), total, len(rolledBack), retried.Load())
}

// writeTx inserts batch in one transaction and commits or rolls back,
// retrying whole transactions that lose to lock contention.
func (s suite) writeTx(ctx context.Context, db *sql.DB, batch []dialect.InsertRow, abort bool) error {
	for attempt := 0; ; attempt++ {
		tx, err := db.BeginTx(ctx, nil)
		if err == nil {
			err = s.Dialect.Insert(ctx, tx, batch)
			if err == nil && abort {
				return tx.Rollback()
			}
			if err == nil {
				err = tx.Commit()
				if err == nil {
					return nil
				}
			} else {
				tx.Rollback()
			}
		}
		if !isRetriableContention(err) || attempt > 20 {
			return err
		}
	}
}
