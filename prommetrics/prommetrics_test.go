package prommetrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
	"github.com/outboxrelay/outbox/prommetrics"
)

const shards = 8

// A relay with Metrics as its observer: the counters say what the relay did,
// the backlog gauges what waits.
func TestMetricsOfARelay(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := context.Background()
		ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: shards})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []outbox.Message
		for i := range 30 {
			msgs = append(msgs, outbox.Message{Topic: "orders", Key: fmt.Appendf(nil, "k%d", i%7), Value: []byte("v")})
		}
		msgs = append(msgs, outbox.Message{Topic: "poison", Value: []byte("p")})
		if err := ob.Enqueue(ctx, db.DB, msgs...); err != nil {
			t.Fatal(err)
		}
		m := prommetrics.New(prommetrics.Options{})
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(m)
		time.Sleep(10 * time.Millisecond)
		if err := m.RefreshOnce(ctx, db.Dialect, db.DB, 0); err != nil {
			t.Fatal(err)
		}
		gauge := func(name string) float64 {
			t.Helper()
			return value(t, reg, name, nil)
		}
		if got := gauge("outbox_pending_messages"); got != 31 {
			t.Errorf("pending before the relay = %v, want 31", got)
		}
		if got := gauge("outbox_oldest_pending_age_seconds"); got <= 0 {
			t.Errorf("oldest pending age while a backlog waits = %v, want > 0", got)
		}

		pub := outboxtest.NewFakePublisher()
		pub.FailTopic("poison", outboxtest.ErrPermanent)
		r, err := outbox.NewRelay(db.DB, pub, outbox.RelayConfig{Dialect: db.Dialect, NumShards: shards,
			PollInterval: 20 * time.Millisecond, LeaseDuration: time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: m})
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		deadline := time.Now().Add(20 * time.Second)
		for st := r.Stats(); st.Published < 30 || st.DeadLettered < 1; st = r.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("relay stats %+v after 20s", st)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got := gauge("outbox_shards_held"); got != shards {
			t.Errorf("shards held while running = %v, want %d", got, shards)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := m.RefreshOnce(ctx, db.Dialect, db.DB, 0); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"outbox_records_published_total", map[string]string{"topic": "orders"}, 30},
			{"outbox_records_dead_lettered_total", map[string]string{"topic": "poison", "reason": "permanent"}, 1},
			{"outbox_records_failed_total", map[string]string{"topic": "poison", "kind": "permanent"}, 1},
			{"outbox_shard_lease_changes_total", map[string]string{"change": "acquired"}, shards},
			{"outbox_shard_lease_changes_total", map[string]string{"change": "handed_back"}, shards},
			{"outbox_records_read_total", nil, 31},
			{"outbox_pending_messages", nil, 0},
			{"outbox_oldest_pending_age_seconds", nil, 0},
			{"outbox_dead_letters", nil, 1},
			{"outbox_shards_held", nil, 0},
		} {
			if got := value(t, reg, c.name, c.labels); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}
		if n := count(t, reg, "outbox_commit_to_publish_delay_seconds"); n != 30 {
			t.Errorf("commit-to-publish delay observed %d times, want 30", n)
		}
		problems, err := testutil.GatherAndLint(reg)
		if err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", problems, err)
		}
	})
}

// A stream of distinct topics makes at most MaxTopics labels, plus
// OtherTopic for the rest.
func TestTopicLabelsAreBounded(t *testing.T) {
	m := prommetrics.New(prommetrics.Options{MaxTopics: 10})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	for i := range 100_000 {
		topic := fmt.Sprintf("topic-%d", i)
		m.OnRecord(outbox.RecordEvent{Topic: topic, Outcome: outbox.OutcomePublished})
		m.OnRecord(outbox.RecordEvent{Topic: topic, Outcome: outbox.OutcomeRetried, Failure: outbox.FailureRetriable})
	}
	for _, name := range []string{"outbox_records_published_total", "outbox_records_retried_total", "outbox_records_failed_total"} {
		if n := testutil.CollectAndCount(m, name); n != 11 {
			t.Errorf("%s: %d series, want 11 (10 topics and %s)", name, n, prommetrics.OtherTopic)
		}
	}
	if got := value(t, reg, "outbox_records_published_total", map[string]string{"topic": prommetrics.OtherTopic}); got != 100_000-10 {
		t.Errorf("%s published = %v, want %d", prommetrics.OtherTopic, got, 100_000-10)
	}
}

// value returns the value of the metric name with labels (a counter,
// gauge or the sum of a histogram), failing t when there is none.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			switch {
			case mt.Counter != nil:
				return mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				return mt.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// count returns the sample count of the histogram name.
func count(t *testing.T, reg prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no histogram %s", name)
	return 0
}
