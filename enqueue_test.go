package outbox_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// recordOverhead is the framing allowance Enqueue counts against
// MaxMessageBytes per message (see outbox.Config.MaxMessageBytes).
const recordOverhead = 256

// testShards is the shard count of the integration tests of this package
// (relay_test.go uses it too).
const testShards = 16

// enqueueEachDialect runs fn on a fresh migrated database of every dialect, in
// parallel subtests named after the dialect.
func enqueueEachDialect(t *testing.T, fn func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox)) {
	t.Helper()
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		db := dbtest.Open(t, name)
		ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards})
		if err != nil {
			t.Fatal(err)
		}
		fn(t, db, ob)
	})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func enqueueShards() []int {
	s := make([]int, testShards)
	for i := range s {
		s[i] = i
	}
	return s
}

// readAvailable reads every available message of every shard, in id order.
func readAvailable(t *testing.T, db *dbtest.DB) []dialect.Row {
	t.Helper()
	recs, err := db.Dialect.ReadBatch(testCtx(t), db.DB, dialect.ReadRequest{Shards: enqueueShards(), Limit: 100_000})
	if err != nil {
		t.Fatalf("ReadBatch: %v", err)
	}
	return recs
}

func outboxStats(t *testing.T, db *dbtest.DB) dialect.Stats {
	t.Helper()
	s, err := db.Dialect.Stats(testCtx(t), db.DB)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func beginTx(t *testing.T, db *dbtest.DB) *sql.Tx {
	t.Helper()
	tx, err := db.BeginTx(testCtx(t), nil)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}

func commitTx(t *testing.T, tx *sql.Tx) {
	t.Helper()
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func enqueueCommitted(t *testing.T, db *dbtest.DB, ob *outbox.Outbox, msgs ...outbox.Message) {
	t.Helper()
	tx := beginTx(t, db)
	if err := ob.Enqueue(testCtx(t), tx, msgs...); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	commitTx(t, tx)
}

func isUUIDv7(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return id[14] == '7' && strings.IndexByte("89ab", id[19]) >= 0
}

func sameBytes(a, b []byte) bool {
	return bytes.Equal(a, b) && (a == nil) == (b == nil)
}

func sameHeaders(a, b []outbox.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !sameBytes(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// checkStored compares a stored record with the message it came from.
func checkStored(t *testing.T, r dialect.Row, m outbox.Message) {
	t.Helper()
	if m.ID != "" && r.MessageID != m.ID {
		t.Errorf("message id %q, want %q", r.MessageID, m.ID)
	}
	if m.ID == "" && !isUUIDv7(r.MessageID) {
		t.Errorf("generated message id %q is not a UUIDv7", r.MessageID)
	}
	if r.Topic != m.Topic {
		t.Errorf("%s: topic %q, want %q", r.MessageID, r.Topic, m.Topic)
	}
	if !sameBytes(r.Key, m.Key) {
		t.Errorf("%s: key %q (nil=%v), want %q (nil=%v)", r.MessageID, r.Key, r.Key == nil, m.Key, m.Key == nil)
	}
	if !sameBytes(r.Value, m.Value) {
		t.Errorf("%s: value %q (nil=%v), want %q (nil=%v)", r.MessageID, r.Value, r.Value == nil, m.Value, m.Value == nil)
	}
	hs, err := outbox.DecodeHeaders(r.Headers)
	if err != nil {
		t.Errorf("%s: DecodeHeaders(%x): %v", r.MessageID, r.Headers, err)
	}
	if !sameHeaders(hs, m.Headers) {
		t.Errorf("%s: headers %v, want %v", r.MessageID, hs, m.Headers)
	}
	for _, h := range hs {
		if h.Key == outbox.HeaderID {
			t.Errorf("%s: stored headers carry %s: the relay adds it", r.MessageID, outbox.HeaderID)
		}
	}
	wantShard := outbox.ShardFor(m.Key, testShards)
	if m.Key == nil {
		wantShard = outbox.ShardFor([]byte(r.MessageID), testShards)
	}
	if r.Shard != wantShard {
		t.Errorf("%s: shard %d, want %d", r.MessageID, r.Shard, wantShard)
	}
	if r.Attempts != 0 {
		t.Errorf("%s: attempts %d", r.MessageID, r.Attempts)
	}
	if d := time.Since(r.CreatedAt); d < -time.Minute || d > time.Minute {
		t.Errorf("%s: created_at %v is %v from now", r.MessageID, r.CreatedAt, d)
	}
}

func TestEnqueueCommitMakesVisible(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		msgs := []outbox.Message{
			{Topic: "orders", Key: []byte("order-1"), Value: []byte(`{"id":1}`),
				Headers: []outbox.Header{{Key: "content-type", Value: []byte("application/json")}, {Key: "trace"}}},
			{ID: "my-id-1", Topic: "orders.v2", Key: []byte("order-2"), Value: []byte(`{"id":2}`)},
			{Topic: "no_key", Value: []byte("keyless")},
			{Topic: "tombstone", Key: []byte("order-1"), Value: nil},
		}
		tx := beginTx(t, db)
		if err := ob.Enqueue(testCtx(t), tx, msgs...); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		commitTx(t, tx)

		recs := readAvailable(t, db)
		if len(recs) != len(msgs) {
			t.Fatalf("read %d records, want %d", len(recs), len(msgs))
		}
		ids := map[string]bool{}
		for i, r := range recs {
			checkStored(t, r, msgs[i])
			ids[r.MessageID] = true
		}
		if len(ids) != len(msgs) {
			t.Errorf("message ids not unique: %v", ids)
		}
		if s := outboxStats(t, db); s.Pending != int64(len(msgs)) || s.Delayed != 0 || s.Retrying != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestEnqueueRollbackLeavesNothing(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		tx := beginTx(t, db)
		if err := ob.Enqueue(testCtx(t), tx,
			outbox.Message{Topic: "t", Key: []byte("k"), Value: []byte("v")},
			outbox.Message{Topic: "t", Value: []byte("v2")},
		); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		if recs := readAvailable(t, db); len(recs) != 0 {
			t.Fatalf("read %d records after rollback", len(recs))
		}
		if s := outboxStats(t, db); s.Pending != 0 {
			t.Fatalf("stats after rollback %+v", s)
		}
	})
}

func TestEnqueueInvalidWritesNothing(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		valid := outbox.Message{Topic: "t", Key: []byte("k"), Value: []byte("v")}
		invalid := outbox.Message{Topic: "bad topic", Value: []byte("v")}
		check := func(t *testing.T, err error) {
			t.Helper()
			var me *outbox.MessageError
			if !errors.As(err, &me) {
				t.Fatalf("got %v, want a *MessageError", err)
			}
			if me.Index != 1 || me.Topic != "bad topic" {
				t.Errorf("MessageError %+v, want index 1 topic %q", me, "bad topic")
			}
			if !errors.Is(err, outbox.ErrInvalidMessage) || !errors.Is(err, outbox.ErrInvalidTopic) {
				t.Errorf("%v does not match ErrInvalidMessage and ErrInvalidTopic", err)
			}
		}
		t.Run("tx", func(t *testing.T) {
			tx := beginTx(t, db)
			check(t, ob.Enqueue(testCtx(t), tx, valid, invalid, valid))
			// The transaction is still usable: nothing was sent.
			commitTx(t, tx)
			if recs := readAvailable(t, db); len(recs) != 0 {
				t.Fatalf("read %d records", len(recs))
			}
		})
		t.Run("db", func(t *testing.T) {
			check(t, ob.Enqueue(testCtx(t), db.DB, valid, invalid, valid))
			if recs := readAvailable(t, db); len(recs) != 0 {
				t.Fatalf("read %d records", len(recs))
			}
		})
		t.Run("too large among many", func(t *testing.T) {
			msgs := make([]outbox.Message, 1500)
			for i := range msgs {
				msgs[i] = valid
			}
			msgs[1400].Value = make([]byte, outbox.DefaultMaxMessageBytes+1)
			err := ob.Enqueue(testCtx(t), db.DB, msgs...)
			var me *outbox.MessageError
			if !errors.As(err, &me) || me.Index != 1400 || !errors.Is(err, outbox.ErrMessageTooLarge) {
				t.Fatalf("got %v, want ErrMessageTooLarge at index 1400", err)
			}
			if s := outboxStats(t, db); s.Pending != 0 {
				t.Fatalf("%d rows written", s.Pending)
			}
		})
	})
}

func TestEnqueueNilExecutor(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		msg := outbox.Message{Topic: "t", Value: []byte("v")}
		execs := map[string]outbox.Execer{
			"nil":            nil,
			"typed nil tx":   (*sql.Tx)(nil),
			"typed nil db":   (*sql.DB)(nil),
			"typed nil conn": (*sql.Conn)(nil),
		}
		for name, exec := range execs {
			for _, msgs := range [][]outbox.Message{{msg}, nil} {
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Errorf("%s: Enqueue panicked: %v", name, p)
						}
					}()
					if err := ob.Enqueue(testCtx(t), exec, msgs...); !errors.Is(err, outbox.ErrNilExecutor) {
						t.Errorf("%s, %d messages: got %v, want ErrNilExecutor", name, len(msgs), err)
					}
				}()
			}
		}
		if s := outboxStats(t, db); s.Pending != 0 {
			t.Fatalf("%d rows written", s.Pending)
		}
	})
}

