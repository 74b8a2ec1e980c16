package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

func TestRelayPublishesCommittedOnly(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		l := newLedger(t, db)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 60; i++ {
			l.tx(t, db.DB, rng, 10, 1+rng.IntN(5), i%7 == 3, "orders")
		}
		pub := outboxtest.NewFakePublisher()
		run := start(t, db.DB, pub, fastConfig(db))
		waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		run.stop(t)
		recs := pub.Published()
		requireClean(t, l.check(recs), l.total())
		if v := pub.Violations(); len(v) > 0 {
			t.Fatalf("publisher contract broken: %v", v)
		}
		for _, r := range recs {
			if r.Topic != "orders" || len(r.Headers) != 1 || r.Headers[0].Key != "seq" || r.CreatedAt.IsZero() {
				t.Fatalf("record %+v lost its topic, headers or created_at", r)
			}
		}
		if st := run.relay.Stats(); st.Published != int64(l.total()) || st.Retried != 0 || st.DeadLettered != 0 {
			t.Fatalf("relay stats %+v, want Published=%d and no retries", st, l.total())
		}
	})
}

// Under a backlog the relay reads the next batch while it publishes the
// current one and records the outcome of the one before. Without faults:
// every message exactly once, in key order, Stats counting each once. With
// retriable failures on some keys: still everything, in key order, and a
// failed key's later records never overtake it from a batch read ahead.
func TestRelayBacklogPipeline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failEach int // fail one attempt in failEach; 0: none
	}{{"clean", 0}, {"failures", 8}} {
		t.Run(tc.name, func(t *testing.T) {
			relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
				l := newLedger(t, db)
				rng := rand.New(rand.NewPCG(7, 8))
				for i := 0; i < 40; i++ {
					l.tx(t, db.DB, rng, 30, 50, false, "orders")
				}
				pub := outboxtest.NewFakePublisher()
				if tc.failEach > 0 {
					var mu sync.Mutex
					frng := rand.New(rand.NewPCG(9, 10))
					pub.SetHook(func(outbox.Record) error {
						mu.Lock()
						defer mu.Unlock()
						if frng.IntN(tc.failEach) == 0 {
							return outboxtest.ErrRetriable
						}
						return nil
					})
				}
				cfg := fastConfig(db)
				cfg.BatchSize = 64
				cfg.RetryBackoff, cfg.RetryBackoffMax = 20*time.Millisecond, 40*time.Millisecond
				run := start(t, db.DB, pub, cfg)
				waitFor(t, 60*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
				run.stop(t)
				v := l.check(pub.Published())
				requireClean(t, v, l.total())
				if vs := pub.Violations(); len(vs) > 0 {
					t.Fatalf("publisher contract broken: %v", vs)
				}
				st := run.relay.Stats()
				if st.Pipelined == 0 {
					t.Fatalf("stats %+v: no batch was pipelined, so this test proved nothing", st)
				}
				if tc.failEach == 0 {
					if v.Duplicates != 0 {
						t.Fatalf("%d duplicates with no fault: a batch read ahead overlapped one in flight", v.Duplicates)
					}
					if st.Published != int64(l.total()) || st.Batches < int64(l.total()/64) {
						t.Fatalf("stats %+v, want Published=%d in at least %d batches", st, l.total(), l.total()/64)
					}
				} else if st.Retried == 0 {
					t.Fatalf("stats %+v: the hook never failed a record", st)
				}
			})
		})
	}
}

// BatchBytes bounds a batch by size: 10 KB messages with a 25 KB bound go
// three at a time, all delivered, in key order.
func TestRelayBatchBytes(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards})
		if err != nil {
			t.Fatal(err)
		}
		const n = 60
		msgs := make([]outbox.Message, n)
		for i := range msgs {
			v := make([]byte, 10_000)
			copy(v, fmt.Sprintf("%03d", i))
			msgs[i] = outbox.Message{Topic: "orders", Key: []byte(fmt.Sprint("k", i%4)), Value: v}
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if err := ob.Enqueue(context.Background(), tx, msgs...); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		pub := outboxtest.NewFakePublisher()
		cfg := fastConfig(db)
		cfg.BatchBytes = 25_000
		run := start(t, db.DB, pub, cfg)
		waitFor(t, 30*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		run.stop(t)
		got := pub.Published()
		if len(got) != n {
			t.Fatalf("published %d records, want %d", len(got), n)
		}
		requireKeyOrder(t, got, func(r outbox.Record) (int, bool) {
			seq, err := strconv.Atoi(string(r.Value[:3]))
			return seq, err == nil
		})
		if st := run.relay.Stats(); st.Batches < n/3 {
			t.Fatalf("stats %+v: %d messages of 10 KB in fewer than %d batches of at most 25 KB", st, n, n/3)
		}
	})
}

