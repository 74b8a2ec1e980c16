package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/ctxtime"
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
message has not arrived 10s after the load ended ("lost").

With --broker-rtt the consumer's fetches cross the same delay as the relay's
produce requests: a record's latency includes half a round trip on its way
in and half on its way out, besides the relay's own waits for acknowledgement.`

const latencyExamples = `  go run ./cmd/outbox-bench latency --dialect postgres
  go run ./cmd/outbox-bench latency --dialect mysql --rate 2000 --duration 30s`

// latencyResult is the JSON line of the latency scenario.
type latencyResult struct {
	header
	latencyFigures
	verdict
}

// latencyFigures are the settings and figures of a latency run (the
// latency scenario's, and pressure's with --measure latency).
type latencyFigures struct {
	Rate            float64 `json:"rate"`
	DurationSeconds float64 `json:"duration_seconds"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	Writers         int     `json:"writers"`
	ValueBytes      int     `json:"value_bytes"`
	Keys            int     `json:"keys"`
	KeySkew         string  `json:"key_skew"`
	BrokerRTTMs     float64 `json:"broker_rtt_ms"` // --broker-rtt (kfake only)
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

var latencyScenario = scenario{
	name:     "latency",
	summary:  "commit-to-consume latency under a steady open-loop load",
	about:    latencyAbout,
	examples: latencyExamples,
	flags: func(fs *flag.FlagSet, co *commonOpts) benchmark {
		addBrokerRTT(fs, co)
		b := addLatencyFlags(fs, co, 20*time.Second, "")
		b.load = addLoad(fs, 0, false)
		return b
	},
}

// addLatencyFlags registers the flags of the load and the consumer of a
// latency run (--duration defaulting to duration), each help text
// suffixed with note, and returns the run they configure (without its
// load flags).
func addLatencyFlags(fs *flag.FlagSet, co *commonOpts, duration time.Duration, note string) *latencyBench {
	b := &latencyBench{co: co, lostAfter: 10 * time.Second}
	fs.Float64Var(&b.rate, "rate", 1000, "messages per second, all writers together"+note)
	fs.DurationVar(&b.duration, "duration", duration, "measured load time, after the warm-up"+note)
	fs.DurationVar(&b.warmup, "warmup", 2*time.Second, "load time before the measurement (excluded from the figures)"+note)
	fs.Float64Var(&b.minRateFraction, "min-rate-fraction", defaultMinRateFraction, "fail when the achieved rate is below this share of --rate"+note)
	fs.DurationVar(&b.maxWriterLag, "max-writer-lag", defaultMaxWriterLag, "fail when a writer falls further behind its schedule"+note)
	fs.IntVar(&b.writers, "writers", 8, "writer goroutines, each with its own transactions"+note)
	fs.DurationVar(&b.fetch, "fetch-max-wait", 10*time.Millisecond, "the consumer's FetchMaxWait: 10ms is franz-go's minimum; kfake answers a waiting fetch\nas soon as data arrives, yet a 1s wait measured ~0.5ms more at p50 and twice the p99"+note)
	return b
}

// latencyBench is the latency scenario with its flags.
type latencyBench struct {
	co                      *commonOpts
	load                    *loadOpts
	rate                    float64
	minRateFraction         float64
	maxWriterLag            time.Duration
	duration, warmup, fetch time.Duration
	writers                 int
	lostAfter               time.Duration // a message not received by then is lost
}

func (b *latencyBench) check() error {
	var rate, fetch error
	if b.rate <= 0 {
		rate = flagErrorf("--rate", "must be positive; got %g", b.rate)
	}
	if b.fetch < 10*time.Millisecond {
		fetch = flagErrorf("--fetch-max-wait", "must be at least 10ms (franz-go's minimum); got %s", b.fetch)
	}
	return firstError(rate, checkPositive("--duration", b.duration), checkNotNegative("--warmup", b.warmup),
		checkAtLeast("--writers", b.writers, 1), fetch, b.load.check(b.co.topic))
}

func (b *latencyBench) needs() needs { return needs{pool: b.writers, topics: []string{b.co.topic}} }

// sentMsg is a committed message of the latency run: the times right
// before Commit was called and right after it returned.
type sentMsg struct {
	beforeCommit, commit time.Time
	measured             bool
}

// run measures and returns the result line.
func (b *latencyBench) run(ctx context.Context, e *env, c *checks) (result, error) {
	h := e.header()
	m, err := b.measure(ctx, e, c)
	if err != nil {
		return nil, err
	}
	return &latencyResult{header: h, latencyFigures: m.figures}, nil
}

// latencyRun is what measure measured: the figures, and what was committed
// and received, for figures of parts of the run.
type latencyRun struct {
	figures latencyFigures
	w       *written
	arr     *arrivals
}

// measure starts the consumer and the relay, applies the load, waits for
// the stragglers, computes the figures and records the failed checks.
func (b *latencyBench) measure(ctx context.Context, e *env, c *checks) (*latencyRun, error) {
	res := &latencyFigures{Rate: b.rate, DurationSeconds: b.duration.Seconds(),
		WarmupSeconds: b.warmup.Seconds(), Writers: b.writers, ValueBytes: b.load.valueBytes, Keys: b.load.keys,
		KeySkew: b.load.skew, BrokerRTTMs: e.brokerRTTMs(),
		Shards: b.load.shards, FetchMaxWaitMs: round(float64(b.fetch)/float64(time.Millisecond), 3), Wake: e.wake()}
	runID := newRunID()
	arr, err := startArrivals(ctx, e, b.fetch, runID)
	if err != nil {
		return nil, err
	}
	defer arr.stop()
	rig, err := newRelayRig(ctx, e.relaySettings("bench-relay-latency", b.load.shards, 0), e.log)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	defer rig.close()
	rig.start(ctx)
	stopProfile, err := e.profile()
	if err != nil {
		return nil, err
	}
	defer stopProfile()
	w, err := b.write(ctx, e, runID)
	if err != nil {
		return nil, err
	}
	// Wait for the stragglers, at most lostAfter.
	deadline := time.Now().Add(b.lostAfter)
	for arr.missing(w.sent) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if err := stopProfile(); err != nil {
		return nil, err
	}
	rig.stop()
	arr.stop()
	res.Published = rig.relay.Stats().Published
	b.figures(res, w, arr)
	fmt.Fprintf(e.stderr, "bench: latency: %d measured at %.1f msg/s (writers at most %.1fms behind schedule), p50 %.2fms p99 %.2fms max %.2fms (before Commit: p50 %.2fms p99 %.2fms), lost %d\n",
		res.Count, res.AchievedRate, res.LagMaxMs, res.P50Ms, res.P99Ms, res.MaxMs, res.BeforeCommit.P50Ms, res.BeforeCommit.P99Ms, res.Lost)
	b.checkFigures(res, w.lagMax, rig.relay.Stats().DeadLettered, c)
	return &latencyRun{figures: *res, w: w, arr: arr}, nil
}

// figures computes the latencies of the measured messages.
func (b *latencyBench) figures(res *latencyFigures, w *written, arr *arrivals) {
	var lat, latBefore []float64
	var commits []time.Time
	for id, s := range w.sent {
		if !s.measured {
			continue
		}
		commits = append(commits, s.commit)
		if r, ok := arr.recv[id]; ok {
			lat = append(lat, float64(r.Sub(s.commit))/float64(time.Millisecond))
			latBefore = append(latBefore, float64(r.Sub(s.beforeCommit))/float64(time.Millisecond))
		}
	}
	slices.Sort(lat)
	slices.Sort(latBefore)
	slices.Sort(w.txTimes)
	res.Committed, res.Count, res.Received, res.Duplicates = len(w.sent), len(commits), len(arr.recv), arr.duplicates
	res.Lost = arr.missing(w.sent)
	res.AchievedRate = round(achievedRate(commits), 1)
	if len(lat) > 0 {
		res.P50Ms, res.P90Ms, res.P99Ms = round(percentile(lat, 50), 3), round(percentile(lat, 90), 3), round(percentile(lat, 99), 3)
		res.MaxMs, res.MinMs, res.MeanMs = round(lat[len(lat)-1], 3), round(lat[0], 3), round(mean(lat), 3)
	}
	res.Negative = countNegative(lat)
	if len(latBefore) > 0 {
		bc := &res.BeforeCommit
		bc.P50Ms, bc.P90Ms, bc.P99Ms = round(percentile(latBefore, 50), 3), round(percentile(latBefore, 90), 3), round(percentile(latBefore, 99), 3)
		bc.MaxMs = round(latBefore[len(latBefore)-1], 3)
		bc.Negative = countNegative(latBefore)
	}
	res.TxP50Ms, res.TxP99Ms = round(percentile(w.txTimes, 50), 3), round(percentile(w.txTimes, 99), 3)
	res.LagMaxMs = round(float64(w.lagMax)/float64(time.Millisecond), 3)
}

// checkFigures records the failed checks: lost messages, a load below what
// was asked, messages published before their commit.
func (b *latencyBench) checkFigures(res *latencyFigures, lagMax time.Duration, deadLettered int64, c *checks) {
	if res.Lost > 0 {
		c.failf("%d committed messages not received %s after the load ended", res.Lost, b.lostAfter)
	}
	if res.Count == 0 {
		c.failf("no message was scheduled after the warm-up")
	}
	if res.AchievedRate < b.minRateFraction*b.rate {
		c.failf("achieved rate %.1f msg/s is below %.0f%% of --rate %g", res.AchievedRate, b.minRateFraction*100, b.rate)
	}
	if lagMax > b.maxWriterLag {
		c.failf("the writers fell up to %.1fms behind their schedule (at most %s allowed)", res.LagMaxMs, b.maxWriterLag)
	}
	if res.BeforeCommit.Negative > 0 {
		c.failf("%d records arrived before their Commit was called: published uncommitted", res.BeforeCommit.Negative)
	}
	if deadLettered > 0 {
		c.failf("%d messages dead-lettered", deadLettered)
	}
}

// ---------------------------------------------------------------------------
// The load

// written is what the writers committed.
type written struct {
	mu          sync.Mutex
	sent        map[string]sentMsg
	txTimes     []float64     // ms, BEGIN to the end of COMMIT, measured messages
	lagMax      time.Duration // worst start behind schedule, measured messages
	measureFrom time.Time     // the schedule of the measured messages starts here
}

// schedule is the open-loop timetable of the writers.
type schedule struct {
	interval                    time.Duration // between two messages of one writer
	start, measureFrom, loadEnd time.Time
}

// write runs the writers until the end of the load; every writer commits
// one message per transaction on the shared schedule.
func (b *latencyBench) write(ctx context.Context, e *env, runID string) (*written, error) {
	ob, err := outbox.New(outbox.Config{Dialect: e.dialect, NumShards: b.load.shards})
	if err != nil {
		return nil, err
	}
	sch := schedule{interval: time.Duration(float64(time.Second) * float64(b.writers) / b.rate)}
	sch.start = time.Now().Add(200 * time.Millisecond) // every writer starts on the same schedule
	sch.measureFrom = sch.start.Add(b.warmup)
	sch.loadEnd = sch.measureFrom.Add(b.duration)
	fmt.Fprintf(e.stderr, "bench: latency: %d writers, %.0f msg/s (one every %s per writer), %s warm-up + %s\n",
		b.writers, b.rate, sch.interval, b.warmup, b.duration)
	w := &written{sent: map[string]sentMsg{}, measureFrom: sch.measureFrom}
	wr := writer{b: b, e: e, ob: ob, runID: runID, sch: sch, out: w, values: latencyValues(b.load.valueBytes), keys: keyBytes(b.load.keys)}
	var wg sync.WaitGroup
	werr := make(chan error, b.writers)
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	for n := 0; n < b.writers; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := wr.run(wctx, n); err != nil && wctx.Err() == nil {
				werr <- fmt.Errorf("writer %d: %w", n, err)
				stopWriters()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-werr:
		return nil, err
	default:
	}
	return w, ctx.Err()
}

// writer is what every writer goroutine shares.
type writer struct {
	b      *latencyBench
	e      *env
	ob     *outbox.Outbox
	runID  string
	sch    schedule
	out    *written
	values [][]byte
	keys   [][]byte
}

// run is writer n: its k-th message is due at start + n/writers*interval +
// k*interval.
func (w *writer) run(ctx context.Context, n int) error {
	writers := w.b.writers
	offset := w.sch.interval * time.Duration(n) / time.Duration(writers)
	// Uniform: the keys go round robin in schedule order (message k of
	// writer n is the (n+k*writers)-th); zipf: each writer draws its own.
	pick := newKeyPicker(w.b.load.skew, len(w.keys), uint64(n), n, writers)
	for k := 0; ; k++ {
		at := w.sch.start.Add(offset + time.Duration(k)*w.sch.interval)
		if !at.Before(w.sch.loadEnd) {
			return nil
		}
		if d := time.Until(at); d > 0 && !ctxtime.Sleep(ctx, d) {
			return nil
		}
		began := time.Now()
		id := w.runID + "-" + strconv.Itoa(n) + "-" + strconv.Itoa(k)
		msg := outbox.Message{ID: id, Topic: w.b.co.topic, Key: w.keys[pick.pick()], Value: w.values[k%len(w.values)]}
		beforeCommit, err := w.commit(ctx, msg)
		committed := time.Now()
		if err != nil {
			return err
		}
		measured := !at.Before(w.sch.measureFrom)
		w.out.mu.Lock()
		w.out.sent[id] = sentMsg{beforeCommit: beforeCommit, commit: committed, measured: measured}
		if measured {
			w.out.txTimes = append(w.out.txTimes, float64(committed.Sub(began))/float64(time.Millisecond))
			w.out.lagMax = max(w.out.lagMax, began.Sub(at))
		}
		w.out.mu.Unlock()
	}
}

// commit enqueues msg in a transaction of its own and returns the time
// right before Commit was called.
func (w *writer) commit(ctx context.Context, msg outbox.Message) (beforeCommit time.Time, err error) {
	tx, err := w.e.db.BeginTx(ctx, nil)
	if err != nil {
		return beforeCommit, err
	}
	if err = w.ob.Enqueue(ctx, tx, msg); err != nil {
		_ = tx.Rollback()
		return beforeCommit, err
	}
	beforeCommit = time.Now()
	return beforeCommit, tx.Commit()
}

// latencyValues returns 64 random values of size bytes.
func latencyValues(size int) [][]byte {
	values := make([][]byte, 64)
	rng := newRand(1)
	for i := range values {
		values[i] = make([]byte, size)
		_, _ = rng.Read(values[i])
	}
	return values
}

// ---------------------------------------------------------------------------
// The consumer

// arrivals is the consumer of the latency run: when each of the run's
// records arrived.
type arrivals struct {
	mu         sync.Mutex
	recv       map[string]time.Time
	duplicates int
	cancel     context.CancelFunc
	done       chan struct{}
}

// startArrivals starts consuming e's topic from its current end, noting
// the arrival of the records whose ID starts with runID.
func startArrivals(ctx context.Context, e *env, fetch time.Duration, runID string) (*arrivals, error) {
	offsets, err := endOffsets(e.brokers, e.opts.topic)
	if err != nil {
		return nil, err
	}
	parts := make(map[int32]kgo.Offset, len(offsets))
	for p, off := range offsets {
		parts[p] = kgo.NewOffset().At(off)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ClientID("outbox-bench-consumer"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{e.opts.topic: parts}), kgo.FetchMaxWait(fetch))
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	a := &arrivals{recv: map[string]time.Time{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		defer consumer.Close()
		for cctx.Err() == nil {
			fetches := consumer.PollFetches(cctx)
			now := time.Now()
			fetches.EachError(func(t string, p int32, err error) {
				if cctx.Err() == nil {
					fmt.Fprintf(e.stderr, "bench: consumer: %s/%d: %v\n", t, p, err)
				}
			})
			a.mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) { a.add(r, now, runID) })
			a.mu.Unlock()
		}
	}()
	return a, nil
}

// add notes the arrival of r at now, if it is one of the run's.
func (a *arrivals) add(r *kgo.Record, now time.Time, runID string) {
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
	if _, dup := a.recv[id]; dup {
		a.duplicates++
		return
	}
	a.recv[id] = now
}

// missing counts the messages of sent that have not arrived.
func (a *arrivals) missing(sent map[string]sentMsg) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for id := range sent {
		if _, ok := a.recv[id]; !ok {
			n++
		}
	}
	return n
}

// arrival returns when the record of the message id arrived, if it has.
func (a *arrivals) arrival(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.recv[id]
	return t, ok
}

// stop ends the consumer and waits for it; it may be called again.
func (a *arrivals) stop() {
	a.cancel()
	<-a.done
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
