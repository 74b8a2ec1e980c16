package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/ctxtime"
	"github.com/outboxrelay/outbox/internal/plainsql"
)

const commitAbout = `Measures what the outbox costs the application: its business transactions
a second with and without Enqueue, and how soon an idle relay wakes.

For each --writers count, --writers goroutines each run for --duration the
same business transaction, BEGIN, INSERT INTO bench_orders (customer,
amount), then one of three variants, COMMIT:

  none     nothing more: the business row only
  plain    a plain INSERT of one message row (a --value-bytes value, no
           headers) into bench_plain_outbox, a table with outbox_messages's
           columns, defaults and indexes (CREATE TABLE ... LIKE) but not its
           trigger
  enqueue  Enqueue of one such message into the outbox

The three variants run one after the other for each writer count, in this
order in odd rounds and the reverse in even ones (--rounds). The writers'
pool sends the parameters with the statement (binary_parameters=yes for
lib/pq, interpolateParams=true for go-sql-driver/mysql), so that every
statement, Enqueue's and the plain ones, takes one round trip. Between two
variants, outside the timing, bench_orders and bench_plain_outbox are
emptied and, after enqueue, the relay drains what was enqueued. One relay
runs through the whole phase, publishing to the broker, with LISTEN/NOTIFY
wake-ups on PostgreSQL as relay run sets them up: enqueue pays what it pays
in production, the notification at commit included.

tps is the committed transactions over the time from the writers' start to
the last one's end (the median of the rounds); p50_ms and p99_ms the time
from BEGIN to the end of COMMIT of every transaction of every round.
enqueue_over_plain and enqueue_over_none are the ratios of the tps.

Then the wake-up: the relay is stopped, and another, the same but with
--wake-poll-interval as its PollInterval, starts over the empty outbox. After
--idle-before-wake, one message is committed with Enqueue, and the time from
Commit's return to the record's arrival at a franz-go consumer in this
process is a wake-up's latency; --wakes times, each after --wake-idle but
the first. On PostgreSQL the long poll interval makes this the latency of
the LISTEN wake-up, not of a poll; without notifications (MySQL, SQLite) the
relay polls and the figure is its polling latency.

The run fails if a message enqueued by the writers was not published (the
relay's count, the topic's growth, the rows left), if a wake-up's message
did not arrive within --wake-poll-interval + 10s, or if a variant committed
nothing.`

const commitExamples = `  go run ./cmd/outbox-bench commit --dialect postgres
  go run ./cmd/outbox-bench commit --dialect mysql --writers 8,32 --rounds 2
  go run ./cmd/outbox-bench commit --dialect postgres --writers 1,8 --duration 3s --idle-before-wake 2s --wakes 5`

// The variants of the business transaction.
const (
	variantNone    = "none"
	variantPlain   = "plain"
	variantEnqueue = "enqueue"
)

// variants is the order of the variants in odd rounds.
var variants = []string{variantNone, variantPlain, variantEnqueue}

// commitVariant is one variant at one writer count.
type commitVariant struct {
	TPS          float64   `json:"tps"` // median of the rounds
	TPSRounds    []float64 `json:"tps_rounds"`
	Transactions int       `json:"transactions"` // all rounds
	P50Ms        float64   `json:"p50_ms"`       // BEGIN to the end of COMMIT, all rounds
	P99Ms        float64   `json:"p99_ms"`
}

// commitPoint is one writer count.
type commitPoint struct {
	Writers          int           `json:"writers"`
	None             commitVariant `json:"none"`
	Plain            commitVariant `json:"plain"`
	Enqueue          commitVariant `json:"enqueue"`
	EnqueueOverPlain float64       `json:"enqueue_over_plain"`
	EnqueueOverNone  float64       `json:"enqueue_over_none"`
}

