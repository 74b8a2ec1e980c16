//go:build unix

package chaos

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outboxrelay/outbox"
)

// writers run business transactions on numKeys keys shared between them.
// In one transaction, for each of 1-5 messages, a writer increments the
// key's row in chaos_keys and reads it back (the row lock orders the
// writers of a key, so seq order is commit order is enqueue order), writes
// chaos_ledger and enqueues the message; keys are locked in sorted order.
// Some transactions roll back on purpose, some stay open for seconds
// before they commit or roll back (a slow request, a remote call inside the
// transaction: late committers hold their outbox rows and key locks all
// that time), and every poisonEvery-th enqueues one message too large for
// the broker (recorded in chaos_poison). Together they start txRate
// transactions a second at most. The ledger tables are the truth: a commit
// cut by a killed connection has an unknown outcome, which they decide.
type writers struct {
	h    *harness
	ob   *outbox.Outbox
	dbs  []*sql.DB
	wg   sync.WaitGroup
	quit atomic.Bool
	once sync.Once
	pace *time.Ticker // one tick per transaction
	t0   time.Time    // when they started
	t1   atomic.Int64 // when they stopped (unix nanoseconds)

	lateRate           float64       // share of committing transactions that stay open
	lateAbortRate      float64       // share of rolled-back transactions that stay open first
	lateMin, lateRange time.Duration // how long they stay open

	txs, commits, rollbacks, late, lateAborts, poison, failed atomic.Int64

	mu         sync.Mutex
	rolledBack map[string]bool      // ids of transactions rolled back on purpose
	committed  map[string]time.Time // ids of committed messages: when Commit returned
	errs       map[string]int       // failed transactions by error
}

