package outbox_test

// Helpers of the relay tests (relay_test.go and relay_kafka_test.go).

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/verify"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// testLogger discards the relays' logs, or writes them all to stderr when
// OUTBOX_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("OUTBOX_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fastConfig is a relay configuration with short timings for tests.
func fastConfig(db *dbtest.DB) outbox.RelayConfig {
	return outbox.RelayConfig{
		Dialect:          db.Dialect,
		NumShards:        testShards,
		BatchSize:        200,
		PollInterval:     50 * time.Millisecond,
		MinPollInterval:  2 * time.Millisecond,
		LeaseDuration:    1500 * time.Millisecond,
		RenewInterval:    300 * time.Millisecond,
		MaxAttempts:      100,
		RetryBackoff:     10 * time.Millisecond,
		RetryBackoffMax:  50 * time.Millisecond,
		OutageBackoff:    50 * time.Millisecond,
		OutageBackoffMax: 200 * time.Millisecond,
		ShutdownTimeout:  2 * time.Second,
		Logger:           testLogger(),
	}
}

type running struct {
	relay  *outbox.Relay
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// start runs a relay until stop (or the end of the test).
func start(t *testing.T, db *sql.DB, pub outbox.Publisher, cfg outbox.RelayConfig) *running {
	t.Helper()
	r, err := outbox.NewRelay(db, pub, cfg)
	if err != nil {
		t.Fatalf("NewRelay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{relay: r, cancel: cancel, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx) }()
	t.Cleanup(func() { run.stop(t) })
	return run
}

// stop cancels the relay and waits for Run to return.
func (run *running) stop(t *testing.T) {
	run.once.Do(func() {
		run.cancel()
		select {
		case err := <-run.done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("relay %s did not stop within 30s", run.relay.ID())
		}
	})
}

// waitFor fails t unless cond holds within timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ledger enqueues messages on keys with per-key sequence numbers and
// records them in a verify.Ledger, which checks what a publisher delivered.
type ledger struct {
	serial sync.Mutex // tx: one transaction at a time, so commits follow the numbering
	mu     sync.Mutex
	ob     *outbox.Outbox
	seq    map[string]int
	v      *verify.Ledger
}

func newLedger(t *testing.T, db *dbtest.DB) *ledger {
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards})
	if err != nil {
		t.Fatal(err)
	}
	return &ledger{ob: ob, seq: map[string]int{}, v: verify.New()}
}

// tx enqueues n messages on random keys of keys in one transaction.
func (l *ledger) tx(t *testing.T, db *sql.DB, rng *rand.Rand, keys, n int, rollback bool, topic string) {
	t.Helper()
	l.serial.Lock()
	defer l.serial.Unlock()
	l.open(t, db, rng, "key-", keys, n, topic)(rollback)
}

// open enqueues n messages on random keys of keys (named prefix and a
// number) in a transaction it leaves open, and returns the function that
// ends it, which records the messages. Keys of transactions open at the
// same time must differ: the ledger numbers a key's messages when they are
// enqueued, and expects them in that order.
func (l *ledger) open(t *testing.T, db *sql.DB, rng *rand.Rand, prefix string, keys, n int, topic string) (end func(rollback bool)) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	msgs := make([]outbox.Message, n)
	seqs := make([]int, n)
	next := map[string]int{}
	for i := range msgs {
		key := prefix + strconv.Itoa(rng.IntN(keys))
		next[key]++
		seqs[i] = l.seq[key] + next[key]
		msgs[i] = outbox.Message{ID: outbox.NewMessageID(), Topic: topic, Key: []byte(key),
			Value: []byte(key + "/" + strconv.Itoa(seqs[i])), Headers: []outbox.Header{{Key: "seq", Value: []byte(strconv.Itoa(seqs[i]))}}}
	}
	for k, v := range next {
		l.seq[k] += v // reserved, so that another transaction of the key numbers on
	}
	l.mu.Unlock()
	if err := l.ob.Enqueue(ctx, tx, msgs...); err != nil {
		tx.Rollback()
		t.Fatalf("Enqueue: %v", err)
	}
	return func(rollback bool) {
		t.Helper()
		l.mu.Lock()
		defer l.mu.Unlock()
		if rollback {
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			for k, v := range next {
				l.seq[k] -= v
			}
			for _, m := range msgs {
				l.v.RolledBack(m.ID)
			}
			return
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			l.v.Committed(m.ID, string(m.Key), seqs[i])
		}
	}
}

// check compares deliveries with the ledger: every committed message
// delivered, no rolled-back one, first deliveries of each key in order.
func (l *ledger) check(recs []outbox.Record) verify.Summary {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.MessageID
	}
	return l.v.Check(ids)
}

// total is the number of committed messages.
func (l *ledger) total() int { return l.v.Summary().Committed }

// requireClean fails unless exactly wantDelivered distinct messages were
// delivered and the guarantees hold (duplicates are allowed).
func requireClean(t *testing.T, s verify.Summary, wantDelivered int) {
	t.Helper()
	if !s.OK() || s.Published != wantDelivered {
		t.Fatalf("delivered=%d (want %d) lost=%d rolled_back_delivered=%d order_violations=%d duplicates=%d unknown=%d",
			s.Published, wantDelivered, s.Lost, s.RolledBackPublished, s.OrderViolations, s.Duplicates, s.Unknown)
	}
}

// requireKeyOrder fails when a record's sequence number (seq, for the
// records it accepts) is below an earlier one of its key, among first
// deliveries: a record published again (a duplicate, which at-least-once
// allows, e.g. after a lost ack or a lease that moved before the delete)
// is not checked again.
func requireKeyOrder(t *testing.T, recs []outbox.Record, seq func(outbox.Record) (int, bool)) {
	t.Helper()
	last := map[string]int{}
	first := map[string]bool{}
	for _, r := range recs {
		n, ok := seq(r)
		if !ok {
			continue
		}
		if first[r.MessageID] {
			continue // a duplicate (at least once): only first deliveries keep order
		}
		first[r.MessageID] = true
		if prev, seen := last[string(r.Key)]; seen && n < prev {
			t.Fatalf("key %s: %d published after %d", r.Key, n, prev)
		}
		last[string(r.Key)] = n
	}
}

// pending is the number of messages pending in db.
func pending(t *testing.T, db *dbtest.DB) int64 {
	t.Helper()
	st, err := db.Dialect.Stats(context.Background(), db.DB)
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending
}

// relayEachDialect runs fn on a fresh, migrated database of each dialect,
// the dialects in parallel.
func relayEachDialect(t *testing.T, fn func(t *testing.T, db *dbtest.DB)) {
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		fn(t, dbtest.Open(t, name))
	})
}