// commitResult is the JSON line of the commit scenario.
type commitResult struct {
	header
	Writers         []int   `json:"writers"`
	DurationSeconds float64 `json:"duration_seconds"` // per variant and writer count
	Rounds          int     `json:"rounds"`
	ValueBytes      int     `json:"value_bytes"`
	Keys            int     `json:"keys"`
	KeySkew         string  `json:"key_skew"`
	Shards          int     `json:"shards"`
	DSNOption       string  `json:"dsn_option"` // of the writers' pool; "" on SQLite
	Wake            string  `json:"wake"`

	Points         []commitPoint `json:"points"`
	Enqueued       int64         `json:"enqueued"` // by the writers
	RelayPublished int64         `json:"relay_published"`
	DeadLettered   int64         `json:"dead_lettered"`

	IdleBeforeWakeSeconds float64   `json:"idle_before_wake_seconds"`
	WakeIdleSeconds       float64   `json:"wake_idle_seconds"`
	WakePollIntervalMs    float64   `json:"wake_poll_interval_ms"`
	Wakes                 int       `json:"wakes"`
	WakeReceived          int       `json:"wake_received"`
	WakeFirstMs           float64   `json:"wake_first_ms"` // after --idle-before-wake
	WakeP50Ms             float64   `json:"wake_p50_ms"`
	WakeP99Ms             float64   `json:"wake_p99_ms"`
	WakeMaxMs             float64   `json:"wake_max_ms"`
	WakeMs                []float64 `json:"wake_ms"` // in order
	WakeDuplicates        int       `json:"wake_duplicates"`

	TopicRecords int64   `json:"topic_records"` // the topic's growth: enqueued + wakes
	PendingAfter int64   `json:"pending_after"`
	TotalSeconds float64 `json:"total_seconds"`
	verdict
}

var commitScenario = scenario{
	name:     "commit",
	summary:  "business transactions a second with and without Enqueue; wake-up latency",
	about:    commitAbout,
	examples: commitExamples,
	flags: func(fs *flag.FlagSet, co *commonOpts) benchmark {
		b := &commitBench{co: co}
		fs.StringVar(&b.writersList, "writers", "1,8,32,64", "comma-separated writer counts")
		fs.DurationVar(&b.duration, "duration", 10*time.Second, "time of each variant at each writer count")
		fs.IntVar(&b.rounds, "rounds", 1, "rounds over the variants, alternating their order")
		b.load = addLoad(fs, 0, false)
		fs.DurationVar(&b.idleBeforeWake, "idle-before-wake", time.Minute, "idle time of the outbox before the first wake-up")
		fs.IntVar(&b.wakes, "wakes", 20, "wake-ups measured")
		fs.DurationVar(&b.wakeIdle, "wake-idle", time.Second, "idle time before each wake-up but the first")
		fs.DurationVar(&b.wakePoll, "wake-poll-interval", 0, "PollInterval of the relay of the wake-ups (0: 30s where the dialect wakes relays\nat commit, PostgreSQL; the relay's default, 250ms, elsewhere)")
		return b
	},
}

// commitBench is the commit scenario with its flags.
type commitBench struct {
	co                                 *commonOpts
	load                               *loadOpts
	writersList                        string
	writers                            []int
	duration                           time.Duration
	rounds, wakes                      int
	idleBeforeWake, wakeIdle, wakePoll time.Duration
}

// wakeTimeout is how long after --wake-poll-interval a wake-up's message
// may take before it counts as lost.
const wakeTimeout = 10 * time.Second

// wakePollNotify is the default --wake-poll-interval where the dialect
// wakes relays at commit: long, so that wake-ups and not polls are
// measured.
const wakePollNotify = 30 * time.Second

func (b *commitBench) check() error {
	var err error
	if b.writers, err = parseCounts("--writers", b.writersList); err != nil {
		return err
	}
	return firstError(checkPositive("--duration", b.duration), checkAtLeast("--rounds", b.rounds, 1),
		checkNotNegative("--idle-before-wake", b.idleBeforeWake), checkAtLeast("--wakes", b.wakes, 1),
		checkNotNegative("--wake-idle", b.wakeIdle), checkNotNegative("--wake-poll-interval", b.wakePoll),
		b.load.check(b.co.topic))
}

// parseCounts parses a comma-separated list of positive integers, the
// value of the flag name.
func parseCounts(name, list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, flagErrorf(name, "must be a comma-separated list of positive integers; got %q", list)
		}
		out = append(out, n)
	}
	return out, nil
}

func (b *commitBench) needs() needs { return needs{pool: 2, topics: []string{b.co.topic}} }

