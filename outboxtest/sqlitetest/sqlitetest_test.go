package sqlitetest_test

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/faketb"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/sqlitetest"
)

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// backend is an Enqueuer with a way to read back what it stored. The
// contract tests below run on the Recorder and on the real Outbox, so the
// fake can be trusted where it claims to behave the same.
type backend struct {
	name string
	// open returns enqueue, which enqueues msgs in one transaction through
	// exec (nil exec: a nil executor), and read, which returns what is stored.
	open func(t *testing.T) (enqueue func(nilExec bool, msgs ...outbox.Message) error, read func() []outbox.Message)
}

var backends = []backend{
	{"Recorder", func(t *testing.T) (func(bool, ...outbox.Message) error, func() []outbox.Message) {
		rec := &outboxtest.Recorder{}
		enqueue := func(nilExec bool, msgs ...outbox.Message) error {
			var exec outbox.Execer = outboxtest.NopExecer{}
			if nilExec {
				exec = nil
			}
			return rec.Enqueue(context.Background(), exec, msgs...)
		}
		return enqueue, rec.Messages
	}},
	{"SQLite", func(t *testing.T) (func(bool, ...outbox.Message) error, func() []outbox.Message) {
		db := sqlitetest.New(t)
		enqueue := func(nilExec bool, msgs ...outbox.Message) error {
			if nilExec {
				return db.Outbox.Enqueue(context.Background(), nil, msgs...)
			}
			return inTx(t, db.DB, func(tx *sql.Tx) error {
				return db.Outbox.Enqueue(context.Background(), tx, msgs...)
			})
		}
		return enqueue, func() []outbox.Message { return db.Messages(t) }
	}},
}

// inTx runs f in a transaction of db and commits if f succeeds.
func inTx(t *testing.T, db *sql.DB, f func(*sql.Tx) error) error {
	t.Helper()
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return nil
}

func TestContractRoundTrip(t *testing.T) {
	in := []outbox.Message{
		{Topic: "orders", Key: []byte("o-1"), Value: []byte(`{"total":3}`)},
		{Topic: "orders", ID: "order-2-created", Key: []byte{}, Value: []byte{}},
		{Topic: "orders.compacted", Key: []byte("o-1")}, // tombstone
		{Topic: "audit", Value: []byte("v"), Headers: []outbox.Header{
			{Key: "type", Value: []byte("created")},
			{Key: "null", Value: nil},
			{Key: "empty", Value: []byte{}},
			{Key: "type", Value: []byte("again")},
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			enqueue, read := b.open(t)
			if err := enqueue(false, in[:2]...); err != nil {
				t.Fatal(err)
			}
			if err := enqueue(false, in[2:]...); err != nil {
				t.Fatal(err)
			}
			got := read()
			if len(got) != len(in) {
				t.Fatalf("read %d messages, want %d", len(got), len(in))
			}
			for i := range in {
				want := in[i]
				if want.ID == "" {
					if !uuidV7.MatchString(got[i].ID) {
						t.Errorf("message %d: ID %q is not a UUIDv7", i, got[i].ID)
					}
					want.ID = got[i].ID
				}
				if !reflect.DeepEqual(got[i], want) {
					t.Errorf("message %d:\n got %#v\nwant %#v", i, got[i], want)
				}
			}
		})
	}
}

