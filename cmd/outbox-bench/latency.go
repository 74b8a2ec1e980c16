package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outboxrelay/outbox"
)

const latencyAbout = `Measures the latency from commit to consumption under a steady load.

--writers goroutines commit one message per transaction, together --rate
messages per second, on an absolute schedule (open loop: a slow commit does
not push the next ones back). Each message's ID is set by the writer and
travels as the outbox-id header; the writer notes the time right before it
calls Commit and right after Commit returns. One relay (pqnotify wake-ups on
PostgreSQL, default polling otherwise) publishes, and a franz-go consumer in
this process notes when each record arrives. Only the messages scheduled
after --warmup are measured.

p50_ms, p90_ms, p99_ms, max_ms, min_ms and mean_ms are arrival - the stamp
after Commit returned: the application's view, from the moment it knows the
message is committed (negative_count counts the records that arrived before
the writer, descheduled after its commit, took that stamp). before_commit
holds the same percentiles from the stamp taken before Commit was called: an
upper bound that includes the commit round trip. A record that arrives before
its Commit was even called was published uncommitted: the run fails.

achieved_rate is the measured commits divided by the time from the first to
the last of them (stamps after Commit), and writer_lag_max_ms the worst start
of a measured transaction behind its schedule. The run fails (exit 1) when
achieved_rate is below --min-rate-fraction of --rate (default 95%) or
writer_lag_max_ms exceeds --max-writer-lag (default 250ms): the load was then
not what the figures claim. It also fails if a committed
message has not arrived 10s after the load ended ("lost").`

const latencyExamples = `  go run ./cmd/outbox-bench latency --dialect postgres
  go run ./cmd/outbox-bench latency --dialect mysql --rate 2000 --duration 30s`

// latencyResult is the JSON line of the latency scenario.
type latencyResult struct {
	header
	Rate            float64 `json:"rate"`
	DurationSeconds float64 `json:"duration_seconds"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	Writers         int     `json:"writers"`
	ValueBytes      int     `json:"value_bytes"`
	Keys            int     `json:"keys"`
	Shards          int     `json:"shards"`
	FetchMaxWaitMs  float64 `json:"fetch_max_wait_ms"`
	Wake            string  `json:"wake"`

	Committed    int     `json:"committed"` // including the warm-up
	Count        int     `json:"count"`     // measured: scheduled after the warm-up
	AchievedRate float64 `json:"achieved_rate"`
	P50Ms        float64 `json:"p50_ms"`
	P90Ms        float64 `json:"p90_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	MinMs        float64 `json:"min_ms"`
	// Negative counts the latencies below zero: the record arrived before
	// the writer, descheduled after its commit, noted the commit time.
	Negative int     `json:"negative_count"`
	MeanMs   float64 `json:"mean_ms"`
	// BeforeCommit is the latency from the stamp taken right before Commit
	// was called.
	BeforeCommit beforeCommitLatency `json:"before_commit"`
	TxP50Ms      float64             `json:"tx_p50_ms"` // BEGIN to the end of COMMIT
	TxP99Ms      float64             `json:"tx_p99_ms"`
	LagMaxMs     float64             `json:"writer_lag_max_ms"` // worst start behind schedule, measured messages
	Received     int                 `json:"received"`
	Duplicates   int                 `json:"duplicates"`
	Lost         int                 `json:"lost"`
	Published    int64               `json:"relay_published"`
	verdict
}