func TestEnqueueTxDone(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		msg := outbox.Message{Topic: "t", Value: []byte("v")}
		committed := beginTx(t, db)
		commitTx(t, committed)
		if err := ob.Enqueue(testCtx(t), committed, msg); !errors.Is(err, sql.ErrTxDone) {
			t.Errorf("committed tx: got %v, want sql.ErrTxDone", err)
		}
		rolledBack := beginTx(t, db)
		if err := rolledBack.Rollback(); err != nil {
			t.Fatal(err)
		}
		if err := ob.Enqueue(testCtx(t), rolledBack, msg); !errors.Is(err, sql.ErrTxDone) {
			t.Errorf("rolled-back tx: got %v, want sql.ErrTxDone", err)
		}
		if s := outboxStats(t, db); s.Pending != 0 {
			t.Fatalf("%d rows written", s.Pending)
		}
	})
}

func TestEnqueueNoMessages(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		tx := beginTx(t, db)
		if err := ob.Enqueue(testCtx(t), tx); err != nil {
			t.Fatalf("Enqueue(): %v", err)
		}
		if err := ob.Enqueue(testCtx(t), tx, []outbox.Message{}...); err != nil {
			t.Fatalf("Enqueue([]): %v", err)
		}
		commitTx(t, tx)
		// Even on a finished transaction nothing is executed.
		if err := ob.Enqueue(testCtx(t), tx); err != nil {
			t.Fatalf("Enqueue() on a committed tx: %v", err)
		}
		if s := outboxStats(t, db); s.Pending != 0 {
			t.Fatalf("%d rows written", s.Pending)
		}
	})
}

