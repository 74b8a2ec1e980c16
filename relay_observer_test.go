package outbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// recorder is a RelayObserver that keeps every event.
type recorder struct {
	mu       sync.Mutex
	cycles   int
	reads    []outbox.BatchReadEvent
	calls    []outbox.PublishCallEvent
	records  []outbox.RecordEvent
	settles  []outbox.SettleEvent
	leases   []outbox.LeaseEvent
	backoffs []outbox.BackoffEvent
	rounds   []outbox.LeaseRoundEvent
}

func (o *recorder) OnCycle(outbox.CycleEvent) { o.mu.Lock(); o.cycles++; o.mu.Unlock() }
func (o *recorder) OnBatchRead(e outbox.BatchReadEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reads = append(o.reads, e)
}
func (o *recorder) OnPublishCall(e outbox.PublishCallEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, e)
}
func (o *recorder) OnRecord(e outbox.RecordEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.records = append(o.records, e)
}
func (o *recorder) OnSettle(e outbox.SettleEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.settles = append(o.settles, e)
}
func (o *recorder) OnLeases(e outbox.LeaseEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.leases = append(o.leases, e)
}
func (o *recorder) OnBackoff(e outbox.BackoffEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.backoffs = append(o.backoffs, e)
}
func (o *recorder) OnProbe(outbox.ProbeEvent) {}
func (o *recorder) OnLeaseRound(e outbox.LeaseRoundEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rounds = append(o.rounds, e)
}

// count returns how many record events match.
func (o *recorder) count(topic string, out outbox.RecordOutcome, kind outbox.FailureKind) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, e := range o.records {
		if e.Topic == topic && e.Outcome == out && e.Failure == kind {
			n++
		}
	}
	return n
}

// The observer sees each record's outcome with its topic and, for a
// published one, its commit-to-publish delay on the database clock; every
// batch read and settled; the leases taken and handed back.
func TestRelayObserverSeesOutcomes(t *testing.T) {
	relayEachDialect(t, func(t *testing.T, db *dbtest.DB) {
		ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []outbox.Message
		for i := range 20 {
			msgs = append(msgs, outbox.Message{Topic: "orders", Key: []byte{byte('a' + i%5)}, Value: []byte("v")})
		}
		msgs = append(msgs, outbox.Message{Topic: "poison", Value: []byte("p")}, outbox.Message{Topic: "flaky", Value: []byte("f")})
		if err := ob.Enqueue(context.Background(), db.DB, msgs...); err != nil {
			t.Fatal(err)
		}
		const waited = 300 * time.Millisecond
		time.Sleep(waited) // the messages wait before any relay runs

		pub := outboxtest.NewFakePublisher()
		var mu sync.Mutex
		flakyFailed := false
		pub.SetHook(func(r outbox.Record) error {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Topic == "poison":
				return outboxtest.ErrPermanent
			case r.Topic == "flaky" && !flakyFailed:
				flakyFailed = true
				return outboxtest.ErrRetriable
			}
			return nil
		})
		rec := &recorder{}
		cfg := fastConfig(db)
		cfg.Observer = rec
		run := start(t, db.DB, pub, cfg)
		waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
		run.stop(t)

		for _, c := range []struct {
			topic string
			out   outbox.RecordOutcome
			kind  outbox.FailureKind
			want  int
		}{
			{"orders", outbox.OutcomePublished, outbox.FailureNone, 20},
			{"flaky", outbox.OutcomeRetried, outbox.FailureRetriable, 1},
			{"flaky", outbox.OutcomePublished, outbox.FailureNone, 1},
			{"poison", outbox.OutcomeDeadLettered, outbox.FailurePermanent, 1},
		} {
			if got := rec.count(c.topic, c.out, c.kind); got != c.want {
				t.Errorf("%s %s (%q): %d events, want %d", c.topic, c.out, c.kind, got, c.want)
			}
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.records) != 23 {
			t.Errorf("%d record events, want 23: %+v", len(rec.records), rec.records)
		}
		for _, e := range rec.records {
			if e.MessageID == "" || (e.Outcome == outbox.OutcomeDeadLettered) != (e.Reason == outbox.ReasonPermanent) {
				t.Errorf("record event %+v: missing id, or a reason where none belongs", e)
			}
			if e.Outcome != outbox.OutcomePublished {
				continue
			}
			// The relay and the database share this machine's clock, so the
			// delay is at least the wait before the relay started.
			if !e.DelayKnown || e.Delay < waited || e.Delay > time.Minute {
				t.Errorf("published %s: delay %s (known %v), want at least %s", e.Topic, e.Delay, e.DelayKnown, waited)
			}
		}
		acked, dead, retried, read := 0, 0, 0, 0
		for _, s := range rec.settles {
			acked, dead, retried = acked+s.Acked, dead+s.DeadLettered, retried+s.Retried
			if s.Err != nil {
				t.Errorf("settle failed: %v", s.Err)
			}
		}
		for _, r := range rec.reads {
			read += r.Records
		}
		if acked != 21 || dead != 1 || retried != 1 {
			t.Errorf("settled %d acks, %d dead letters, %d retries; want 21, 1, 1", acked, dead, retried)
		}
		if read < 23 || len(rec.calls) == 0 || rec.cycles == 0 {
			t.Errorf("%d records read, %d publish calls, %d cycles: want at least 23, 1, 1", read, len(rec.calls), rec.cycles)
		}
		got := map[outbox.LeaseChange]int{}
		for _, l := range rec.leases {
			got[l.Change] += l.Count
		}
		if got[outbox.LeaseAcquired] != testShards || got[outbox.LeaseHandedBack] != testShards || got[outbox.LeaseLost] != 0 {
			t.Errorf("lease changes %v: want all %d shards acquired and handed back at the stop, none lost", got, testShards)
		}
		full := 0
		for _, r := range rec.rounds {
			if r.Err == nil && r.Held == testShards && r.Duration > 0 {
				full++
			}
		}
		if full == 0 {
			t.Errorf("no lease round seen done with all %d shards held: %+v", testShards, rec.rounds)
		}
		if last := rec.leases[len(rec.leases)-1]; last.Held != 0 {
			t.Errorf("last lease event %+v: want none held after the stop", last)
		}
	})
}