func startWriters(h *harness, seed uint64) (*writers, error) {
	ob, err := outbox.New(outbox.Config{Dialect: h.db.Dialect, MaxMessageBytes: outboxMaxMessageBytes})
	if err != nil {
		return nil, err
	}
	w := &writers{h: h, ob: ob, rolledBack: map[string]bool{}, committed: map[string]time.Time{}, errs: map[string]int{},
		t0:       time.Now(),
		lateRate: 0.02, lateAbortRate: 0.1, lateMin: 2 * time.Second, lateRange: 3 * time.Second}
	if h.name == "sqlite" {
		// SQLite has one writer at a time: a write transaction held open
		// stops every other writer and every relay's lease round until it
		// ends, so the relays' lease must exceed the longest one (see
		// docs/design.md, "Long application transactions"); fewer and shorter here.
		w.lateRate, w.lateMin, w.lateRange = 0.005, 300*time.Millisecond, 700*time.Millisecond
	}
	n, rate := numWriters, txRate
	if h.name == "sqlite" {
		n, rate = sqliteWriters, sqliteTxRate
	}
	w.pace = time.NewTicker(time.Second / time.Duration(rate))
	for i := range n {
		db, err := sql.Open(h.db.DriverName, h.writerDSN())
		if err != nil {
			w.stop()
			return nil, err
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		w.dbs = append(w.dbs, db)
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		w.wg.Go(func() { w.run(i, db, rng) })
	}
	return w, nil
}

// stop stops the writers after their transaction in flight and closes
// their pools. It may be called more than once.
func (w *writers) stop() {
	w.once.Do(func() {
		w.quit.Store(true)
		w.pace.Stop()
		done := make(chan struct{})
		go func() { w.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			w.h.t.Errorf("writers did not stop within 60s")
		}
		for _, db := range w.dbs {
			db.Close()
		}
		w.t1.Store(time.Now().UnixNano())
	})
}

func (w *writers) run(i int, db *sql.DB, rng *rand.Rand) {
	for !w.quit.Load() {
		select {
		case <-w.pace.C:
		case <-time.After(100 * time.Millisecond):
			continue // stopped, or other writers took the ticks
		}
		n := w.txs.Add(1)
		if err := w.tx(i, db, rng, n%poisonEvery == 0); err != nil {
			w.failed.Add(1)
			w.noteErr(err)
			time.Sleep(time.Duration(20+rng.IntN(80)) * time.Millisecond)
			continue
		}
	}
}

func (w *writers) noteErr(err error) {
	s := err.Error()
	if len(s) > 90 {
		s = s[:90]
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs[s]++
}

// tx runs one business transaction.
func (w *writers) tx(i int, db *sql.DB, rng *rand.Rand, poison bool) (err error) {
	h := w.h
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	abort := rng.IntN(10) == 0
	late := rng.Float64() < w.lateRate
	if abort {
		late = rng.Float64() < w.lateAbortRate
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var msgs []outbox.Message
	if poison {
		id := outbox.NewMessageID()
		key := "poison-" + id
		if _, err := tx.ExecContext(ctx, h.q("INSERT INTO chaos_poison (msg_id, k) VALUES (?, ?)"), id, key); err != nil {
			return fmt.Errorf("poison ledger: %w", err)
		}
		msgs = append(msgs, outbox.Message{ID: id, Topic: topic, Key: []byte(key), Value: bytes.Repeat([]byte("P"), poisonBytes)})
	} else {
		keys := make([]int, 1+rng.IntN(5))
		for j := range keys {
			keys[j] = rng.IntN(numKeys)
			if late {
				// Late transactions hold their keys' rows locked all the
				// while: on keys of their own, so that the other writers
				// keep their rate (the relays, not the key locks, are
				// under test).
				keys[j] = numKeys + rng.IntN(numLateKeys)
			}
		}
		sort.Ints(keys) // lock in one order: no deadlocks between writers
		for _, k := range keys {
			key := keyName(k)
			if _, err := tx.ExecContext(ctx, h.q("UPDATE chaos_keys SET seq = seq + 1 WHERE k = ?"), key); err != nil {
				return fmt.Errorf("lock key: %w", err)
			}
			var seq int64
			if err := tx.QueryRowContext(ctx, h.q("SELECT seq FROM chaos_keys WHERE k = ?"), key).Scan(&seq); err != nil {
				return fmt.Errorf("read seq: %w", err)
			}
			id := outbox.NewMessageID()
			if _, err := tx.ExecContext(ctx, h.q("INSERT INTO chaos_ledger (msg_id, k, seq) VALUES (?, ?, ?)"), id, key, seq); err != nil {
				return fmt.Errorf("ledger: %w", err)
			}
			msgs = append(msgs, outbox.Message{ID: id, Topic: topic, Key: []byte(key),
				Value: fmt.Appendf(nil, `{"k":%q,"seq":%d,"writer":%d,"pad":%q}`, key, seq, i, strings.Repeat("x", 40))})
		}
	}
	if err := w.ob.Enqueue(ctx, tx, msgs...); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	if late {
		time.Sleep(w.lateMin + time.Duration(rng.Int64N(int64(w.lateRange))))
	}
	if abort {
		if late {
			w.lateAborts.Add(1)
		}
		_ = tx.Rollback()
		w.rollbacks.Add(1)
		w.mu.Lock()
		for _, m := range msgs {
			w.rolledBack[m.ID] = true
		}
		w.mu.Unlock()
		return nil
	}
	if err := tx.Commit(); err != nil {
		// Unknown outcome when the connection was cut: the ledger decides.
		return fmt.Errorf("commit: %w", err)
	}
	at := time.Now()
	w.commits.Add(1)
	if late {
		w.late.Add(1)
	}
	if !poison {
		w.mu.Lock()
		for _, m := range msgs {
			w.committed[m.ID] = at
		}
		w.mu.Unlock()
	}
	if poison {
		w.poison.Add(1)
	}
	return nil
}

// commitTimes returns when each message whose commit the writers saw
// succeed committed.
func (w *writers) commitTimes() map[string]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.committed)
}

// wasRolledBack reports whether id belongs to a transaction rolled back on purpose.
func (w *writers) wasRolledBack(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rolledBack[id]
}

func (w *writers) summary() string {
	w.mu.Lock()
	type kv struct {
		k string
		n int
	}
	var errs []kv
	for k, n := range w.errs {
		errs = append(errs, kv{k, n})
	}
	w.mu.Unlock()
	slices.SortFunc(errs, func(a, b kv) int { return b.n - a.n })
	var top []string
	for _, e := range errs[:min(len(errs), 4)] {
		top = append(top, fmt.Sprintf("%dx %q", e.n, e.k))
	}
	rate := ""
	if t1 := w.t1.Load(); t1 != 0 {
		rate = fmt.Sprintf(" (%.0f/s)", float64(w.txs.Load())/time.Unix(0, t1).Sub(w.t0).Seconds())
	}
	return fmt.Sprintf("%d transactions%s: %d committed (%d poison, %d held open %s-%s), %d rolled back on purpose (%d after being held open), %d failed %v",
		w.txs.Load(), rate, w.commits.Load(), w.poison.Load(), w.late.Load(), w.lateMin, w.lateMin+w.lateRange,
		w.rollbacks.Load(), w.lateAborts.Load(), w.failed.Load(), top)
}