func TestEnqueueDelayed(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		enqueueCommitted(t, db, ob,
			outbox.Message{Topic: "t", Key: []byte("a"), Value: []byte("delay"), Delay: time.Hour},
			outbox.Message{Topic: "t", Key: []byte("b"), Value: []byte("at"), AvailableAt: time.Now().Add(time.Hour)},
			outbox.Message{Topic: "t", Value: []byte("keyless later"), Delay: 10 * time.Minute},
		)
		if recs := readAvailable(t, db); len(recs) != 0 {
			t.Fatalf("read %d delayed records now", len(recs))
		}
		if s := outboxStats(t, db); s.Pending != 3 || s.Delayed != 3 {
			t.Fatalf("stats %+v, want 3 pending and 3 delayed", s)
		}
		// A past AvailableAt and a tiny Delay are available (soon).
		now := outbox.Message{Topic: "t", Key: []byte("c"), Value: []byte("past"), AvailableAt: time.Now().Add(-time.Hour)}
		soon := outbox.Message{Topic: "t", Key: []byte("d"), Value: []byte("soon"), Delay: 50 * time.Millisecond}
		enqueueCommitted(t, db, ob, now, soon)
		recs := readAvailable(t, db)
		if len(recs) == 0 || string(recs[0].Value) != "past" {
			t.Fatalf("past AvailableAt: read %d records", len(recs))
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(recs) < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			recs = readAvailable(t, db)
		}
		if len(recs) != 2 || string(recs[1].Value) != "soon" {
			t.Fatalf("after the short delay read %d records, want 2", len(recs))
		}
		if s := outboxStats(t, db); s.Pending != 5 || s.Delayed != 3 {
			t.Fatalf("stats %+v, want 5 pending and 3 delayed", s)
		}
	})
}