// run measures the writer counts, then the wake-ups.
func (b *commitBench) run(ctx context.Context, e *env, c *checks) (result, error) {
	res := &commitResult{header: e.header(), Writers: b.writers, DurationSeconds: secs(b.duration), Rounds: b.rounds,
		ValueBytes: b.load.valueBytes, Keys: b.load.keys, KeySkew: b.load.skew, Shards: b.load.shards, Wake: e.wake(),
		IdleBeforeWakeSeconds: secs(b.idleBeforeWake), WakeIdleSeconds: secs(b.wakeIdle), Wakes: b.wakes}
	if err := firstError(e.createOrders(ctx), e.createPlainOutbox(ctx)); err != nil {
		return nil, err
	}
	ocfg := outbox.Config{Dialect: e.dialect, NumShards: b.load.shards}
	e.instr.outbox(&ocfg)
	ob, err := outbox.New(ocfg)
	if err != nil {
		return nil, err
	}
	before, err := endOffsets(e.brokers, b.co.topic)
	if err != nil {
		return nil, err
	}
	if err := b.writerPhase(ctx, e, ob, res, c); err != nil {
		return nil, err
	}
	if err := b.wakePhase(ctx, e, ob, res, c); err != nil {
		return nil, err
	}
	if res.TopicRecords, err = topicGrowth(e.brokers, b.co.topic, before); err != nil {
		return nil, err
	}
	if res.PendingAfter, err = e.pending(ctx); err != nil {
		return nil, err
	}
	if want := res.Enqueued + int64(b.wakes); res.TopicRecords != want {
		c.failf("topic %s gained %d records, want %d (%d enqueued by the writers, %d wake-ups)", b.co.topic, res.TopicRecords, want, res.Enqueued, b.wakes)
	}
	if res.PendingAfter != 0 {
		c.failf("%d rows left in the outbox", res.PendingAfter)
	}
	res.TotalSeconds = e.elapsed()
	return res, nil
}