// Random retriable failures: everything arrives, first deliveries in key
// order, and later messages of a failing key are never sent before it.
func TestRelayRetriesKeepKeyOrder(t *testing.T) {
	for _, mode := range []struct {
		name    string
		ordered bool
	}{{"rounds", false}, {"one call", true}} {
		t.Run(mode.name, func(t *testing.T) { relayRetriesKeepKeyOrder(t, mode.ordered) })
	}
}

// relayRetriesKeepKeyOrder runs TestRelayRetriesKeepKeyOrder with a
// publisher that orders keys within a call, or one the relay must give
// one record per key per call (rounds).
func relayRetriesKeepKeyOrder(t *testing.T, ordered bool) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		l := newLedger(t, db)
		rng := rand.New(rand.NewPCG(3, 4))
		for i := 0; i < 80; i++ {
			l.tx(t, db.DB, rng, 6, 1+rng.IntN(5), false, "orders")
		}
		pub := outboxtest.NewFakePublisher()
		pub.SetOrdersKeys(ordered)
		var mu sync.Mutex
		frng := rand.New(rand.NewPCG(5, 6))
		pub.SetHook(func(outbox.Record) error {
			mu.Lock()
			defer mu.Unlock()
			if frng.IntN(10) < 3 {
				return outboxtest.ErrRetriable
			}
			return nil
		})
		run := start(t, db.DB, pub, fastConfig(db))
		waitFor(t, 30*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		run.stop(t)
		requireClean(t, l.check(pub.Published()), l.total())
		if v := pub.Violations(); len(v) > 0 {
			t.Fatalf("publisher contract broken: %v", v)
		}
		if st := run.relay.Stats(); st.Retried == 0 || st.DeadLettered != 0 {
			t.Fatalf("stats %+v: want retries and no dead letters", st)
		}
	})
}

func deadLetters(t *testing.T, db *dbtest.DB) map[string]string {
	t.Helper()
	rows, err := db.Query("SELECT message_id, attempts, last_error FROM outbox_dead_letters")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, le string
		var attempts int
		if err := rows.Scan(&id, &attempts, &le); err != nil {
			t.Fatal(err)
		}
		out[id] = fmt.Sprintf("%d:%s", attempts, le)
	}
	return out
}

// A poison message goes to the dead-letter table with its error; the rest of
// the batch, even the later messages of its key, flows.
func TestRelayPoisonMessage(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		ob, _ := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards})
		var msgs []outbox.Message
		for i := 0; i < 20; i++ {
			msgs = append(msgs, outbox.Message{ID: "m" + strconv.Itoa(i), Topic: "t", Key: []byte("k" + strconv.Itoa(i%2)), Value: []byte("v")})
		}
		msgs[6].Value = []byte("poison")
		if err := ob.Enqueue(context.Background(), db.DB, msgs...); err != nil {
			t.Fatal(err)
		}
		pub := outboxtest.NewFakePublisher()
		pub.SetHook(func(r outbox.Record) error {
			if string(r.Value) == "poison" {
				return outboxtest.ErrPermanent
			}
			return nil
		})
		run := start(t, db.DB, pub, fastConfig(db))
		waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		run.stop(t)
		got := pub.Published()
		if len(got) != 19 {
			t.Fatalf("published %d, want 19", len(got))
		}
		dl := deadLetters(t, db)
		if len(dl) != 1 || !strings.HasPrefix(dl["m6"], "1:") || !strings.Contains(dl["m6"], "permanent") {
			t.Fatalf("dead letters %v, want m6 after 1 attempt with its error", dl)
		}
	})
}

