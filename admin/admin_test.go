package admin_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/admin"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// deadLetters enqueues messages of topic with ids prefix0..prefixN-1 and
// dead-letters them, returning their dead-letter ids, oldest first.
func deadLetters(t *testing.T, db *dbtest.DB, topic, prefix string, n int) []int64 {
	t.Helper()
	ctx := ctxT(t)
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: 4})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []outbox.Message
	for i := range n {
		msgs = append(msgs, outbox.Message{ID: fmt.Sprint(prefix, i), Topic: topic, Key: []byte("k"), Value: []byte("v")})
	}
	if err := ob.Enqueue(ctx, db.DB, msgs...); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Dialect.ReadBatch(ctx, db.DB, dialect.ReadRequest{Shards: []int{0, 1, 2, 3}, Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	var fails []dialect.Failure
	for _, r := range rows {
		if r.Topic == topic {
			fails = append(fails, dialect.Failure{RowID: r.RowID, Err: "rejected " + r.MessageID})
		}
	}
	if err := db.Dialect.DeadLetter(ctx, db.DB, fails); err != nil {
		t.Fatal(err)
	}
	ids, err := db.Dialect.(dialect.Operator).DeadLetterIDs(ctx, db.DB, dialect.DeadLetterFilter{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(ids)
	return ids
}

func newAdmin(t *testing.T, db *dbtest.DB, cfg admin.Config) *admin.Admin {
	t.Helper()
	a, err := admin.New(db.DB, db.Dialect, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestStats(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := ctxT(t)
		deadLetters(t, db, "payments", "p", 2)
		ob, _ := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: 4})
		if err := ob.Enqueue(ctx, db.DB, outbox.Message{Topic: "orders", Value: []byte("1")}, outbox.Message{Topic: "orders", Value: []byte("2")}); err != nil {
			t.Fatal(err)
		}
		if err := db.Dialect.EnsureShards(ctx, db.DB, 4); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Dialect.Heartbeat(ctx, db.DB, "r1", time.Minute); err != nil {
			t.Fatal(err)
		}
		s, err := newAdmin(t, db, admin.Config{}).Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []admin.TopicStats{{Topic: "orders", Pending: 2}, {Topic: "payments", DeadLetters: 2}}
		got := slices.Clone(s.Topics)
		for i := range got {
			got[i].OldestAge, got[i].LastDeadAge = 0, 0
		}
		if s.Pending != 2 || s.DeadLetters != 2 || s.RelaysAlive != 1 || len(s.Shards) != 4 || !slices.Equal(got, want) ||
			s.OldestAge <= 0 || s.Topics[1].LastDeadAge <= 0 {
			t.Fatalf("Stats = %+v; want 2 pending on orders, 2 dead letters on payments, one relay alive, 4 shards", s)
		}
	})
}

func TestReplayAndPurge(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := ctxT(t)
		ids := deadLetters(t, db, "orders", "m", 7)
		a := newAdmin(t, db, admin.Config{ChunkSize: 2})

		// Unknown ids: named, nothing changed.
		_, err := a.Replay(ctx, admin.Selection{IDs: []int64{ids[0], 1 << 40, 1<<40 + 1}})
		var unknown *admin.UnknownIDsError
		if !errors.As(err, &unknown) || !errors.Is(err, admin.ErrUnknownIDs) || !slices.Equal(unknown.IDs, []int64{1 << 40, 1<<40 + 1}) {
			t.Fatalf("Replay of unknown ids: %v", err)
		}
		if left, _ := db.Dialect.(dialect.Operator).DeadLetterIDs(ctx, db.DB, dialect.DeadLetterFilter{}); len(left) != 7 {
			t.Fatalf("a refused replay changed the dead letters: %d left", len(left))
		}
		for _, sel := range []admin.Selection{{}, {IDs: ids[:1], All: true}} {
			if _, err := a.Purge(ctx, sel); !errors.Is(err, admin.ErrEmptySelection) && !errors.Is(err, admin.ErrInvalidArgument) {
				t.Errorf("Purge(%+v): %v, want a selection error", sel, err)
			}
		}

		res, err := a.Replay(ctx, admin.Selection{IDs: ids[:3]})
		if err != nil || res != (admin.Result{Selected: 3, Done: 3}) {
			t.Fatalf("Replay = %+v, %v", res, err)
		}
		res, err = a.Replay(ctx, admin.Selection{Filter: admin.Filter{ErrorContains: "rejected m3"}})
		if err != nil || res.Done != 1 {
			t.Fatalf("Replay by filter = %+v, %v", res, err)
		}
		rows, _ := db.Dialect.ReadBatch(ctx, db.DB, dialect.ReadRequest{Shards: []int{0, 1, 2, 3}, Limit: 100})
		var replayed []string
		for _, r := range rows {
			replayed = append(replayed, r.MessageID)
		}
		if !slices.Equal(replayed, []string{"m0", "m1", "m2", "m3"}) {
			t.Fatalf("outbox after replay: %v, want m0..m3 in order", replayed)
		}
		res, err = a.Purge(ctx, admin.Selection{All: true})
		if err != nil || res.Done != 3 {
			t.Fatalf("Purge(All) = %+v, %v; want 3", res, err)
		}
		if n, err := a.PruneDeadLetters(ctx, -time.Second); !errors.Is(err, admin.ErrInvalidArgument) || n != 0 {
			t.Fatalf("PruneDeadLetters(-1s) = %d, %v", n, err)
		}
	})
}

