package dialecttest

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// The operators' methods (dialect.Operator): Overview, and the
// dead-letter tools.

// op returns the dialect's Operator. A dialect without one skips these
// tests: it is optional (every dialect of this module has it, which
// TestOperator in package dialect checks).
func (s suite) op(t *testing.T) dialect.Operator {
	t.Helper()
	op, ok := s.Dialect.(dialect.Operator)
	if !ok {
		t.Skipf("%s does not implement dialect.Operator", s.Dialect.Name())
	}
	return op
}

// deadLetters inserts msgs, reads them and dead-letters them with the error
// "err <message id>", then returns their dead-letter ids, oldest first.
func (s suite) deadLetters(t *testing.T, db *sql.DB, msgs ...dialect.InsertRow) []int64 {
	t.Helper()
	ctx := ctxT(t)
	s.insert(t, db, msgs...)
	want := map[string]bool{}
	for _, m := range msgs {
		want[m.MessageID] = true
	}
	var fails []dialect.Failure
	for _, r := range s.read(t, db, allShards(), 10_000) {
		if want[r.MessageID] {
			fails = append(fails, dialect.Failure{RowID: r.RowID, Err: "err " + r.MessageID})
		}
	}
	if err := s.Dialect.DeadLetter(ctx, db, fails); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	all, err := s.op(t).DeadLetterIDs(ctx, db, dialect.DeadLetterFilter{})
	if err != nil {
		t.Fatalf("DeadLetterIDs: %v", err)
	}
	slices.Reverse(all)
	return all[len(all)-len(msgs):]
}