// While the broker is unavailable the observer sees the relay back off,
// and the records untouched.
func TestRelayObserverSeesOutage(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Enqueue(context.Background(), db.DB, outbox.Message{Topic: "orders", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	pub := outboxtest.NewFakePublisher()
	pub.FailTopic("orders", outbox.ErrUnavailable)
	rec := &recorder{}
	cfg := fastConfig(db)
	cfg.Observer = rec
	run := start(t, db.DB, pub, cfg)
	waitFor(t, 20*time.Second, "two backoffs", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		n := 0
		for _, b := range rec.backoffs {
			if b.Reason == outbox.BackoffUnavailable && b.Duration > 0 {
				n++
			}
		}
		return n >= 2
	})
	pub.FailTopic("orders", nil)
	waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
	run.stop(t)
	if n := rec.count("orders", outbox.OutcomeUntouched, outbox.FailureUnavailable); n < 2 {
		t.Errorf("%d untouched-unavailable events, want at least 2", n)
	}
	if n := rec.count("orders", outbox.OutcomePublished, outbox.FailureNone); n != 1 {
		t.Errorf("%d published events, want 1", n)
	}
}

// A database clock read that hangs (it serves only the observer's
// commit-to-publish delays) slows no lease round and fails none: the relay
// takes and keeps its shards while every read after the first stalls.
func TestRelayClockReadOffTheLeaseRound(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	cfg := fastConfig(db)
	cfg.Observer = &recorder{}
	r, err := outbox.NewRelay(db.DB, outboxtest.NewFakePublisher(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	reads := 0
	outbox.SetClockReaderForTest(r, func(ctx context.Context) (time.Time, error) {
		mu.Lock()
		reads++
		first := reads == 1
		mu.Unlock()
		if first {
			return time.Now(), nil
		}
		<-ctx.Done() // stalled until its timeout
		return time.Time{}, ctx.Err()
	}, 50*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, 10*time.Second, "the shards", func() bool { return r.Stats().Shards == testShards })
	// Several lease rounds (RenewInterval 300ms, rounds bounded by half the
	// 1.5s lease) while the clock read hangs.
	time.Sleep(3 * cfg.LeaseDuration)
	mu.Lock()
	n := reads
	mu.Unlock()
	if n < 2 {
		t.Fatalf("%d clock reads: the stall was not exercised", n)
	}
	if got := r.Stats().Shards; got != testShards {
		t.Errorf("%d shards held while the clock read hangs, want all %d", got, testShards)
	}
}