// writerPhase measures every writer count with a relay running.
func (b *commitBench) writerPhase(ctx context.Context, e *env, ob *outbox.Outbox, res *commitResult, c *checks) error {
	dsn, option := oneRoundTripDSN(e.database)
	if option == "" {
		dsn = e.dsn // SQLite
	}
	res.DSNOption = option
	db, err := sql.Open(e.driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	maxWriters := slices.Max(b.writers)
	db.SetMaxOpenConns(maxWriters)
	db.SetMaxIdleConns(maxWriters)

	rig, err := newRelayRig(ctx, e.relaySettings("bench-relay-commit", b.load.shards, 0), e.log)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer rig.close()
	rig.start(ctx)
	stopProfile, err := e.profile()
	if err != nil {
		return err
	}
	defer stopProfile()
	tx := b.transactions(e, db, ob)
	for _, writers := range b.writers {
		pt := commitPoint{Writers: writers}
		out := map[string]*commitVariant{variantNone: &pt.None, variantPlain: &pt.Plain, variantEnqueue: &pt.Enqueue}
		lat := map[string][]float64{}
		for r := range b.rounds {
			order := slices.Clone(variants)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, v := range order {
				n, took, ms, err := b.point(ctx, writers, tx[v])
				if err != nil {
					return fmt.Errorf("%d writers, %s: %w", writers, v, err)
				}
				tps := rate(int64(n), took)
				out[v].TPSRounds = append(out[v].TPSRounds, tps)
				out[v].Transactions += n
				lat[v] = append(lat[v], ms...)
				fmt.Fprintf(e.stderr, "bench: commit: %d writers, %s, round %d: %d transactions in %.2fs (%.0f/s)\n", writers, v, r+1, n, took.Seconds(), tps)
				if n == 0 {
					c.failf("%d writers, %s: no transaction committed", writers, v)
				}
				if v == variantEnqueue {
					res.Enqueued += int64(n)
				}
				if err := b.between(ctx, e, rig, res.Enqueued, c); err != nil {
					return err
				}
			}
		}
		for v, cv := range out {
			ms := lat[v]
			slices.Sort(ms)
			cv.TPS = round(median(cv.TPSRounds), 1)
			cv.P50Ms, cv.P99Ms = round(percentile(ms, 50), 3), round(percentile(ms, 99), 3)
		}
		pt.EnqueueOverPlain, pt.EnqueueOverNone = ratio(pt.Enqueue.TPS, pt.Plain.TPS), ratio(pt.Enqueue.TPS, pt.None.TPS)
		fmt.Fprintf(e.stderr, "bench: commit: %d writers: none %.0f/s, plain %.0f/s, enqueue %.0f/s: enqueue/plain %.3f, enqueue/none %.3f\n",
			writers, pt.None.TPS, pt.Plain.TPS, pt.Enqueue.TPS, pt.EnqueueOverPlain, pt.EnqueueOverNone)
		res.Points = append(res.Points, pt)
	}
	if err := stopProfile(); err != nil {
		return err
	}
	rig.stop()
	st := rig.relay.Stats()
	res.RelayPublished, res.DeadLettered = st.Published, st.DeadLettered
	if res.RelayPublished != res.Enqueued {
		c.failf("the relay published %d messages, the writers enqueued %d", res.RelayPublished, res.Enqueued)
	}
	if res.DeadLettered != 0 {
		c.failf("%d messages dead-lettered", res.DeadLettered)
	}
	return nil
}

// between runs between two variants, outside the timing: the relay drains
// what was enqueued so far, and the business and plain tables are emptied.
func (b *commitBench) between(ctx context.Context, e *env, rig *relayRig, enqueued int64, c *checks) error {
	published := func() int64 { return rig.relay.Stats().Published }
	if err := waitPublished(ctx, e.stderr, enqueued, time.Now(), published, c); err != nil {
		return err
	}
	return firstError(e.emptyTable(ctx, ordersTable), e.emptyTable(ctx, plainOutboxTable))
}

// businessTx is one business transaction of writer w, its i-th.
type businessTx func(ctx context.Context, w, i int) error

// transactions returns the business transaction of each variant on db.
func (b *commitBench) transactions(e *env, db *sql.DB, ob *outbox.Outbox) map[string]businessTx {
	insertOrder := "INSERT INTO " + ordersTable + " (customer, amount) VALUES (" + placeholders(e.name, 1, 2) + ")"
	insertPlain := plainsql.InsertInto(plainOutboxTable, dialect.Name(e.name), 1)
	values, keys, shards, topic := latencyValues(b.load.valueBytes), keyBytes(b.load.keys), b.load.shards, b.co.topic
	// Writer w draws its keys from pickers[w], which no other goroutine
	// touches (a point's writers end before the next point's start).
	maxWriters := slices.Max(b.writers)
	pickers := make([]*keyPicker, maxWriters)
	for w := range pickers {
		pickers[w] = newKeyPicker(b.load.skew, b.load.keys, uint64(w), w, maxWriters)
	}
	key := func(w int) []byte { return keys[pickers[w].pick()] }
	inTx := func(ctx context.Context, w, i int, then func(tx *sql.Tx) error) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, insertOrder, "customer-"+strconv.Itoa(w), i%1000+1); err != nil {
			_ = tx.Rollback()
			return err
		}
		if then != nil {
			if err := then(tx); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		return tx.Commit()
	}
	return map[string]businessTx{
		variantNone: func(ctx context.Context, w, i int) error { return inTx(ctx, w, i, nil) },
		variantPlain: func(ctx context.Context, w, i int) error {
			return inTx(ctx, w, i, func(tx *sql.Tx) error {
				k := key(w)
				_, err := tx.ExecContext(ctx, insertPlain, outbox.NewMessageID(), topic, k, int64(outbox.KeyHash(k)),
					values[i%len(values)], nil, outbox.ShardFor(k, shards))
				return err
			})
		},
		variantEnqueue: func(ctx context.Context, w, i int) error {
			return inTx(ctx, w, i, func(tx *sql.Tx) error {
				return ob.Enqueue(ctx, tx, outbox.Message{Topic: topic, Key: key(w), Value: values[i%len(values)]})
			})
		},
	}
}