// A message that keeps failing is dead-lettered after MaxAttempts; its key
// then flows on.
func TestRelayMaxAttempts(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		ob, _ := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards})
		err := ob.Enqueue(context.Background(), db.DB,
			outbox.Message{ID: "bad", Topic: "t", Key: []byte("k"), Value: []byte("bad")},
			outbox.Message{ID: "after", Topic: "t", Key: []byte("k"), Value: []byte("after")})
		if err != nil {
			t.Fatal(err)
		}
		pub := outboxtest.NewFakePublisher()
		pub.SetHook(func(r outbox.Record) error {
			if r.MessageID == "bad" {
				return outboxtest.ErrRetriable
			}
			return nil
		})
		cfg := fastConfig(db)
		cfg.MaxAttempts = 3
		run := start(t, db.DB, pub, cfg)
		waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		run.stop(t)
		if got := pub.Published(); len(got) != 1 || got[0].MessageID != "after" {
			t.Fatalf("published %v, want only 'after'", got)
		}
		if dl := deadLetters(t, db); !strings.HasPrefix(dl["bad"], "3:") {
			t.Fatalf("dead letters %v, want 'bad' after 3 attempts", dl)
		}
		if st := run.relay.Stats(); st.Retried != 2 || st.DeadLettered != 1 {
			t.Fatalf("stats %+v, want 2 retries and 1 dead letter", st)
		}
	})
}

// Broker down: nothing dead-lettered, no attempt counted, everything
// published after recovery.
func TestRelayBrokerOutage(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		l := newLedger(t, db)
		rng := rand.New(rand.NewPCG(7, 8))
		for i := 0; i < 40; i++ {
			l.tx(t, db.DB, rng, 8, 5, false, "orders")
		}
		var down atomic.Bool
		down.Store(true)
		pub := outboxtest.NewFakePublisher()
		pub.SetHook(func(outbox.Record) error {
			if down.Load() {
				return outboxtest.ErrUnavailable
			}
			return nil
		})
		run := start(t, db.DB, pub, fastConfig(db))
		waitFor(t, 10*time.Second, "the relay to hit the outage", func() bool { return run.relay.Stats().Unavailable > 50 })
		var maxAttempts sql.NullInt64
		if err := db.QueryRow("SELECT MAX(attempts) FROM outbox_messages").Scan(&maxAttempts); err != nil {
			t.Fatal(err)
		}
		if maxAttempts.Int64 != 0 {
			t.Fatalf("attempts counted during the outage: max attempts = %d", maxAttempts.Int64)
		}
		down.Store(false)
		waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		run.stop(t)
		requireClean(t, l.check(pub.Published()), l.total())
		if st := run.relay.Stats(); st.Retried != 0 || st.DeadLettered != 0 {
			t.Fatalf("stats %+v: an outage must not retry or dead-letter", st)
		}
	})
}

func heldShards(runs ...*running) (total int, each []int) {
	for _, r := range runs {
		n := r.relay.Stats().Shards
		each = append(each, n)
		total += n
	}
	return total, each
}