func (s suite) overviewExact(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	if err := s.Dialect.EnsureShards(ctx, db, numShards); err != nil {
		t.Fatal(err)
	}
	o, err := s.op(t).Overview(ctx, db, dialect.OverviewRequest{})
	if err != nil || o.Pending != 0 || len(o.Topics) != 0 || len(o.Shards) != numShards || o.Now.IsZero() {
		t.Fatalf("empty Overview = %+v, %v", o, err)
	}
	s.deadLetters(t, db, onShard("dead", "x", 5))
	other := onShard("p3", "k", 2)
	other.Topic = "payments"
	s.insert(t, db, onShard("o1", "a", 1), onShard("o2", "b", 1), onShard("o3", "c", 2), other)
	recs := s.read(t, db, []int{1}, 1)
	if err := s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: recs[0].RowID, Delay: time.Hour, Err: "broker said no"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dialect.Heartbeat(ctx, db, "relay-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dialect.Acquire(ctx, db, "relay-a", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	o, err = s.op(t).Overview(ctx, db, dialect.OverviewRequest{})
	if err != nil {
		t.Fatal(err)
	}
	topics := fmt.Sprint(o.Topics[0].Topic, o.Topics[0].Pending, o.Topics[1].Topic, o.Topics[1].Pending)
	if o.Estimated || o.Pending != 4 || len(o.Topics) != 2 || topics != "orders3payments1" {
		t.Fatalf("Overview: estimated %v, pending %d, topics %+v; want exact, 4, orders 3 and payments 1", o.Estimated, o.Pending, o.Topics)
	}
	if o.Retrying != 1 || len(o.Waiting) != 1 || o.Waiting[0].MessageID != "o1" || o.Waiting[0].Attempts != 1 ||
		o.Waiting[0].NextAttempt.Sub(o.Now) < 50*time.Minute || len(o.Errors) != 1 || o.Errors[0] != (dialect.ErrorCount{Err: "broker said no", Count: 1}) {
		t.Fatalf("Overview waiting: %d %+v %+v; want o1 waiting an hour with its error", o.Retrying, o.Waiting, o.Errors)
	}
	if len(o.Dead) != 1 || o.Dead[0].Topic != "orders" || o.Dead[0].Count != 1 || o.Dead[0].Newest.IsZero() {
		t.Fatalf("Overview dead letters %+v; want orders: 1", o.Dead)
	}
	if len(o.Shards) != numShards || o.Shards[1].Pending != 2 || o.Shards[2].Pending != 2 || o.Shards[0].Pending != 0 ||
		o.Shards[1].Oldest.IsZero() || !o.Shards[0].Oldest.IsZero() {
		t.Fatalf("Overview shards %+v; want 2 pending on shards 1 and 2", o.Shards)
	}
	leased := 0
	for _, sh := range o.Shards {
		if sh.Owner == "relay-a" && sh.LeaseUntil.After(o.Now) {
			leased++
		}
	}
	if leased != 1 {
		t.Fatalf("Overview shards %+v; want one leased by relay-a", o.Shards)
	}
	if len(o.Relays) != 1 || o.Relays[0].ID != "relay-a" || o.Now.Sub(o.Relays[0].HeartbeatAt) > time.Minute {
		t.Fatalf("Overview relays %+v (now %v)", o.Relays, o.Now)
	}
	if age := o.Now.Sub(o.Oldest); o.Oldest.IsZero() || age < 0 || age > time.Minute {
		t.Fatalf("Overview oldest %v, now %v", o.Oldest, o.Now)
	}
}

// overviewSampled makes Overview estimate (ExactUpTo below the row count)
// on an outbox small enough for the sample to cover it whole: the estimate
// is then exact.
func (s suite) overviewSampled(t *testing.T, db *sql.DB) {
	var msgs []dialect.InsertRow
	for i := range 60 {
		m := onShard(fmt.Sprint("m", i), fmt.Sprint("k", i), i%4)
		if i%3 == 0 {
			m.Topic = "payments"
		}
		msgs = append(msgs, m)
	}
	s.insert(t, db, msgs...)
	o, err := s.op(t).Overview(ctxT(t), db, dialect.OverviewRequest{ExactUpTo: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Estimated || o.Pending != 60 || len(o.Topics) != 2 || o.Topics[0].Pending != 40 || o.Topics[1].Pending != 20 {
		t.Fatalf("sampled Overview: estimated %v, pending %d, topics %+v; want estimated, 60, orders 40, payments 20", o.Estimated, o.Pending, o.Topics)
	}
}

// overviewCapped: with Cap 2, three messages waiting for a retry and three
// dead letters are counted as at least 2, marked capped; the dead letters
// per topic are of the newest 2.
func (s suite) overviewCapped(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	s.deadLetters(t, db, onShard("d1", "k", 1))
	s.deadLetters(t, db, onShard("d2", "k", 1), onShard("d3", "k", 1))
	s.insert(t, db, onShard("r1", "a", 1), onShard("r2", "b", 2), onShard("r3", "c", 3))
	var retries []dialect.Retry
	for _, r := range s.read(t, db, allShards(), 10) {
		retries = append(retries, dialect.Retry{RowID: r.RowID, Delay: time.Hour, Err: "broker said no"})
	}
	if err := s.Dialect.Retry(ctx, db, retries); err != nil || len(retries) != 3 {
		t.Fatalf("Retry of %d: %v", len(retries), err)
	}
	o, err := s.op(t).Overview(ctx, db, dialect.OverviewRequest{Cap: 2})
	if err != nil || len(o.Failed) != 0 {
		t.Fatalf("Overview: %v, failed steps %v", err, o.Failed)
	}
	if !o.RetryingCapped || o.Retrying != 2 || o.SampledFrom != 2 || len(o.Waiting) != 2 || len(o.Errors) != 1 || o.Errors[0].Count != 2 {
		t.Errorf("capped retries: capped %v, %d, waiting %+v, errors %+v; want at least 2, from 2 rows", o.RetryingCapped, o.Retrying, o.Waiting, o.Errors)
	}
	if !o.DeadCapped || o.DeadLetters != 2 || len(o.Dead) != 1 || o.Dead[0].Count != 2 {
		t.Errorf("capped dead letters: capped %v, %d, per topic %+v; want at least 2, the newest 2", o.DeadCapped, o.DeadLetters, o.Dead)
	}
	// The sample and the errors read fewer rows than the count.
	o, err = s.op(t).Overview(ctx, db, dialect.OverviewRequest{SampleFrom: 2})
	if err != nil || o.RetryingCapped || o.Retrying != 3 || o.SampledFrom != 2 || len(o.Waiting) != 2 || len(o.Errors) != 1 || o.Errors[0].Count != 2 {
		t.Errorf("Overview(SampleFrom 2): %v, retrying %d (capped %v), sampled from %d, waiting %+v, errors %+v; want 3, sampled from 2",
			err, o.Retrying, o.RetryingCapped, o.SampledFrom, o.Waiting, o.Errors)
	}
	o, err = s.op(t).Overview(ctx, db, dialect.OverviewRequest{})
	if err != nil || o.RetryingCapped || o.Retrying != 3 || o.SampledFrom != 3 || o.DeadCapped || o.DeadLetters != 3 {
		t.Errorf("uncapped Overview: %v, retrying %d (capped %v), dead %d (capped %v); want 3 and 3", err, o.Retrying, o.RetryingCapped, o.DeadLetters, o.DeadCapped)
	}
}

// overviewStepFails: a step that fails (here the dead-letter table is
// gone) is named in Overview.Failed; the other steps still answer.
func (s suite) overviewStepFails(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	if err := s.Dialect.EnsureShards(ctx, db, numShards); err != nil {
		t.Fatal(err)
	}
	s.insert(t, db, onShard("p1", "k", 1))
	if _, err := db.ExecContext(ctx, "DROP TABLE "+dialect.TableDeadLetters); err != nil {
		t.Fatal(err)
	}
	o, err := s.op(t).Overview(ctx, db, dialect.OverviewRequest{})
	if err != nil || len(o.Failed) != 1 || o.Failed[0].Step != "dead letters" || !dialect.IsMissingTable(o.Failed[0].Err) {
		t.Fatalf("Overview without the dead-letter table: %v, failed %+v; want the dead letters step named, the rest read", err, o.Failed)
	}
	if o.Pending != 1 || len(o.Shards) != numShards {
		t.Errorf("Overview with a failed step: pending %d, %d shards; want 1 and %d", o.Pending, len(o.Shards), numShards)
	}
}

// overviewStepFailsHalfway: a step that fails after its first query
// answered (here the retries step counts, then cannot read last_error)
// leaves none of its figures behind: zero, not the count it read.
func (s suite) overviewStepFailsHalfway(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	s.insert(t, db, onShard("r1", "k", 1))
	var retries []dialect.Retry
	for _, r := range s.read(t, db, allShards(), 10) {
		retries = append(retries, dialect.Retry{RowID: r.RowID, Delay: time.Hour, Err: "broker said no"})
	}
	if err := s.Dialect.Retry(ctx, db, retries); err != nil || len(retries) != 1 {
		t.Fatalf("Retry of %d: %v", len(retries), err)
	}
	if _, err := db.ExecContext(ctx, "ALTER TABLE "+dialect.TableMessages+" DROP COLUMN last_error"); err != nil {
		t.Fatal(err)
	}
	o, err := s.op(t).Overview(ctx, db, dialect.OverviewRequest{})
	if err != nil || len(o.Failed) != 1 || o.Failed[0].Step != "retries" {
		t.Fatalf("Overview without last_error: %v, failed %+v; want the retries step named", err, o.Failed)
	}
	if o.Retrying != 0 || o.RetryingCapped || o.Waiting != nil || o.Errors != nil {
		t.Errorf("Overview with the retries step failed half-way: retrying %d, waiting %+v, errors %+v; want nothing", o.Retrying, o.Waiting, o.Errors)
	}
	if o.Pending != 1 {
		t.Errorf("Overview: pending %d, want 1", o.Pending)
	}
}

func (s suite) listDeadLetters(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	m := onShard("a", "k", 1)
	m.Key, m.Value, m.Headers = []byte{0, 1, 2}, []byte("value a"), []byte{1, 1, 1, 'h', 'v'}
	ids := s.deadLetters(t, db, m, onShard("b", "k", 2), onShard("c", "j", 3))
	all, err := s.op(t).ListDeadLetters(ctx, db, dialect.DeadLetterFilter{})
	if err != nil || len(all) != 3 || all[0].ID != ids[2] || all[2].ID != ids[0] {
		t.Fatalf("ListDeadLetters = %+v, %v; want 3, newest first", all, err)
	}
	a := all[2]
	if a.MessageID != "a" || a.Topic != "orders" || !slices.Equal(a.Key, m.Key) || string(a.Value) != "value a" ||
		!slices.Equal(a.Headers, m.Headers) || a.Shard != 1 || a.Attempts != 1 || a.LastError != "err a" ||
		a.CreatedAt.IsZero() || a.DeadAt.Before(a.CreatedAt) {
		t.Fatalf("dead letter a = %+v", a)
	}
	future := a.DeadAt.Add(time.Hour)
	for _, tc := range []struct {
		f    dialect.DeadLetterFilter
		want []int64
	}{
		{dialect.DeadLetterFilter{Limit: 2}, []int64{ids[2], ids[1]}},
		{dialect.DeadLetterFilter{BelowID: ids[2], Limit: 1}, []int64{ids[1]}},
		{dialect.DeadLetterFilter{ErrorContains: "err b"}, []int64{ids[1]}},
		{dialect.DeadLetterFilter{ErrorContains: "%"}, nil},
		{dialect.DeadLetterFilter{Topic: "payments"}, nil},
		{dialect.DeadLetterFilter{Since: future}, nil},
		{dialect.DeadLetterFilter{Before: future, IDs: []int64{ids[0], ids[2], 1 << 40}}, []int64{ids[2], ids[0]}},
		{dialect.DeadLetterFilter{Before: a.DeadAt.Add(-time.Hour)}, nil},
	} {
		got, err := s.op(t).DeadLetterIDs(ctx, db, tc.f)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("DeadLetterIDs(%+v) = %v, %v; want %v", tc.f, got, err, tc.want)
		}
	}
}

func (s suite) replayDeadLetters(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	dl := s.deadLetters(t, db, onShard("a", "k", 1), onShard("b", "k", 1), onShard("c", "j", 2))
	out, err := s.op(t).ReplayDeadLetters(ctx, db, []int64{dl[0], dl[1]})
	if err != nil || out.Replayed != 2 || len(out.Refused) != 0 {
		t.Fatalf("ReplayDeadLetters = %+v, %v; want 2", out, err)
	}
	recs := s.read(t, db, allShards(), 10)
	if got := ids(recs); !slices.Equal(got, []string{"a", "b"}) || recs[0].Attempts != 0 || string(recs[0].Value) != "a" || recs[0].Shard != 1 {
		t.Fatalf("after replay the outbox holds %+v; want a then b, attempts 0", recs)
	}
	left, _ := s.op(t).DeadLetterIDs(ctx, db, dialect.DeadLetterFilter{})
	if !slices.Equal(left, []int64{dl[2]}) {
		t.Fatalf("dead letters left %v, want [%d]", left, dl[2])
	}
	// Replayed already: skipped, nothing duplicated.
	if out, err := s.op(t).ReplayDeadLetters(ctx, db, []int64{dl[0]}); err != nil || out.Replayed != 0 || len(out.Refused) != 0 {
		t.Fatalf("second ReplayDeadLetters = %+v, %v; want 0", out, err)
	}
	if got := len(s.read(t, db, allShards(), 10)); got != 2 {
		t.Fatalf("outbox holds %d after a second replay, want 2", got)
	}
}

// replayPendingAgain: a dead letter whose message id is in the outbox
// again is refused by name and stays; the others of the call are replayed.
func (s suite) replayPendingAgain(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	ids := s.deadLetters(t, db, onShard("a", "k", 1), onShard("b", "k", 1), onShard("c", "j", 2))
	s.insert(t, db, onShard("b", "k", 1)) // the application enqueued b again
	out, err := s.op(t).ReplayDeadLetters(ctx, db, ids)
	want := []dialect.Refusal{{ID: ids[1], MessageID: "b"}}
	if err != nil || out.Replayed != 2 || !slices.Equal(out.Refused, want) {
		t.Fatalf("ReplayDeadLetters = %+v, %v; want a and c replayed, b refused: %+v", out, err, want)
	}
	left, _ := s.op(t).DeadLetterIDs(ctx, db, dialect.DeadLetterFilter{})
	if !slices.Equal(left, ids[1:2]) || len(s.read(t, db, allShards(), 10)) != 3 {
		t.Fatalf("after a partly refused replay: dead letters %v, want [%d]; outbox a, b, c", left, ids[1])
	}
}

// replayDuplicates: two dead letters of one message id (enqueued again
// after it was dead-lettered, and dead-lettered again), in one call and in
// two: the newest is replayed, the older refused by name, nothing fails.
func (s suite) replayDuplicates(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	first := s.deadLetters(t, db, onShard("a", "k", 1), onShard("d", "k", 1))
	second := s.deadLetters(t, db, onShard("a", "k", 1), onShard("e", "k", 1))
	third := s.deadLetters(t, db, onShard("d", "k", 1))
	// a twice in one call; d's newer dead letter is not in the call.
	out, err := s.op(t).ReplayDeadLetters(ctx, db, []int64{first[0], first[1], second[0], second[1]})
	want := []dialect.Refusal{{ID: first[0], MessageID: "a", NewerID: second[0]}, {ID: first[1], MessageID: "d", NewerID: third[0]}}
	if err != nil || out.Replayed != 2 || !slices.Equal(out.Refused, want) {
		t.Fatalf("ReplayDeadLetters = %+v, %v; want the newer a and e replayed, refused %+v", out, err, want)
	}
	got := ids(s.read(t, db, allShards(), 10))
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "e"}) {
		t.Fatalf("outbox holds %v, want a and e once each", got)
	}
	if out, err := s.op(t).ReplayDeadLetters(ctx, db, third); err != nil || out.Replayed != 1 {
		t.Fatalf("replaying the newest d = %+v, %v; want 1", out, err)
	}
}