func TestContractInvalidStoresNothing(t *testing.T) {
	valid := outbox.Message{Topic: "orders", Value: []byte("v")}
	tests := []struct {
		name    string
		nilExec bool
		msgs    []outbox.Message
		want    error
	}{
		{"invalid topic", false, []outbox.Message{valid, {Topic: "bad topic"}}, outbox.ErrInvalidTopic},
		{"reserved header", false, []outbox.Message{valid, {Topic: "t", Headers: []outbox.Header{{Key: outbox.HeaderID}}}}, outbox.ErrInvalidHeader},
		{"too large", false, []outbox.Message{valid, {Topic: "t", Value: make([]byte, outbox.DefaultMaxMessageBytes+1)}}, outbox.ErrMessageTooLarge},
		{"nil executor", true, []outbox.Message{valid}, outbox.ErrNilExecutor},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			enqueue, read := b.open(t)
			for _, tt := range tests {
				err := enqueue(tt.nilExec, tt.msgs...)
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
				}
				if tt.want != outbox.ErrNilExecutor && !errors.Is(err, outbox.ErrInvalidMessage) {
					t.Errorf("%s: %v does not match ErrInvalidMessage", tt.name, err)
				}
			}
			if got := read(); len(got) != 0 {
				t.Errorf("stored %d messages after errors, want none: %+v", len(got), got)
			}
		})
	}
}

func TestSQLiteCommitAndRollback(t *testing.T) {
	db := sqlitetest.New(t)
	ctx := context.Background()
	db.RequireNoMessages(t)

	// Rolled back: the message goes with the business change.
	tx, err := db.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Outbox.Enqueue(ctx, tx, outbox.Message{Topic: "orders", Value: []byte("lost")}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	db.RequireNoMessages(t)

	// Committed: visible.
	tx, err = db.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Outbox.Enqueue(ctx, tx, outbox.Message{Topic: "orders", Value: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	if got := db.Messages(t); len(got) != 0 {
		t.Errorf("uncommitted message visible outside its transaction: %+v", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got := db.Messages(t)
	if len(got) != 1 || got[0].Topic != "orders" || string(got[0].Value) != "kept" {
		t.Errorf("after commit: got %+v, want the one kept message", got)
	}
}

func TestSQLiteDuplicateID(t *testing.T) {
	db := sqlitetest.New(t)
	ctx := context.Background()
	m := outbox.Message{Topic: "orders", ID: "order-1-created"}
	if err := db.Outbox.Enqueue(ctx, db.DB, m); err != nil {
		t.Fatal(err)
	}
	if err := db.Outbox.Enqueue(ctx, db.DB, m); err == nil {
		t.Error("second message with the same ID was accepted")
	}
	if got := db.Messages(t); len(got) != 1 {
		t.Errorf("got %d messages, want 1", len(got))
	}
}

func TestSQLiteFailures(t *testing.T) {
	t.Run("RequireNoMessages with a message", func(t *testing.T) {
		db := sqlitetest.New(t)
		if err := db.Outbox.Enqueue(context.Background(), db.DB, outbox.Message{Topic: "orders", Key: []byte("k")}); err != nil {
			t.Fatal(err)
		}
		tb := &faketb.TB{}
		db.RequireNoMessages(tb)
		if len(tb.Fatals) != 1 {
			t.Fatalf("Fatalf called %d times, want once", len(tb.Fatals))
		}
		want := `sqlitetest: expected no pending messages, found 1:` + "\n\t" + `[0] topic="orders" key="k" value=<nil>`
		if !strings.HasPrefix(tb.Fatals[0], want) {
			t.Errorf("message:\n%s\ndoes not start with:\n%s", tb.Fatals[0], want)
		}
	})
	t.Run("Messages on a closed database", func(t *testing.T) {
		db := sqlitetest.New(t)
		db.DB.Close()
		tb := &faketb.TB{}
		if got := db.Messages(tb); got != nil {
			t.Errorf("got %v after failing", got)
		}
		if len(tb.Fatals) != 1 || !strings.HasPrefix(tb.Fatals[0], "sqlitetest: read outbox_messages: ") {
			t.Errorf("Fatalf calls: %q", tb.Fatals)
		}
	})
	t.Run("Messages on a nil SQLite", func(t *testing.T) {
		tb := &faketb.TB{}
		var db *sqlitetest.DB
		db.Messages(tb)
		if len(tb.Fatals) != 1 || !strings.HasPrefix(tb.Fatals[0], "sqlitetest: ") {
			t.Errorf("Fatalf calls: %q", tb.Fatals)
		}
	})
}