// Three relays split the shards and publish everything exactly once in key
// order; a fourth joining gets shards; one stopping hands its shards over.
func TestRelaysShareShards(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		l := newLedger(t, db)
		pub := outboxtest.NewFakePublisher()
		var runs []*running
		// A 6s lease: a join or hand-over faster than that comes from the
		// relays' hand-back and release, not from expiry.
		share := func(id string) outbox.RelayConfig {
			cfg := fastConfig(db)
			cfg.ID, cfg.LeaseDuration = id, 6*time.Second
			return cfg
		}
		for i := 0; i < 3; i++ {
			runs = append(runs, start(t, db.OpenMore(t), pub, share(fmt.Sprintf("relay-%d", i))))
		}
		waitFor(t, 15*time.Second, "3 relays to hold all shards fairly", func() bool {
			total, each := heldShards(runs...)
			for _, n := range each {
				if n == 0 || n > (testShards+2)/3 {
					return false
				}
			}
			return total == testShards
		})
		rng := rand.New(rand.NewPCG(9, 10))
		for i := 0; i < 100; i++ {
			l.tx(t, db.DB, rng, 30, 1+rng.IntN(5), i%9 == 0, "orders")
		}
		waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		v := l.check(pub.Published())
		requireClean(t, v, l.total())
		if v.Duplicates != 0 {
			t.Fatalf("%d duplicates with no crash", v.Duplicates)
		}
		// Counters move right after the ack commits: wait for them.
		sum := func() (n int) {
			for _, r := range runs {
				n += int(r.relay.Stats().Published)
			}
			return n
		}
		waitFor(t, 5*time.Second, "the relays' counters to add up", func() bool { return sum() == l.total() })
		for _, r := range runs {
			if r.relay.Stats().Published == 0 {
				t.Errorf("relay %s published nothing: the work is not shared", r.relay.ID())
			}
		}

		// The newcomer joins while a backlog keeps the others busy: they must
		// still hand shards over within one lease period.
		for i := 0; i < 200; i++ {
			l.tx(t, db.DB, rng, 30, 5, false, "orders")
		}
		pub.SetHook(func(outbox.Record) error { time.Sleep(100 * time.Microsecond); return nil })
		cfg := share("relay-late")
		late := start(t, db.OpenMore(t), pub, cfg)
		waitFor(t, cfg.LeaseDuration, "the new relay to get shards", func() bool { return late.relay.Stats().Shards > 0 })
		pub.SetHook(nil)
		runs = append(runs, late)
		runs[0].stop(t)
		rest := runs[1:]
		// Released at shutdown, they are taken within a lease round or two;
		// expiry would take at least LeaseDuration - RenewInterval (5.7 s).
		waitFor(t, cfg.LeaseDuration*3/4, "the stopped relay's shards to be taken over", func() bool {
			total, _ := heldShards(rest...)
			return total == testShards
		})
		for i := 0; i < 30; i++ {
			l.tx(t, db.DB, rng, 30, 3, false, "orders")
		}
		waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		requireClean(t, l.check(pub.Published()), l.total())
	})
}

// A relay that stops renewing (its database connections die: a crash as far
// as the others can tell) loses nothing: the survivor takes its shards once
// the leases expire and publishes the rest.
func TestRelayCrashLosesNothing(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		l := newLedger(t, db)
		rng := rand.New(rand.NewPCG(11, 12))
		for i := 0; i < 100; i++ {
			l.tx(t, db.DB, rng, 20, 4, false, "orders")
		}
		pub := outboxtest.NewFakePublisher()
		var slow atomic.Bool
		slow.Store(true)
		pub.SetHook(func(outbox.Record) error {
			if slow.Load() {
				time.Sleep(time.Millisecond)
			}
			return nil
		})
		victimDB := db.OpenMore(t)
		cfg := fastConfig(db)
		cfg.ID = "victim"
		cfg.BatchSize = 20
		victim := start(t, victimDB, pub, cfg)
		waitFor(t, 10*time.Second, "the victim to publish", func() bool { return victim.relay.Stats().Published > 0 })
		cfg.ID = "survivor"
		survivor := start(t, db.OpenMore(t), pub, cfg)
		victimDB.Close() // the victim can no longer renew, ack or release
		slow.Store(false)
		waitFor(t, 30*time.Second, "the survivor to drain the outbox", func() bool { return pending(t, db) == 0 })
		survivor.stop(t)
		victim.stop(t)
		v := l.check(pub.Published())
		requireClean(t, v, l.total())
		t.Logf("duplicates after the crash: %d", v.Duplicates)
	})
}

