package admin_test

import (
	"context"
	"database/sql"
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
		// SQLite's clock (julianday('now')) counts milliseconds: let one
		// pass, so that the oldest age cannot round to zero.
		time.Sleep(3 * time.Millisecond)
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

// TestStatsIncomplete: an estimated outbox and capped dead letters mark the
// topic list incomplete; capped counts say so.
func TestStatsIncomplete(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := ctxT(t)
		deadLetters(t, db, "payments", "p", 3)
		ob, _ := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: 4})
		if err := ob.Enqueue(ctx, db.DB, outbox.Message{Topic: "orders", Value: []byte("1")}, outbox.Message{Topic: "orders", Value: []byte("2")}); err != nil {
			t.Fatal(err)
		}
		s, err := newAdmin(t, db, admin.Config{}).Stats(ctx)
		if err != nil || !s.TopicsComplete || s.Estimated || s.DeadLettersCapped || s.DeadLetters != 3 || len(s.Failed) != 0 {
			t.Fatalf("Stats = %+v, %v; want complete, exact, 3 dead letters", s, err)
		}
		s, err = newAdmin(t, db, admin.Config{ExactUpTo: 1}).Stats(ctx)
		if err != nil || s.TopicsComplete || !s.Estimated {
			t.Fatalf("Stats(ExactUpTo 1) = %+v, %v; want estimated, topics incomplete", s, err)
		}
		s, err = newAdmin(t, db, admin.Config{Cap: 2}).Stats(ctx)
		if err != nil || s.TopicsComplete || !s.DeadLettersCapped || s.DeadLetters != 2 {
			t.Fatalf("Stats(Cap 2) = %+v, %v; want at least 2 dead letters, capped, topics incomplete", s, err)
		}
	})
}

func TestReplayAndPurge(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := ctxT(t)
		ids := deadLetters(t, db, "orders", "m", 7)
		a := newAdmin(t, db, admin.Config{ChunkSize: 2})

		// Unknown ids, none existing: named, nothing changed.
		_, err := a.Replay(ctx, admin.Selection{IDs: []int64{1 << 40, 1<<40 + 1}})
		var unknown *admin.UnknownIDsError
		if !errors.As(err, &unknown) || !errors.Is(err, admin.ErrUnknownIDs) || !slices.Equal(unknown.IDs, []int64{1 << 40, 1<<40 + 1}) {
			t.Fatalf("Replay of unknown ids: %v", err)
		}
		if left, _ := db.Dialect.(dialect.Operator).DeadLetterIDs(ctx, db.DB, dialect.DeadLetterFilter{}); len(left) != 7 {
			t.Fatalf("a refused replay changed the dead letters: %d left", len(left))
		}
		for _, sel := range []admin.Selection{{}, {IDs: ids[:1], All: true}, {Filter: admin.Filter{Limit: 3}}, {IDs: ids[:1], Filter: admin.Filter{Limit: 3}}} {
			if _, err := a.Purge(ctx, sel); !errors.Is(err, admin.ErrEmptySelection) && !errors.Is(err, admin.ErrInvalidArgument) {
				t.Errorf("Purge(%+v): %v, want a selection error", sel, err)
			}
		}

		res, err := a.Replay(ctx, admin.Selection{IDs: ids[:3]})
		if err != nil || res.Selected != 3 || res.Done != 3 || res.Gone != 0 || len(res.Missing)+len(res.Refused) != 0 {
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

// TestReplayRefusedDoesNotStall: a dead letter whose message id is pending
// again, in the first chunk of a filter replay, is refused by name; the
// rest of its chunk and the later chunks are replayed.
func TestReplayRefusedDoesNotStall(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := ctxT(t)
		ids := deadLetters(t, db, "orders", "m", 7)
		ob, _ := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: 4})
		if err := ob.Enqueue(ctx, db.DB, outbox.Message{ID: "m1", Topic: "orders", Value: []byte("again")}); err != nil {
			t.Fatal(err)
		}
		res, err := newAdmin(t, db, admin.Config{ChunkSize: 3}).Replay(ctx, admin.Selection{Filter: admin.Filter{Topic: "orders"}})
		var re *admin.RefusedError
		want := []admin.Refusal{{ID: ids[1], MessageID: "m1"}}
		if !errors.Is(err, admin.ErrPendingAgain) || !errors.As(err, &re) || !slices.Equal(re.Refused, want) ||
			res.Done != 6 || res.Selected != 7 || !slices.Equal(res.Refused, want) || !strings.Contains(err.Error(), "message id m1") {
			t.Fatalf("Replay = %+v, %v; want 6 replayed and %d (m1) refused", res, err, ids[1])
		}
		left, _ := db.Dialect.(dialect.Operator).DeadLetterIDs(ctx, db.DB, dialect.DeadLetterFilter{})
		if !slices.Equal(left, ids[1:2]) {
			t.Fatalf("dead letters left %v, want [%d]", left, ids[1])
		}
	})
}

