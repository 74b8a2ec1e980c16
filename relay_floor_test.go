package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// floorWatch records the highest read floor of a relay's reads.
type floorWatch struct {
	outbox.NopObserver
	max atomic.Int64
}

func (w *floorWatch) OnBatchRead(e outbox.BatchReadEvent) {
	for {
		m := w.max.Load()
		if e.From <= m || w.max.CompareAndSwap(m, e.From) {
			return
		}
	}
}

// holdSnapshot opens a transaction on its own connection that keeps a
// snapshot for the rest of the test, as a long report or an idle-in-
// transaction session does: vacuum (PostgreSQL) and purge (InnoDB) keep
// every row deleted after it, so the relays' reads meet dead rows. SQLite
// has no such thing; it returns at once there.
func holdSnapshot(t *testing.T, db *dbtest.DB) {
	t.Helper()
	var begin []string
	switch db.Dialect.Name() {
	case dialect.NamePostgres:
		begin = []string{"BEGIN ISOLATION LEVEL REPEATABLE READ", "SELECT txid_current()"}
	case dialect.NameMySQL:
		begin = []string{"START TRANSACTION WITH CONSISTENT SNAPSHOT", "SELECT COUNT(*) FROM " + dialect.TableMessages}
	default:
		return
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range begin {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
	})
}