func TestEnqueueDoesNotModifyMessages(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		hs := []outbox.Header{{Key: "h", Value: []byte("v")}}
		msgs := []outbox.Message{
			{Topic: "t", Key: []byte("k"), Value: []byte("v"), Headers: hs},
			{Topic: "t", Value: []byte("v")},
		}
		enqueueCommitted(t, db, ob, msgs...)
		for i, m := range msgs {
			if m.ID != "" {
				t.Errorf("message %d: ID set to %q", i, m.ID)
			}
			if !m.AvailableAt.IsZero() || m.Delay != 0 {
				t.Errorf("message %d: schedule changed", i)
			}
		}
		if len(msgs[0].Headers) != 1 || msgs[0].Headers[0].Key != "h" || string(msgs[0].Headers[0].Value) != "v" {
			t.Errorf("headers changed: %v", msgs[0].Headers)
		}
		// Enqueueing the same slice again gets new IDs, so it succeeds.
		enqueueCommitted(t, db, ob, msgs...)
		if recs := readAvailable(t, db); len(recs) != 4 {
			t.Fatalf("read %d records, want 4", len(recs))
		}
	})
}

func TestEnqueueBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		big := bytes.Repeat([]byte{0, 0xff, 'x', 0x80}, 100_000)
		msgs := []outbox.Message{
			{Topic: "bin", Key: []byte{0, 'k', 0, 0xff}, Value: []byte{0, 0, 0xfe, 0}},
			{Topic: "bin", Key: []byte{0xff, 0xfe}, Value: []byte("\xc3\x28 not utf8"),
				Headers: []outbox.Header{
					{Key: "raw", Value: []byte{0xff, 0, 0xc3}},
					{Key: "nul", Value: []byte{0}},
					{Key: "null", Value: nil},
					{Key: "empty", Value: []byte{}},
					{Key: "ключ-🔑", Value: []byte("значение")},
				}},
			{Topic: "bin", Key: []byte{}, Value: []byte{}}, // empty, not null
			{Topic: "bin", Key: []byte("big"), Value: big},
			{Topic: "bin", ID: "ид-🔑", Key: []byte{0}, Value: nil},
		}
		enqueueCommitted(t, db, ob, msgs...)
		recs := readAvailable(t, db)
		if len(recs) != len(msgs) {
			t.Fatalf("read %d records, want %d", len(recs), len(msgs))
		}
		for i, r := range recs {
			checkStored(t, r, msgs[i])
		}
	})
}

func TestEnqueueManyMessages(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		const n = 2500 // more than MaxRowsPerStatement: three statements
		msgs := make([]outbox.Message, n)
		for i := range msgs {
			msgs[i] = outbox.Message{
				ID:    fmt.Sprintf("m-%05d", i),
				Topic: "many",
				Key:   []byte(fmt.Sprintf("key-%d", i%37)),
				Value: []byte(fmt.Sprintf("value-%d", i)),
			}
			if i%3 == 0 {
				msgs[i].Headers = []outbox.Header{{Key: "i", Value: []byte(fmt.Sprint(i))}}
			}
		}
		enqueueCommitted(t, db, ob, msgs...)
		recs := readAvailable(t, db)
		if len(recs) != n {
			t.Fatalf("read %d records, want %d", len(recs), n)
		}
		// The outbox order is the order of the call, across statements.
		for i, r := range recs {
			if r.MessageID != msgs[i].ID {
				t.Fatalf("record %d is %s, want %s", i, r.MessageID, msgs[i].ID)
			}
			checkStored(t, r, msgs[i])
		}
	})
}

// Large payloads in one call: 12 messages of 900 KB (10.8 MB, more than
// MariaDB's default max_allowed_packet of 16 MiB once hex-encoded) commit
// and read back intact on every dialect.
func TestEnqueueLargePayloads(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		msgs := make([]outbox.Message, 12)
		for i := range msgs {
			v := make([]byte, 900_000)
			for j := range v {
				v[j] = byte(i + j*7)
			}
			msgs[i] = outbox.Message{ID: fmt.Sprintf("big-%02d", i), Topic: "big", Key: []byte("k"), Value: v}
		}
		enqueueCommitted(t, db, ob, msgs...)
		recs := readAvailable(t, db)
		if len(recs) != len(msgs) {
			t.Fatalf("read %d records, want %d", len(recs), len(msgs))
		}
		for i, r := range recs {
			checkStored(t, r, msgs[i])
		}
	})
}