// point runs writers goroutines of tx for --duration and returns the
// committed transactions, the time until the last writer ended, and the
// time of every transaction in ms.
func (b *commitBench) point(ctx context.Context, writers int, tx businessTx) (int, time.Duration, []float64, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		all   []float64
		first error
	)
	start := time.Now()
	deadline := start.Add(b.duration)
	for w := range writers {
		wg.Go(func() {
			var ms []float64
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				t0 := time.Now()
				if err := tx(ctx, w, i); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("writer %d: %w", w, err)
					}
					mu.Unlock()
					return
				}
				ms = append(ms, float64(time.Since(t0))/float64(time.Millisecond))
			}
			mu.Lock()
			all = append(all, ms...)
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(start)
	if first == nil {
		first = ctx.Err()
	}
	return len(all), took, all, first
}

// wakePhase measures the wake-ups of a relay over an idle outbox.
func (b *commitBench) wakePhase(ctx context.Context, e *env, ob *outbox.Outbox, res *commitResult, c *checks) error {
	poll := b.wakePoll
	if poll == 0 && e.dialect.SupportsNotify() {
		poll = wakePollNotify
	}
	s := e.relaySettings("bench-relay-wake", b.load.shards, 0)
	s.pollInterval = poll
	if poll == 0 {
		poll = outbox.DefaultPollInterval
	}
	res.WakePollIntervalMs = round(float64(poll)/float64(time.Millisecond), 3)
	runID := newRunID()
	arr, err := startArrivals(ctx, e, 10*time.Millisecond, runID)
	if err != nil {
		return err
	}
	defer arr.stop()
	rig, err := newRelayRig(ctx, s, e.log)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer rig.close()
	rig.start(ctx)
	fmt.Fprintf(e.stderr, "bench: commit: wake-ups (%s, poll interval %s): the outbox idles for %s\n", e.wake(), poll, b.idleBeforeWake)
	keys := keyBytes(b.load.keys)
	value := latencyValues(b.load.valueBytes)[0]
	for i := range b.wakes {
		idle := b.wakeIdle
		if i == 0 {
			idle = b.idleBeforeWake
		}
		if !ctxtime.Sleep(ctx, idle) {
			return ctx.Err()
		}
		id := runID + "-wake-" + strconv.Itoa(i)
		tx, err := e.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := ob.Enqueue(ctx, tx, outbox.Message{ID: id, Topic: b.co.topic, Key: keys[i%len(keys)], Value: value}); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		committed := time.Now()
		got, ok, err := waitArrival(ctx, arr, id, committed.Add(poll+wakeTimeout))
		if err != nil {
			return err
		}
		if !ok {
			c.failf("wake-up %d: the message did not arrive within %s of its commit", i, poll+wakeTimeout)
			continue
		}
		res.WakeReceived++
		res.WakeMs = append(res.WakeMs, round(float64(got.Sub(committed))/float64(time.Millisecond), 3))
	}
	rig.stop()
	arr.stop()
	res.WakeDuplicates = arr.duplicates
	if len(res.WakeMs) > 0 {
		res.WakeFirstMs = res.WakeMs[0]
		ms := slices.Clone(res.WakeMs)
		slices.Sort(ms)
		res.WakeP50Ms, res.WakeP99Ms, res.WakeMaxMs = percentile(ms, 50), percentile(ms, 99), ms[len(ms)-1]
	}
	fmt.Fprintf(e.stderr, "bench: commit: %d of %d wake-ups arrived: first %.2fms, p50 %.2fms, p99 %.2fms, max %.2fms\n",
		res.WakeReceived, b.wakes, res.WakeFirstMs, res.WakeP50Ms, res.WakeP99Ms, res.WakeMaxMs)
	if res.WakeDuplicates != 0 {
		c.failf("%d wake-up messages arrived more than once", res.WakeDuplicates)
	}
	return nil
}

// waitArrival waits until the record of id has arrived or the deadline
// has passed, and returns when it arrived.
func waitArrival(ctx context.Context, arr *arrivals, id string, deadline time.Time) (time.Time, bool, error) {
	for {
		if t, ok := arr.arrival(id); ok {
			return t, true, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, false, nil
		}
		if !ctxtime.Sleep(ctx, 200*time.Microsecond) {
			return time.Time{}, false, ctx.Err()
		}
	}
}

// median returns the median of xs (the mean of the middle two when their
// count is even), or 0.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