// beforeCommitLatency are the percentiles of arrival - the stamp before
// Commit was called. Negative counts the records that arrived before their
// Commit was called (published uncommitted): it must be 0.
type beforeCommitLatency struct {
	P50Ms    float64 `json:"p50_ms"`
	P90Ms    float64 `json:"p90_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	Negative int     `json:"negative_count"`
}

// Default bounds of the load the latency run must have achieved for its
// figures to hold (--min-rate-fraction, --max-writer-lag).
const (
	defaultMinRateFraction = 0.95                   // of --rate
	defaultMaxWriterLag    = 250 * time.Millisecond // behind the schedule
)

// latencyOpts are the flags of the latency scenario.
type latencyOpts struct {
	*commonOpts
	rate                    float64
	minRateFraction         float64
	maxWriterLag            time.Duration
	duration, warmup, fetch time.Duration
	writers, valueBytes     int
	keys, shards            int
	lostAfter               time.Duration // a message not received by then is lost
}

// sentMsg is a committed message of the latency run: the times right
// before Commit was called and right after it returned.
type sentMsg struct {
	beforeCommit, commit time.Time
	measured             bool
}

func cmdLatency(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("latency", latencyAbout, latencyExamples, stderr)
	o := latencyOpts{commonOpts: addCommon(fs), lostAfter: 10 * time.Second}
	fs.Float64Var(&o.rate, "rate", 1000, "messages per second, all writers together")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured load time, after the warm-up")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load time before the measurement (excluded from the figures)")
	fs.Float64Var(&o.minRateFraction, "min-rate-fraction", defaultMinRateFraction, "fail when the achieved rate is below this share of --rate")
	fs.DurationVar(&o.maxWriterLag, "max-writer-lag", defaultMaxWriterLag, "fail when a writer falls further behind its schedule")
	fs.IntVar(&o.writers, "writers", 8, "writer goroutines, each with its own transactions")
	fs.IntVar(&o.valueBytes, "value-bytes", 256, "bytes of each message value")
	fs.IntVar(&o.keys, "keys", 1000, "distinct message keys")
	fs.IntVar(&o.shards, "shards", outbox.DefaultNumShards, "outbox shards")
	fs.DurationVar(&o.fetch, "fetch-max-wait", 10*time.Millisecond, "the consumer's FetchMaxWait: 10ms is franz-go's minimum; kfake answers a waiting fetch\nas soon as data arrives, yet a 1s wait measured ~0.5ms more at p50 and twice the p99")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	switch {
	case o.rate <= 0:
		return usagef("--rate must be positive; got %g", o.rate)
	case o.duration <= 0:
		return usagef("--duration must be positive; got %s", o.duration)
	case o.warmup < 0:
		return usagef("--warmup cannot be negative; got %s", o.warmup)
	case o.writers < 1:
		return usagef("--writers must be at least 1; got %d", o.writers)
	case o.fetch < 10*time.Millisecond:
		return usagef("--fetch-max-wait must be at least 10ms (franz-go's minimum); got %s", o.fetch)
	}
	if err := checkLoadFlags(1, o.valueBytes, o.keys, o.shards, o.topic); err != nil {
		return err
	}

	e, err := setup(ctx, o.commonOpts, stderr, o.writers, o.topic)
	if err != nil {
		return err
	}
	defer e.close()
	res := latencyResult{header: e.header("latency"), Rate: o.rate, DurationSeconds: o.duration.Seconds(),
		WarmupSeconds: o.warmup.Seconds(), Writers: o.writers, ValueBytes: o.valueBytes, Keys: o.keys,
		Shards: o.shards, FetchMaxWaitMs: round(float64(o.fetch)/float64(time.Millisecond), 3), Wake: "poll"}
	if e.dialect.SupportsNotify() {
		res.Wake = "pqnotify"
	}
	var c checks

	// Consumer first, from the current end of the topic.
	offsets, err := endOffsets(e.brokers, o.topic)
	if err != nil {
		return err
	}
	parts := make(map[int32]kgo.Offset, len(offsets))
	for p, off := range offsets {
		parts[p] = kgo.NewOffset().At(off)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ClientID("outbox-bench-consumer"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: parts}), kgo.FetchMaxWait(o.fetch))
	if err != nil {
		return err
	}
	defer consumer.Close()
	var mu sync.Mutex
	sent := map[string]sentMsg{}
	recv := map[string]time.Time{}
	duplicates := 0
	runID := newRunID()
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			fetches := consumer.PollFetches(cctx)
			now := time.Now()
			fetches.EachError(func(t string, p int32, err error) {
				if cctx.Err() == nil {
					fmt.Fprintf(stderr, "bench: consumer: %s/%d: %v\n", t, p, err)
				}
			})
			mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) {
				id := ""
				for _, h := range r.Headers {
					if h.Key == outbox.HeaderID {
						id = string(h.Value)
						break
					}
				}
				if !strings.HasPrefix(id, runID) {
					return // someone else's record on a shared topic
				}
				if _, dup := recv[id]; dup {
					duplicates++
					return
				}
				recv[id] = now
			})
			mu.Unlock()
		}
	}()

	rig, err := newRelayRig(ctx, relaySettings{driver: e.driver, dsn: e.dsn, dialect: e.dialect, brokers: e.brokers,
		id: "bench-relay-latency", numShards: o.shards}, e.log)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer rig.close()
	rig.start(ctx)

	// The writers.
	ob, err := outbox.New(outbox.Config{Dialect: e.dialect, NumShards: o.shards})
	if err != nil {
		return err
	}
	values := make([][]byte, 64)
	rng := newRand(1)
	for i := range values {
		values[i] = make([]byte, o.valueBytes)
		_, _ = rng.Read(values[i])
	}
	keys := make([][]byte, o.keys)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
	}
	stopProfile, err := startProfile(o.cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	interval := time.Duration(float64(time.Second) * float64(o.writers) / o.rate)
	start := time.Now().Add(200 * time.Millisecond) // every writer starts on the same schedule
	measureFrom := start.Add(o.warmup)
	loadEnd := measureFrom.Add(o.duration)
	fmt.Fprintf(stderr, "bench: latency: %d writers, %.0f msg/s (one every %s per writer), %s warm-up + %s\n",
		o.writers, o.rate, interval, o.warmup, o.duration)
	var txTimes []float64
	var lagMax time.Duration
	var wg sync.WaitGroup
	werr := make(chan error, o.writers)
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	for w := 0; w < o.writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			offset := interval * time.Duration(w) / time.Duration(o.writers)
			for k := 0; ; k++ {
				at := start.Add(offset + time.Duration(k)*interval)
				if !at.Before(loadEnd) {
					return
				}
				if d := time.Until(at); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-wctx.Done():
						t.Stop()
						return
					case <-t.C:
					}
				}
				began := time.Now()
				id := runID + "-" + strconv.Itoa(w) + "-" + strconv.Itoa(k)
				msg := outbox.Message{ID: id, Topic: o.topic, Key: keys[(w+k*o.writers)%o.keys], Value: values[k%len(values)]}
				var beforeCommit time.Time
				tx, err := e.db.BeginTx(wctx, nil)
				if err == nil {
					if err = ob.Enqueue(wctx, tx, msg); err != nil {
						_ = tx.Rollback()
					} else {
						beforeCommit = time.Now()
						err = tx.Commit()
					}
				}
				committed := time.Now()
				if err != nil {
					if wctx.Err() == nil {
						werr <- fmt.Errorf("writer %d: %w", w, err)
						stopWriters()
					}
					return
				}
				measured := !at.Before(measureFrom)
				mu.Lock()
				sent[id] = sentMsg{beforeCommit: beforeCommit, commit: committed, measured: measured}
				if measured {
					txTimes = append(txTimes, float64(committed.Sub(began))/float64(time.Millisecond))
					lagMax = max(lagMax, began.Sub(at))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-werr:
		return err
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// Wait for the stragglers, at most lostAfter.
	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for id := range sent {
			if _, ok := recv[id]; !ok {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(o.lostAfter)
	for missing() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if err := stopProfile(); err != nil {
		return err
	}
	rig.stop()
	stopConsumer()
	<-consumed

	lost := missing()
	mu.Lock()
	defer mu.Unlock()
	var lat, latBefore []float64
	var commits []time.Time
	for id, s := range sent {
		if !s.measured {
			continue
		}
		commits = append(commits, s.commit)
		if r, ok := recv[id]; ok {
			lat = append(lat, float64(r.Sub(s.commit))/float64(time.Millisecond))
			latBefore = append(latBefore, float64(r.Sub(s.beforeCommit))/float64(time.Millisecond))
		}
	}
	measured := len(commits)
	slices.Sort(lat)
	slices.Sort(latBefore)
	slices.Sort(txTimes)
	res.Committed, res.Count, res.Received, res.Duplicates = len(sent), measured, len(recv), duplicates
	res.Lost = lost
	res.AchievedRate = round(achievedRate(commits), 1)
	if len(lat) > 0 {
		res.P50Ms, res.P90Ms, res.P99Ms = round(percentile(lat, 50), 3), round(percentile(lat, 90), 3), round(percentile(lat, 99), 3)
		res.MaxMs, res.MinMs, res.MeanMs = round(lat[len(lat)-1], 3), round(lat[0], 3), round(mean(lat), 3)
	}
	res.Negative = countNegative(lat)
	if len(latBefore) > 0 {
		b := &res.BeforeCommit
		b.P50Ms, b.P90Ms, b.P99Ms = round(percentile(latBefore, 50), 3), round(percentile(latBefore, 90), 3), round(percentile(latBefore, 99), 3)
		b.MaxMs = round(latBefore[len(latBefore)-1], 3)
		b.Negative = countNegative(latBefore)
	}
	res.TxP50Ms, res.TxP99Ms = round(percentile(txTimes, 50), 3), round(percentile(txTimes, 99), 3)
	res.LagMaxMs = round(float64(lagMax)/float64(time.Millisecond), 3)
	st := rig.relay.Stats()
	res.Published = st.Published
	fmt.Fprintf(stderr, "bench: latency: %d measured at %.1f msg/s (writers at most %.1fms behind schedule), p50 %.2fms p99 %.2fms max %.2fms (before Commit: p50 %.2fms p99 %.2fms), lost %d\n",
		measured, res.AchievedRate, res.LagMaxMs, res.P50Ms, res.P99Ms, res.MaxMs, res.BeforeCommit.P50Ms, res.BeforeCommit.P99Ms, res.Lost)
	if res.Lost > 0 {
		c.failf("%d committed messages not received %s after the load ended", res.Lost, o.lostAfter)
	}
	if measured == 0 {
		c.failf("no message was scheduled after the warm-up")
	}
	if res.AchievedRate < o.minRateFraction*o.rate {
		c.failf("achieved rate %.1f msg/s is below %.0f%% of --rate %g", res.AchievedRate, o.minRateFraction*100, o.rate)
	}
	if lagMax > o.maxWriterLag {
		c.failf("the writers fell up to %.1fms behind their schedule (at most %s allowed)", res.LagMaxMs, o.maxWriterLag)
	}
	if res.BeforeCommit.Negative > 0 {
		c.failf("%d records arrived before their Commit was called: published uncommitted", res.BeforeCommit.Negative)
	}
	if st.DeadLettered > 0 {
		c.failf("%d messages dead-lettered", st.DeadLettered)
	}
	res.verdict = c.verdict()
	if err := emit(stdout, res); err != nil {
		return err
	}
	return c.err()
}

// achievedRate returns the commits per second between the first and the
// last of commits (their count over that span), or 0 with fewer than two.
func achievedRate(commits []time.Time) float64 {
	if len(commits) < 2 {
		return 0
	}
	first, last := commits[0], commits[0]
	for _, t := range commits[1:] {
		if t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	span := last.Sub(first)
	if span <= 0 {
		return 0
	}
	return float64(len(commits)) / span.Seconds()
}

// countNegative returns how many of sorted are below zero.
func countNegative(sorted []float64) int {
	n := 0
	for _, v := range sorted {
		if v >= 0 {
			break
		}
		n++
	}
	return n
}

// newRunID returns a short random prefix that tells this run's message IDs
// from any other's.
func newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "bench-" + hex.EncodeToString(b[:])
}