// TestPurgeWalksByID: a filter or All is walked a chunk at a time; a limit
// takes the newest; dead letters that die during the run are not taken.
func TestPurgeWalksByID(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := ctxT(t)
		ids := deadLetters(t, db, "orders", "m", 7)
		a := newAdmin(t, db, admin.Config{ChunkSize: 2})
		p, err := a.Plan(ctx, admin.Selection{All: true, Filter: admin.Filter{Limit: 3}})
		if err != nil || p.Count != 3 || p.Low != ids[4] || p.High != ids[6] {
			t.Fatalf("Plan(All, newest 3) = %+v, %v; want 3, ids %d..%d", p, err, ids[4], ids[6])
		}
		res, err := a.Purge(ctx, admin.Selection{All: true, Filter: admin.Filter{Limit: 3}})
		if err != nil || res.Done != 3 || res.Selected != 3 {
			t.Fatalf("Purge(All, newest 3) = %+v, %v; want 3", res, err)
		}
		res, err = a.Purge(ctx, admin.Selection{Filter: admin.Filter{Topic: "orders"}})
		left, _ := db.Dialect.(dialect.Operator).DeadLetterIDs(ctx, db.DB, dialect.DeadLetterFilter{})
		if err != nil || res.Done != 4 || len(left) != 0 {
			t.Fatalf("Purge(orders) = %+v, %v, left %v; want the other 4", res, err, left)
		}
	})
}

// TestReplayDuplicateMessageIDs: two dead letters of one message id, in one
// chunk and in two: Replay(All) replays the newest, names the older, and
// replays everything else.
func TestReplayDuplicateMessageIDs(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := ctxT(t)
		first := deadLetters(t, db, "orders", "m", 3)     // m0 m1 m2
		again := deadLetters(t, db, "orders", "m", 2)[3:] // m0 m1 again: newer dead letters
		res, err := newAdmin(t, db, admin.Config{ChunkSize: 2}).Replay(ctx, admin.Selection{All: true})
		want := []admin.Refusal{{ID: first[0], MessageID: "m0", NewerID: again[0]}, {ID: first[1], MessageID: "m1", NewerID: again[1]}}
		var re *admin.RefusedError
		if !errors.As(err, &re) || errors.Is(err, admin.ErrPendingAgain) || !slices.Equal(res.Refused, want) || res.Done != 3 {
			t.Fatalf("Replay(All) = %+v, %v; want m2 and the newer m0, m1 replayed, the older refused: %+v", res, err, want)
		}
		rows, _ := db.Dialect.ReadBatch(ctx, db.DB, dialect.ReadRequest{Shards: []int{0, 1, 2, 3}, Limit: 100})
		if len(rows) != 3 {
			t.Fatalf("outbox holds %d messages, want 3 (m0, m1, m2 once each)", len(rows))
		}
	})
}