// A relay cancelled mid-batch stops within its shutdown timeout, releases
// its shards at once, and loses nothing.
func TestRelayCancelMidBatch(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		l := newLedger(t, db)
		rng := rand.New(rand.NewPCG(13, 14))
		for i := 0; i < 100; i++ {
			l.tx(t, db.DB, rng, 5, 5, false, "orders")
		}
		pub := outboxtest.NewFakePublisher()
		pub.SetHook(func(outbox.Record) error { time.Sleep(2 * time.Millisecond); return nil })
		cfg := fastConfig(db)
		cfg.ShutdownTimeout = 500 * time.Millisecond
		cfg.LeaseDuration = time.Minute // takeover must come from the release, not expiry
		cfg.RenewInterval = 200 * time.Millisecond
		first := start(t, db.OpenMore(t), pub, cfg)
		waitFor(t, 10*time.Second, "the first relay to publish", func() bool { return first.relay.Stats().Published > 0 })
		began := time.Now()
		first.stop(t)
		if d := time.Since(began); d > cfg.ShutdownTimeout+3*time.Second {
			t.Fatalf("Run took %s to return after cancel, shutdown timeout is %s", d, cfg.ShutdownTimeout)
		}
		// The release must reach the database, not just the relay's memory.
		var owned int
		if err := db.QueryRow("SELECT COUNT(*) FROM outbox_shards WHERE owner = '" + first.relay.ID() + "'").Scan(&owned); err != nil {
			t.Fatal(err)
		}
		if owned != 0 {
			t.Fatalf("stopped relay still owns %d shards in outbox_shards", owned)
		}
		second := start(t, db.OpenMore(t), pub, cfg)
		waitFor(t, 30*time.Second, "the second relay to drain the outbox", func() bool { return pending(t, db) == 0 })
		second.stop(t)
		requireClean(t, l.check(pub.Published()), l.total())
	})
}

func TestRelayConfigValidation(t *testing.T) {
	db := &sql.DB{}
	pub := outboxtest.NewFakePublisher()
	d := dbtest.Dialect("sqlite")
	tests := []struct {
		field string
		mod   func(*outbox.RelayConfig)
	}{
		{"Dialect", func(c *outbox.RelayConfig) { c.Dialect = nil }},
		{"NumShards", func(c *outbox.RelayConfig) { c.NumShards = -1 }},
		{"NumShards", func(c *outbox.RelayConfig) { c.NumShards = outbox.MaxNumShards + 1 }},
		{"BatchSize", func(c *outbox.RelayConfig) { c.BatchSize = -5 }},
		{"BatchBytes", func(c *outbox.RelayConfig) { c.BatchBytes = -1 }},
		{"MaxAttempts", func(c *outbox.RelayConfig) { c.MaxAttempts = -1 }},
		{"PollInterval", func(c *outbox.RelayConfig) { c.PollInterval, c.MinPollInterval = time.Millisecond, time.Second }},
		{"LeaseDuration", func(c *outbox.RelayConfig) { c.LeaseDuration = time.Millisecond }},
		{"RenewInterval", func(c *outbox.RelayConfig) { c.LeaseDuration, c.RenewInterval = 10*time.Second, 6*time.Second }},
		{"RetryBackoffMax", func(c *outbox.RelayConfig) { c.RetryBackoff, c.RetryBackoffMax = time.Minute, time.Second }},
		{"OutageBackoffMax", func(c *outbox.RelayConfig) { c.OutageBackoff, c.OutageBackoffMax = time.Minute, time.Second }},
		{"ID", func(c *outbox.RelayConfig) { c.ID = strings.Repeat("x", 300) }},
	}
	for _, tc := range tests {
		cfg := outbox.RelayConfig{Dialect: d}
		tc.mod(&cfg)
		_, err := outbox.NewRelay(db, pub, cfg)
		var ce *outbox.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, outbox.ErrInvalidConfig) {
			t.Errorf("%s: NewRelay error = %v, want a ConfigError naming %s", tc.field, err, tc.field)
		}
		if verr := cfg.Validate(); verr == nil || verr.Error() != err.Error() {
			t.Errorf("%s: Validate() = %v, want NewRelay's error %v", tc.field, verr, err)
		}
	}
	if _, err := outbox.NewRelay(nil, pub, outbox.RelayConfig{Dialect: d}); !errors.Is(err, outbox.ErrInvalidConfig) {
		t.Errorf("nil db: %v", err)
	}
	if _, err := outbox.NewRelay(db, nil, outbox.RelayConfig{Dialect: d}); !errors.Is(err, outbox.ErrInvalidConfig) {
		t.Errorf("nil publisher: %v", err)
	}
	if _, err := outbox.NewRelay(db, pub, outbox.RelayConfig{Dialect: d}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// One topic unavailable while the others are not (a partition without a
// leader, say): the other topics flow at full speed, the unavailable one is
// paused with its messages untouched (no attempt counted), and it resumes
// when it comes back.
func TestRelayTopicOutageDoesNotStallOthers(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		ob, _ := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards})
		// The broken topic's messages are spread through the backlog, so
		// that batches read ahead hold later records of its paused keys.
		var msgs []outbox.Message
		msgs = append(msgs, outbox.Message{ID: "broken-1", Topic: "broken", Key: []byte("b0"), Value: []byte("0")})
		for i := 0; i < 2000; i++ {
			msgs = append(msgs, outbox.Message{Topic: "orders", Key: []byte("k" + strconv.Itoa(i%50)), Value: []byte("v")})
			if i%100 == 99 {
				msgs = append(msgs, outbox.Message{Topic: "broken", Key: []byte("b" + strconv.Itoa(i/100%2)), Value: []byte(strconv.Itoa(i))})
			}
		}
		const total, brokenN = 2021, 21
		if err := ob.Enqueue(context.Background(), db.DB, msgs...); err != nil {
			t.Fatal(err)
		}
		pub := outboxtest.NewFakePublisher()
		pub.FailTopic("broken", outboxtest.ErrUnavailable)
		cfg := fastConfig(db)
		cfg.OutageBackoff, cfg.OutageBackoffMax = 2*time.Second, 30*time.Second
		run := start(t, db.DB, pub, cfg)
		// A relay-wide backoff would take a minute or more for 10 batches.
		waitFor(t, 15*time.Second, "the healthy topic to drain", func() bool { return pending(t, db) == brokenN })
		var attempts int
		if err := db.QueryRow("SELECT MAX(attempts) FROM outbox_messages").Scan(&attempts); err != nil {
			t.Fatal(err)
		}
		if attempts != 0 {
			t.Fatalf("the unavailable topic's messages have up to %d attempts, want 0", attempts)
		}
		pub.FailTopic("broken", nil)
		waitFor(t, 40*time.Second, "the paused topic to resume", func() bool { return pending(t, db) == 0 })
		run.stop(t)
		if st := run.relay.Stats(); st.DeadLettered != 0 || st.Retried != 0 || st.Published != total {
			t.Fatalf("stats %+v, want %d published, no retry, no dead letter", st, total)
		}
		requireKeyOrder(t, pub.Published(), func(r outbox.Record) (int, bool) {
			seq, err := strconv.Atoi(string(r.Value))
			return seq, r.Topic == "broken" && err == nil
		})
	})
}