func TestEnqueueDuplicateID(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		first := outbox.Message{ID: "order-42-created", Topic: "t", Value: []byte("1")}
		enqueueCommitted(t, db, ob, first)

		t.Run("later call", func(t *testing.T) {
			tx := beginTx(t, db)
			again := first
			again.Value = []byte("2")
			err := ob.Enqueue(testCtx(t), tx, again)
			if !errors.Is(err, outbox.ErrDuplicateID) {
				t.Fatalf("second Enqueue of the same ID: %v, want ErrDuplicateID", err)
			}
			if errors.Is(err, outbox.ErrInvalidMessage) {
				t.Errorf("duplicate reported as invalid message: %v", err)
			}
			_ = tx.Rollback()
		})
		t.Run("same call", func(t *testing.T) {
			tx := beginTx(t, db)
			a := outbox.Message{ID: "dup-in-call", Topic: "t", Value: []byte("a")}
			err := ob.Enqueue(testCtx(t), tx, outbox.Message{Topic: "t", Value: []byte("other")}, a, a)
			if !errors.Is(err, outbox.ErrDuplicateID) {
				t.Fatalf("Enqueue of one ID twice in a call: %v, want ErrDuplicateID", err)
			}
			_ = tx.Rollback()
		})
		t.Run("db", func(t *testing.T) {
			if err := ob.Enqueue(testCtx(t), db.DB, first); !errors.Is(err, outbox.ErrDuplicateID) {
				t.Fatalf("Enqueue of a duplicate ID through *sql.DB: %v, want ErrDuplicateID", err)
			}
		})
		recs := readAvailable(t, db)
		if len(recs) != 1 || string(recs[0].Value) != "1" {
			t.Fatalf("read %d records, want only the first", len(recs))
		}
	})
}

func TestEnqueueExecutors(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		ctx := testCtx(t)
		// *sql.DB: commits on its own.
		if err := ob.Enqueue(ctx, db.DB, outbox.Message{Topic: "t", Key: []byte("db"), Value: []byte("db")}); err != nil {
			t.Fatalf("*sql.DB: %v", err)
		}
		// *sql.Conn, outside and inside an explicit transaction.
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := ob.Enqueue(ctx, conn, outbox.Message{Topic: "t", Key: []byte("conn"), Value: []byte("conn")}); err != nil {
			t.Fatalf("*sql.Conn: %v", err)
		}
		ctx2 := ctx
		tx, err := conn.BeginTx(ctx2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ob.Enqueue(ctx, tx, outbox.Message{Topic: "t", Key: []byte("conn-tx"), Value: []byte("conn-tx")}); err != nil {
			t.Fatalf("*sql.Tx of a *sql.Conn: %v", err)
		}
		commitTx(t, tx)
		if err := conn.Close(); err != nil {
			t.Fatal(err)
		}
		// *sql.Tx.
		enqueueCommitted(t, db, ob, outbox.Message{Topic: "t", Key: []byte("tx"), Value: []byte("tx")})

		recs := readAvailable(t, db)
		var got []string
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
		if strings.Join(got, ",") != "db,conn,conn-tx,tx" {
			t.Fatalf("read %v", got)
		}
	})
}

func TestEnqueueCanceledContext(t *testing.T) {
	t.Parallel()
	enqueueEachDialect(t, func(t *testing.T, db *dbtest.DB, ob *outbox.Outbox) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := ob.Enqueue(ctx, db.DB, outbox.Message{Topic: "t", Value: []byte("v")})
		if err == nil {
			t.Fatal("Enqueue with a canceled context succeeded")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		if s := outboxStats(t, db); s.Pending != 0 {
			t.Fatalf("%d rows written", s.Pending)
		}
	})
}