// TestReplayAgainByIDs: ids of which some do not exist (a typo, or a
// replay killed and run again) fail, naming the missing ones, with nothing
// changed; with SkipMissing the missing ones are reported and the rest is
// replayed, and ids all gone are nothing to do.
func TestReplayAgainByIDs(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := ctxT(t)
		ids := deadLetters(t, db, "orders", "m", 5)
		a := newAdmin(t, db, admin.Config{ChunkSize: 2})
		if _, err := a.Replay(ctx, admin.Selection{IDs: ids[:2]}); err != nil {
			t.Fatal(err)
		}
		for _, do := range []func(context.Context, admin.Selection) (admin.Result, error){a.Replay, a.Purge} {
			var unknown *admin.UnknownIDsError
			res, err := do(ctx, admin.Selection{IDs: ids})
			if !errors.As(err, &unknown) || !slices.Equal(unknown.IDs, ids[:2]) || res.Done != 0 {
				t.Fatalf("Replay/Purge with 2 ids gone = %+v, %v; want an UnknownIDsError naming %v", res, err, ids[:2])
			}
			if left, err := a.ListDeadLetters(ctx, admin.Filter{}); err != nil || len(left) != 3 {
				t.Fatalf("after a refused Replay/Purge: %d dead letters (%v), want 3 (nothing changed)", len(left), err)
			}
		}
		if _, err := a.Plan(ctx, admin.Selection{All: true, SkipMissing: true}); !errors.Is(err, admin.ErrInvalidArgument) {
			t.Errorf("SkipMissing with All: %v, want ErrInvalidArgument", err)
		}
		res, err := a.Replay(ctx, admin.Selection{IDs: ids, SkipMissing: true})
		if err != nil || res.Done != 3 || res.Selected != 3 || !slices.Equal(res.Missing, ids[:2]) {
			t.Fatalf("Replay again = %+v, %v; want 3 replayed, %v missing", res, err, ids[:2])
		}
		res, err = a.Replay(ctx, admin.Selection{IDs: ids, SkipMissing: true})
		if err != nil || res.Done != 0 || res.Selected != 0 || !slices.Equal(res.Missing, ids) {
			t.Fatalf("Replay of ids all gone, SkipMissing = %+v, %v; want nothing done, all missing", res, err)
		}
		var unknown *admin.UnknownIDsError
		if _, err := a.Replay(ctx, admin.Selection{IDs: ids}); !errors.As(err, &unknown) || !slices.Equal(unknown.IDs, ids) {
			t.Fatalf("Replay of ids all gone: %v, want an UnknownIDsError naming them", err)
		}
	})
}

// flakyOperator is the real dialect whose first ReplayDeadLetters and
// DeleteDeadLetters fail as a deadlock victim would (after rolling back).
type flakyOperator struct {
	dialect.Dialect
	fails int
}

// deadlockError reads as MariaDB's deadlock error.
type deadlockError struct{}

func (deadlockError) Error() string {
	return "Error 1213 (40001): Deadlock found when trying to get lock; try restarting transaction"
}

var errDeadlock error = deadlockError{}

func (f *flakyOperator) op() dialect.Operator { return f.Dialect.(dialect.Operator) }

func (f *flakyOperator) Overview(ctx context.Context, db *sql.DB, r dialect.OverviewRequest) (dialect.Overview, error) {
	return f.op().Overview(ctx, db, r)
}
func (f *flakyOperator) ListDeadLetters(ctx context.Context, db *sql.DB, x dialect.DeadLetterFilter) ([]dialect.DeadLetter, error) {
	return f.op().ListDeadLetters(ctx, db, x)
}
func (f *flakyOperator) DeadLetterIDs(ctx context.Context, db *sql.DB, x dialect.DeadLetterFilter) ([]int64, error) {
	return f.op().DeadLetterIDs(ctx, db, x)
}
func (f *flakyOperator) DeadLetterSpan(ctx context.Context, db *sql.DB, x dialect.DeadLetterFilter) (dialect.DeadLetterSpan, error) {
	return f.op().DeadLetterSpan(ctx, db, x)
}
func (f *flakyOperator) ReplayDeadLetters(ctx context.Context, db *sql.DB, ids []int64) (dialect.ReplayOutcome, error) {
	if f.fails++; f.fails == 1 {
		return dialect.ReplayOutcome{}, errDeadlock
	}
	return f.op().ReplayDeadLetters(ctx, db, ids)
}
func (f *flakyOperator) DeleteDeadLetters(ctx context.Context, db *sql.DB, ids []int64) (int64, error) {
	if f.fails++; f.fails == 1 {
		return 0, errDeadlock
	}
	return f.op().DeleteDeadLetters(ctx, db, ids)
}
func (f *flakyOperator) PruneDeadLetters(ctx context.Context, db *sql.DB, age time.Duration, limit int) (int64, error) {
	return f.op().PruneDeadLetters(ctx, db, age, limit)
}

// TestChunkRetriedOnContention: a chunk that fails with a deadlock is run
// again; the replay and the purge complete.
func TestChunkRetriedOnContention(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := ctxT(t)
		ids := deadLetters(t, db, "orders", "m", 4)
		for _, op := range []string{"replay", "purge"} {
			a, err := admin.New(db.DB, &flakyOperator{Dialect: db.Dialect}, admin.Config{ChunkSize: 2})
			if err != nil {
				t.Fatal(err)
			}
			do, sel := a.Replay, admin.Selection{IDs: ids[:2]}
			if op == "purge" {
				do, sel = a.Purge, admin.Selection{IDs: ids[2:]}
			}
			if res, err := do(ctx, sel); err != nil || res.Done != 2 {
				t.Fatalf("%s with one deadlock = %+v, %v; want 2 done", op, res, err)
			}
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
