package dialecttest

import (
	"bytes"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

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