func TestReplayPendingAgain(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := ctxT(t)
		ids := deadLetters(t, db, "orders", "m", 2)
		ob, _ := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: 4})
		if err := ob.Enqueue(ctx, db.DB, outbox.Message{ID: "m1", Topic: "orders", Value: []byte("again")}); err != nil {
			t.Fatal(err)
		}
		res, err := newAdmin(t, db, admin.Config{}).Replay(ctx, admin.Selection{IDs: ids})
		var pe *admin.PendingAgainError
		if !errors.Is(err, admin.ErrPendingAgain) || !errors.As(err, &pe) || !slices.Equal(pe.IDs, ids[1:]) || res.Done != 0 {
			t.Fatalf("Replay = %+v, %v; want a PendingAgainError naming %d", res, err, ids[1])
		}
	})
}

func TestPrune(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := ctxT(t)
		deadLetters(t, db, "orders", "old", 5)
		time.Sleep(300 * time.Millisecond)
		young := deadLetters(t, db, "invoices", "young", 2)
		n, err := newAdmin(t, db, admin.Config{ChunkSize: 2}).PruneDeadLetters(ctx, 200*time.Millisecond)
		left, _ := db.Dialect.(dialect.Operator).DeadLetterIDs(ctx, db.DB, dialect.DeadLetterFilter{})
		slices.Reverse(left)
		if err != nil || n != 5 || !slices.Equal(left, young) {
			t.Fatalf("PruneDeadLetters = %d, %v, left %v; want 5 pruned, %v left", n, err, left, young)
		}
	})
}

func TestNewValidates(t *testing.T) {
	db := dbtest.Open(t, dialect.NameSQLite)
	for _, cfg := range []admin.Config{{ChunkSize: -1}, {ChunkSize: dialect.MaxReplayIDs + 1}, {LiveWithin: -time.Second}} {
		if _, err := admin.New(db.DB, db.Dialect, cfg); !errors.Is(err, admin.ErrInvalidArgument) {
			t.Errorf("New(%+v): %v, want ErrInvalidArgument", cfg, err)
		}
	}
}

// bareDialect is a Dialect without the operators' statements.
type bareDialect struct{ dialect.Dialect }

func TestNewNeedsOperator(t *testing.T) {
	db := dbtest.Open(t, dialect.NameSQLite)
	_, err := admin.New(db.DB, bareDialect{db.Dialect}, admin.Config{})
	if !errors.Is(err, admin.ErrInvalidArgument) || !strings.Contains(err.Error(), "dialect.Operator") {
		t.Fatalf("New with a dialect without Operator: %v", err)
	}
}