// TestEnqueueWarnsOutsideTx checks the one-time warning for a *sql.DB.
func TestEnqueueWarnsOutsideTx(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, "sqlite")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	msg := outbox.Message{Topic: "t", Value: []byte("v")}
	enqueueCommitted(t, db, ob, msg)
	if logs.Len() != 0 {
		t.Fatalf("warning for a transaction: %s", logs.String())
	}
	for range 3 {
		if err := ob.Enqueue(testCtx(t), db.DB, msg); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "not a transaction"); n != 1 {
		t.Fatalf("%d warnings, want 1: %s", n, logs.String())
	}
	// A *sql.Conn outside a transaction is no transaction either.
	logs.Reset()
	ob2, _ := outbox.New(outbox.Config{Dialect: db.Dialect, Logger: logger})
	conn, err := db.Conn(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := ob2.Enqueue(testCtx(t), conn, msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "*sql.Conn") {
		t.Fatalf("no warning naming *sql.Conn: %q", logs.String())
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	d := dialect.SQLite()
	bad := []struct {
		cfg   outbox.Config
		field string
	}{
		{outbox.Config{}, "Dialect"},
		{outbox.Config{NumShards: 8}, "Dialect"},
		{outbox.Config{Dialect: d, NumShards: -1}, "NumShards"},
		{outbox.Config{Dialect: d, NumShards: outbox.MaxNumShards + 1}, "NumShards"},
		{outbox.Config{Dialect: d, NumShards: 1 << 40}, "NumShards"},
		{outbox.Config{Dialect: d, MaxMessageBytes: -1}, "MaxMessageBytes"},
	}
	for _, tc := range bad {
		ob, err := outbox.New(tc.cfg)
		if ob != nil {
			t.Errorf("New(%+v) returned an Outbox", tc.cfg)
		}
		var ce *outbox.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("New(%+v) = %v, want a *ConfigError", tc.cfg, err)
			continue
		}
		if ce.Field != tc.field {
			t.Errorf("New(%+v): field %q, want %q", tc.cfg, ce.Field, tc.field)
		}
		if !errors.Is(err, outbox.ErrInvalidConfig) {
			t.Errorf("New(%+v): %v does not match ErrInvalidConfig", tc.cfg, err)
		}
		if !strings.Contains(err.Error(), tc.field) {
			t.Errorf("error %q does not name %s", err, tc.field)
		}
		if verr := tc.cfg.Validate(); verr == nil || verr.Error() != err.Error() {
			t.Errorf("Config.Validate() = %v, want New's error %v", verr, err)
		}
	}

	if outbox.DefaultNumShards != 64 {
		t.Errorf("DefaultNumShards %d, want 64: changing it moves every key to another shard", outbox.DefaultNumShards)
	}
	for _, n := range []int{0, 1, 16, outbox.MaxNumShards} {
		if _, err := outbox.New(outbox.Config{Dialect: d, NumShards: n}); err != nil {
			t.Errorf("NumShards %d: %v", n, err)
		}
		if err := (outbox.Config{Dialect: d, NumShards: n}).Validate(); err != nil {
			t.Errorf("Config{NumShards: %d}.Validate: %v", n, err)
		}
	}
}

// TestConfigMaxMessageBytes checks the default and a custom size limit on
// Enqueue (validation runs before anything is executed).
func TestConfigMaxMessageBytes(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, "sqlite")
	def, err := outbox.New(outbox.Config{Dialect: db.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	small, err := outbox.New(outbox.Config{Dialect: db.Dialect, MaxMessageBytes: 10 + recordOverhead})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	at := outbox.Message{Topic: "t", Key: []byte("12345"), Value: []byte("67890")}
	over := outbox.Message{Topic: "t", Key: []byte("12345"), Value: []byte("678901")}
	if err := small.Enqueue(ctx, db.DB, at); err != nil {
		t.Fatalf("at the custom limit: %v", err)
	}
	if err := small.Enqueue(ctx, db.DB, over); !errors.Is(err, outbox.ErrMessageTooLarge) {
		t.Fatalf("over the custom limit: %v", err)
	}
	if err := def.Enqueue(ctx, db.DB, over); err != nil {
		t.Fatalf("default limit: %v", err)
	}
	if err := def.Enqueue(ctx, db.DB, outbox.Message{Topic: "t", Value: make([]byte, outbox.DefaultMaxMessageBytes-recordOverhead)}); err != nil {
		t.Fatalf("at the default limit: %v", err)
	}
	if err := def.Enqueue(ctx, db.DB, outbox.Message{Topic: "t", Value: make([]byte, outbox.DefaultMaxMessageBytes-recordOverhead+1)}); !errors.Is(err, outbox.ErrMessageTooLarge) {
		t.Fatalf("over the default limit: %v", err)
	}
	if s := outboxStats(t, db); s.Pending != 3 {
		t.Fatalf("%d rows, want 3", s.Pending)
	}
}

// The Outbox satisfies Enqueuer.
var _ outbox.Enqueuer = (*outbox.Outbox)(nil)

// Without the migrations, Enqueue says which command to run, on every
// dialect, and writes nothing.
func TestEnqueueNotMigrated(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		db := dbtest.OpenEmpty(t, name)
		ob, err := outbox.New(outbox.Config{Dialect: db.Dialect})
		if err != nil {
			t.Fatal(err)
		}
		err = ob.Enqueue(testCtx(t), db.DB, outbox.Message{Topic: "t", Value: []byte("v")})
		if !errors.Is(err, outbox.ErrNotMigrated) || !strings.Contains(err.Error(), "relay migrate") {
			t.Fatalf("Enqueue without migrations = %v, want ErrNotMigrated naming the command", err)
		}
	})
}