// TestRelayReadFloor checks the read floor (relay_floor.go) where it can go
// wrong: with a snapshot held open, so that dead rows stay, relays read
// above a floor they raised while churning through messages; then rows
// appear below where they read: transactions that took their ids early and
// commit late (and one that rolls back), a delayed message, a message whose
// first attempt fails, all while relays start and stop so that shards
// change owners. Every committed message must be published, promptly after
// its commit or its delay, with every key in order. On MySQL/MariaDB the
// relays cannot tell which ids are settled and must read from the lowest id
// (From stays 0); the same checks hold.
func TestRelayReadFloor(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		db := dbtest.OpenOwnDatabase(t, name) // the snapshot would hold up others' migrations
		holdSnapshot(t, db)
		rng := rand.New(rand.NewPCG(7, 12))
		l := newLedger(t, db)
		late := newLedger(t, db)
		pub := outboxtest.NewFakePublisher()
		var failOnce sync.Map // message ids to fail once
		var mu sync.Mutex
		published := map[string]time.Time{}
		pub.SetHook(func(r outbox.Record) error {
			if _, ok := failOnce.LoadAndDelete(r.MessageID); ok {
				return errors.New("refused once, for the test")
			}
			mu.Lock()
			defer mu.Unlock()
			if _, ok := published[r.MessageID]; !ok {
				published[r.MessageID] = time.Now()
			}
			return nil
		})
		publishedAt := func(id string) (time.Time, bool) {
			mu.Lock()
			defer mu.Unlock()
			at, ok := published[id]
			return at, ok
		}
		watches := []*floorWatch{}
		startRelay := func(p outbox.Publisher) *running {
			w := &floorWatch{}
			watches = append(watches, w)
			cfg := fastConfig(db)
			cfg.Observer = w
			return start(t, db.DB, p, cfg)
		}
		highest := func() int64 {
			var m int64
			for _, w := range watches {
				m = max(m, w.max.Load())
			}
			return m
		}
		stall := &stalling{Publisher: pub}
		r1 := startRelay(stall)
		startRelay(pub)

		// Churn: the rows of 1,000 published messages stay dead behind the
		// held snapshot.
		for range 40 {
			l.tx(t, db.DB, rng, 20, 25, false, "churn")
		}
		waitFor(t, 30*time.Second, "the churn published", func() bool { return len(pub.Published()) >= l.total() })
		floorWanted := db.Dialect.Name() != dialect.NameMySQL
		if floorWanted {
			waitFor(t, 10*time.Second, "a read floor above 0", func() bool { return highest() > 0 })
		}
		churnFloor := highest()

		// Rows below where the relays will read next. SQLite has one writer
		// at a time: no transaction can commit behind an open one, so its
		// ids follow commit order and there are no late committers.
		lates := 4
		if db.Dialect.Name() == dialect.NameSQLite {
			lates = 0
		}
		var ends []func(bool)
		for i := range lates {
			ends = append(ends, late.open(t, db.DB, rng, fmt.Sprintf("late%d-", i), 2, 3, "late"))
		}
		// More traffic above them while a third relay takes shards.
		for i := range 40 {
			if i == 15 {
				startRelay(pub)
			}
			l.tx(t, db.DB, rng, 20, 10, i%7 == 6, "churn")
			time.Sleep(10 * time.Millisecond)
		}
		waitFor(t, 30*time.Second, "the traffic above the late rows published", func() bool {
			s := l.check(pub.Published())
			return s.Published == l.total()
		})

		// The late transactions end; their rows must go out promptly.
		for i, end := range ends {
			end(i == 3)
		}
		committed := time.Now()
		// Before any shard moves (a relay that gains shards reads from the
		// lowest id again, which would hide a floor that passed them).
		waitFor(t, 3*time.Second, "the late messages published", func() bool {
			var lateRecs []outbox.Record
			for _, r := range pub.Published() {
				if r.Topic == "late" {
					lateRecs = append(lateRecs, r)
				}
			}
			return late.check(lateRecs).Published == late.total()
		})

		// Rows the reads pass because they are not available yet, with
		// traffic above them: a delayed message, and one whose first
		// attempt fails and waits for its retry.
		ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards})
		if err != nil {
			t.Fatal(err)
		}
		delay := 1500 * time.Millisecond
		delayed := outbox.Message{ID: outbox.NewMessageID(), Topic: "delayed", Key: []byte("delayed"), Value: []byte("v"), Delay: delay}
		delayedAt := time.Now()
		if err := ob.Enqueue(context.Background(), db.DB, delayed); err != nil {
			t.Fatal(err)
		}
		refused := outbox.Message{ID: outbox.NewMessageID(), Topic: "refused", Key: []byte("refused"), Value: []byte("v")}
		failOnce.Store(refused.ID, true)
		if err := ob.Enqueue(context.Background(), db.DB, refused); err != nil {
			t.Fatal(err)
		}

		for i := range 20 {
			l.tx(t, db.DB, rng, 20, 10, i%7 == 6, "churn")
			time.Sleep(10 * time.Millisecond)
		}
		waitFor(t, 30*time.Second, "the delayed and the refused message published", func() bool {
			_, d := publishedAt(delayed.ID)
			_, r := publishedAt(refused.ID)
			return d && r
		})

		// The first relay stalls, then stops, leaving rows of its shards
		// behind, below the floors of the relays that take them over; a
		// fourth relay starts.
		var stopped sync.WaitGroup
		for i := range 40 {
			switch i {
			case 5:
				stall.on.Store(true)
			case 15:
				stopped.Go(func() { r1.stop(t) })
			case 25:
				startRelay(pub)
			}
			l.tx(t, db.DB, rng, 20, 10, i%7 == 6, "churn")
			time.Sleep(10 * time.Millisecond)
		}
		stopped.Wait()
		waitFor(t, 30*time.Second, "every committed message published", func() bool {
			return late.check(pub.Published()).Published == late.total() && l.check(pub.Published()).Published == l.total()
		})
		var churnRecs, lateRecs []outbox.Record
		for _, r := range pub.Published() {
			switch r.Topic {
			case "churn":
				churnRecs = append(churnRecs, r)
			case "late":
				lateRecs = append(lateRecs, r)
			}
		}
		requireClean(t, l.check(churnRecs), l.total())
		requireClean(t, late.check(lateRecs), late.total())
		var slowest time.Duration
		for _, r := range lateRecs {
			at, _ := publishedAt(r.MessageID)
			slowest = max(slowest, at.Sub(committed))
		}
		at, _ := publishedAt(delayed.ID)
		t.Logf("floor after churn %d, highest %d; late messages out %s after their commit; delayed message out %s after enqueue (delay %s)",
			churnFloor, highest(), slowest.Round(time.Millisecond), at.Sub(delayedAt).Round(time.Millisecond), delay)
		if slowest > 3*time.Second {
			t.Errorf("a late message went out %s after its commit: it was not read promptly", slowest)
		}
		if at.Sub(delayedAt) < delay {
			t.Errorf("the delayed message went out before its delay")
		}
		// With nothing open any more, the floor moves past everything.
		if floorWanted {
			waitFor(t, 10*time.Second, "the read floor to pass the late rows", func() bool { return highest() > churnFloor })
		}
		if !floorWanted && highest() != 0 {
			t.Errorf("a relay read from %d on MySQL, where it cannot tell which ids are settled", highest())
		}
		if v := pub.Violations(); len(v) != 0 {
			t.Errorf("publisher contract violations: %v", v)
		}
	})
}

// stalling is a publisher that, once on, hangs until the call's context
// ends: its relay publishes nothing more, and leaves rows of its shards
// behind when it stops.
type stalling struct {
	outbox.Publisher
	on atomic.Bool
}

func (s *stalling) Publish(ctx context.Context, recs []outbox.Record) []error {
	if !s.on.Load() {
		return s.Publisher.Publish(ctx, recs)
	}
	<-ctx.Done()
	errs := make([]error, len(recs))
	for i := range errs {
		errs[i] = ctx.Err()
	}
	return errs
}