// probingPublisher is a FakePublisher that is also an outbox.Prober whose
// probe always says the broker answers.
type probingPublisher struct {
	*outboxtest.FakePublisher
	probes atomic.Int64
}

func (p *probingPublisher) Probe(context.Context) error { p.probes.Add(1); return nil }

// A broker that answers the relay's probes but still refuses to publish
// (a cluster that lets clients connect but has no leaders, or refuses the
// producer) does not make the relay publish in a loop: after a pause that a
// probe cut short, the next pause is slept out, and pauses still double.
func TestRelayProbeDoesNotDefeatBackoff(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		l := newLedger(t, db)
		rng := rand.New(rand.NewPCG(9, 10))
		for range 5 {
			l.tx(t, db.DB, rng, 3, 2, false, "orders")
		}
		pub := &probingPublisher{FakePublisher: outboxtest.NewFakePublisher()}
		pub.FailTopic("orders", outboxtest.ErrUnavailable)
		cfg := fastConfig(db)
		cfg.OutageBackoff, cfg.OutageBackoffMax, cfg.ProbeInterval = 200*time.Millisecond, 5*time.Second, 50*time.Millisecond
		run := start(t, db.DB, pub, cfg)
		time.Sleep(3 * time.Second)
		calls, probes := pub.Calls(), pub.probes.Load()
		// Pauses of 0.2 s cut to 0.05 s by a probe, then 0.4 s slept out,
		// 0.8 s cut, 1.6 s slept out...: about six calls in 3 s; a relay
		// that trusted every probe would make one every 50 ms or faster.
		if calls > 15 || calls < 2 {
			t.Errorf("%d Publish calls and %d probes in 3s of an outage the probe does not see; want a handful", calls, probes)
		}
		pub.FailTopic("orders", nil)
		waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		run.stop(t)
		requireClean(t, l.check(pub.Published()), l.total())
		t.Logf("%d Publish calls, %d probes during the outage", calls, probes)
	})
}
