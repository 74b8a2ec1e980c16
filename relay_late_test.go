package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// TestRelayLateCommitters runs two relays while application transactions
// hold their outbox rows (and key locks) open for seconds before they
// commit or roll back, as a slow request or a remote call inside a
// transaction does, and other writers commit on other keys all along. The
// relays must go on publishing the others promptly: no relay statement may
// wait on a row it did not ask for. Late messages go out soon after their
// commit, rolled-back ones never, and every key keeps its order.
//
// On SQLite a write transaction holds the database's only write lock, so
// everyone waits for it; there the hold is shorter than the lease (as the
// docs require) and the bound on the others includes it.
func TestRelayLateCommitters(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		hold, bound := 4*time.Second, 2*time.Second
		if db.Dialect.Name() == dialect.NameSQLite {
			hold = 500 * time.Millisecond
			bound += hold
		}
		ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards})
		if err != nil {
			t.Fatal(err)
		}
		pub := outboxtest.NewFakePublisher()
		var mu sync.Mutex
		published := map[string]time.Time{} // message id -> first publish
		pub.SetHook(func(r outbox.Record) error {
			mu.Lock()
			defer mu.Unlock()
			if _, ok := published[r.MessageID]; !ok {
				published[r.MessageID] = time.Now()
			}
			return nil
		})
		for range 2 {
			start(t, db.DB, pub, fastConfig(db))
		}
		w := &lateWriter{ob: ob, db: db.DB, committed: map[string]time.Time{}, rolledBack: map[string]bool{}}

		// Warm up: both relays hold their shards before the late
		// transactions begin.
		w.tx(t, "warm", 0, false)
		waitFor(t, 10*time.Second, "the first message published", func() bool { return len(pub.Published()) > 0 })

		var late sync.WaitGroup
		lateBegun := time.Now()
		for i := range 4 {
			late.Go(func() { w.tx(t, fmt.Sprintf("late-%d", i), hold, i == 3) })
		}
		for n := 0; time.Since(lateBegun) < hold+time.Second; n++ {
			w.tx(t, fmt.Sprintf("k-%d", n%50), 0, n%10 == 9)
			time.Sleep(20 * time.Millisecond)
		}
		late.Wait()
		want := w.total()
		waitFor(t, 30*time.Second, fmt.Sprintf("%d committed messages published", want), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(published) >= want
		})

		mu.Lock()
		defer mu.Unlock()
		w.mu.Lock()
		defer w.mu.Unlock()
		var worst time.Duration
		var worstID string
		for id, c := range w.committed {
			p, ok := published[id]
			if !ok {
				t.Errorf("committed message %s never published", id)
				continue
			}
			if d := p.Sub(c); d > worst {
				worst, worstID = d, id
			}
		}
		for id := range w.rolledBack {
			if _, ok := published[id]; ok {
				t.Errorf("message %s of a rolled-back transaction published", id)
			}
		}
		requireKeyOrder(t, pub.Published(), func(r outbox.Record) (int, bool) { return w.seqOf(r.MessageID) })
		t.Logf("%d messages committed, %d rolled back, %d published again; late transactions held %s; longest commit-to-publish %s (%s)",
			len(w.committed), len(w.rolledBack), len(pub.Published())-len(published), hold, worst.Round(time.Millisecond), worstID)
		if worst > bound {
			t.Errorf("a message waited %s from its commit to its publication, bound %s: a relay statement waited on the late transactions",
				worst.Round(time.Millisecond), bound)
		}
		if v := pub.Violations(); len(v) != 0 {
			t.Errorf("publisher contract violations: %v", v)
		}
	})
}

// lateWriter commits and rolls back transactions of one key each,
// optionally held open before they end, and records when each commit
// returned.
type lateWriter struct {
	ob *outbox.Outbox
	db *sql.DB

	mu         sync.Mutex
	seq        map[string]int       // message id -> its number within its key
	keySeq     map[string]int       // key -> messages committed
	committed  map[string]time.Time // message id -> when its commit returned
	rolledBack map[string]bool
}

// tx enqueues three messages of key, holds the transaction open for hold,
// then commits it or rolls it back.
func (w *lateWriter) tx(t *testing.T, key string, hold time.Duration, rollback bool) {
	ctx := context.Background()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		t.Error(err)
		return
	}
	msgs := make([]outbox.Message, 3)
	for i := range msgs {
		msgs[i] = outbox.Message{ID: outbox.NewMessageID(), Topic: "late", Key: []byte(key), Value: []byte(key)}
	}
	if err := w.ob.Enqueue(ctx, tx, msgs...); err != nil {
		tx.Rollback()
		t.Errorf("Enqueue: %v", err)
		return
	}
	time.Sleep(hold)
	if rollback {
		if err := tx.Rollback(); err != nil {
			t.Error(err)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, m := range msgs {
			w.rolledBack[m.ID] = true
		}
		return
	}
	// A key's transactions do not overlap here (the late keys are their
	// own), so commit order is the key's order.
	if err := tx.Commit(); err != nil {
		t.Error(err)
		return
	}
	at := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seq == nil {
		w.seq, w.keySeq = map[string]int{}, map[string]int{}
	}
	for _, m := range msgs {
		w.keySeq[key]++
		w.seq[m.ID] = w.keySeq[key]
		w.committed[m.ID] = at
	}
}

func (w *lateWriter) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.committed)
}

func (w *lateWriter) seqOf(id string) (int, bool) {
	n, ok := w.seq[id]
	return n, ok
}