// replayRace replays the same dead letters from several goroutines at
// once: each is replayed exactly once.
func (s suite) replayRace(t *testing.T, db *sql.DB) {
	var msgs []dialect.InsertRow
	for i := range 200 {
		msgs = append(msgs, msg(fmt.Sprint("r", i), fmt.Sprint("k", i%7), "v"))
	}
	op := s.op(t)
	ids := s.deadLetters(t, db, msgs...)
	var mu sync.Mutex
	var total int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			ctx := ctxT(t)
			order := slices.Clone(ids)
			if g%2 == 1 {
				slices.Reverse(order)
			}
			for len(order) > 0 {
				chunk := order[:min(len(order), 50)]
				out, err := op.ReplayDeadLetters(ctx, db, chunk)
				n := out.Replayed
				if err != nil && isRetriableContention(err) {
					continue
				}
				if err != nil {
					t.Errorf("ReplayDeadLetters: %v", err)
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
				order = order[len(chunk):]
			}
		})
	}
	wg.Wait()
	if got := len(s.read(t, db, allShards(), 1000)); total != 200 || got != 200 {
		t.Fatalf("replayed %d, outbox holds %d; want 200 and 200", total, got)
	}
}

func (s suite) purgeAndPrune(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	ids := s.deadLetters(t, db, onShard("a", "k", 1), onShard("b", "k", 1), onShard("c", "k", 1), onShard("d", "k", 1))
	if n, err := s.op(t).DeleteDeadLetters(ctx, db, []int64{ids[1], 1 << 40}); err != nil || n != 1 {
		t.Fatalf("DeleteDeadLetters = %d, %v; want 1", n, err)
	}
	if n, err := s.op(t).PruneDeadLetters(ctx, db, time.Hour, 10); err != nil || n != 0 {
		t.Fatalf("PruneDeadLetters(1h) = %d, %v; want 0", n, err)
	}
	time.Sleep(50 * time.Millisecond)
	if n, err := s.op(t).PruneDeadLetters(ctx, db, 10*time.Millisecond, 2); err != nil || n != 2 {
		t.Fatalf("PruneDeadLetters(10ms, 2) = %d, %v; want 2", n, err)
	}
	left, _ := s.op(t).DeadLetterIDs(ctx, db, dialect.DeadLetterFilter{})
	if !slices.Equal(left, []int64{ids[3]}) {
		t.Fatalf("after prune %v left, want the newest, [%d]", left, ids[3])
	}
	var tooMany *dialect.TooManyIDsError
	if _, err := s.op(t).DeleteDeadLetters(ctx, db, make([]int64, dialect.MaxReplayIDs+1)); !errors.As(err, &tooMany) {
		t.Fatalf("DeleteDeadLetters of too many ids: %v, want a TooManyIDsError", err)
	}
}
