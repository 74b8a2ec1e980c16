package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/plainsql"
)

const enqueueAbout = `Compares Enqueue with the multi-row INSERT a user would write by hand.

For batches of 1 and 100 messages, each iteration runs both, in
BEGIN ... COMMIT of their own, alternating which goes first: Enqueue(ctx, tx,
msgs...), and tx.ExecContext of INSERT INTO outbox_messages (message_id,
topic, msg_key, key_hash, payload, headers, shard, created_at, available_at)
VALUES (...),(...) with placeholders, the message ID, key hash and shard
computed as the library computes them. Only the call is timed, not BEGIN and
COMMIT. The first --iterations/20 iterations warm up and are not counted.

On PostgreSQL and MySQL it runs twice: with the DSN as given, and with the
driver option that sends the parameters with the statement
(binary_parameters=yes for lib/pq, interpolateParams=true for
go-sql-driver/mysql). Each time it also counts the network round trips of
one call, through a TCP proxy on loopback: the times the server started
answering after the client had sent. Enqueue must take exactly one round
trip, for 1 and for 100 messages, with either DSN: the run fails otherwise
(and when it takes more than the plain INSERT). SQLite runs in process: no
round trips.`

const enqueueExamples = `  go run ./cmd/outbox-bench enqueue --dialect postgres
  go run ./cmd/outbox-bench enqueue --dialect mysql --iterations 5000`

// callStats summarizes the timed calls of one kind, in microseconds.
type callStats struct {
	MedianUs float64 `json:"median_us"`
	MeanUs   float64 `json:"mean_us"`
	P90Us    float64 `json:"p90_us"`
}

// roundTrips are the round trips of one call of each kind (the median of a
// few calls).
type roundTrips struct {
	Enqueue1   int `json:"enqueue_1"`
	Plain1     int `json:"plain_1"`
	Enqueue100 int `json:"enqueue_100"`
	Plain100   int `json:"plain_100"`
}

// enqueueVariant is the comparison with one DSN.
type enqueueVariant struct {
	DSNOption      string      `json:"dsn_option"` // "" for the DSN as given
	Enqueue1       callStats   `json:"enqueue_1"`
	Plain1         callStats   `json:"plain_1"`
	Ratio1Median   float64     `json:"ratio_1_median"` // Enqueue / plain INSERT
	Ratio1Mean     float64     `json:"ratio_1_mean"`
	Enqueue100     callStats   `json:"enqueue_100"`
	Plain100       callStats   `json:"plain_100"`
	Ratio100Median float64     `json:"ratio_100_median"`
	Ratio100Mean   float64     `json:"ratio_100_mean"`
	RoundTrips     *roundTrips `json:"round_trips"` // null on SQLite
	Seconds        float64     `json:"seconds"`
}

// enqueueResult is the JSON line of the enqueue scenario.
type enqueueResult struct {
	header
	Iterations1   int             `json:"iterations_1"`
	Iterations100 int             `json:"iterations_100"`
	Warmup1       int             `json:"warmup_iterations_1"`
	Warmup100     int             `json:"warmup_iterations_100"`
	ValueBytes    int             `json:"value_bytes"`
	Keys          int             `json:"keys"`
	KeySkew       string          `json:"key_skew"`
	Shards        int             `json:"shards"`
	AsGiven       enqueueVariant  `json:"dsn_as_given"`
	OneRoundTrip  *enqueueVariant `json:"one_round_trip_option"` // null on SQLite
	TotalSeconds  float64         `json:"total_seconds"`
	verdict
}

// roundTripReps is how many calls of each kind the round-trip count looks
// at.
const roundTripReps = 5

// cleanEvery empties the outbox table (outside the timing) after this many
// rows, so that it does not grow without bound.
const cleanEvery = 10_000

var enqueueScenario = scenario{
	name:     "enqueue",
	summary:  "Enqueue against a hand-written multi-row INSERT, with round trips",
	about:    enqueueAbout,
	examples: enqueueExamples,
	flags: func(fs *flag.FlagSet, co *commonOpts) benchmark {
		b := &enqueueBench{co: co}
		fs.IntVar(&b.iterations, "iterations", 2000, "timed iterations with 1 message per call")
		fs.IntVar(&b.iterations100, "iterations-100", 0, "timed iterations with 100 messages per call (0: 3/20 of --iterations)")
		b.load = addLoad(fs, 0, false)
		return b
	},
}

// enqueueBench is the enqueue scenario with its flags, and the state of a
// run.
type enqueueBench struct {
	co                        *commonOpts
	load                      *loadOpts
	iterations, iterations100 int

	e     *env
	ob    *outbox.Outbox
	c     *checks
	pools map[int][][]outbox.Message
	rows  int // inserted since the last clean
}

func (b *enqueueBench) check() error {
	if b.iterations < 1 || b.iterations100 < 0 {
		return usagef("--iterations must be at least 1 and --iterations-100 at least 0; got %d and %d", b.iterations, b.iterations100)
	}
	if b.iterations100 == 0 {
		b.iterations100 = max(2, (b.iterations*3+19)/20)
	}
	return b.load.check(b.co.topic)
}

func (b *enqueueBench) needs() needs { return needs{pool: 1} } // no broker

// run times both calls with the DSN as given and, where the driver has
// one, with the option that sends the parameters with the statement.
func (b *enqueueBench) run(ctx context.Context, e *env, c *checks) (result, error) {
	h := e.header()
	h.Topic, h.Partitions = "", 0
	res := &enqueueResult{header: h, Iterations1: b.iterations, Iterations100: b.iterations100,
		Warmup1: b.iterations / 20, Warmup100: b.iterations100 / 20,
		ValueBytes: b.load.valueBytes, Keys: b.load.keys, KeySkew: b.load.skew, Shards: b.load.shards}
	ocfg := outbox.Config{Dialect: e.dialect, NumShards: b.load.shards}
	e.instr.outbox(&ocfg)
	ob, err := outbox.New(ocfg)
	if err != nil {
		return nil, err
	}
	ctx, endRequest := e.instr.request(ctx)
	defer endRequest()
	b.e, b.ob, b.c = e, ob, c
	b.pools = map[int][][]outbox.Message{1: b.messagePool(1), 100: b.messagePool(100)}
	stopProfile, err := e.profile()
	if err != nil {
		return nil, err
	}
	defer stopProfile()
	if res.AsGiven, err = b.variant(ctx, e.dsn, ""); err != nil {
		return nil, err
	}
	if dsn, option := oneRoundTripDSN(e.database); option != "" {
		v, err := b.variant(ctx, dsn, option)
		if err != nil {
			return nil, err
		}
		res.OneRoundTrip = &v
	}
	if err := stopProfile(); err != nil {
		return nil, err
	}
	res.TotalSeconds = e.elapsed()
	return res, nil
}

// messagePool returns 64 distinct batches of size messages: random keys
// (uniform, or drawn as --key-skew says) and values, no ID (Enqueue makes
// one, as the plain insert does).
func (b *enqueueBench) messagePool(size int) [][]outbox.Message {
	rng := newRand(uint64(size))
	pick := newKeyPicker(b.load.skew, b.load.keys, uint64(size), 0, 1)
	pool := make([][]outbox.Message, 64)
	for i := range pool {
		pool[i] = make([]outbox.Message, size)
		for j := range pool[i] {
			v := make([]byte, b.load.valueBytes)
			_, _ = rng.Read(v)
			k := int(rng.Uint64() % uint64(b.load.keys))
			if b.load.skew == skewZipf {
				k = pick.pick()
			}
			pool[i][j] = outbox.Message{Topic: b.co.topic, Key: []byte("key-" + strconv.Itoa(k)), Value: v}
		}
	}
	return pool
}

// call is one way of writing a batch in a transaction.
type call func(ctx context.Context, tx *sql.Tx, batch []outbox.Message) error

// calls returns Enqueue and the plain insert for batches of size.
func (b *enqueueBench) calls(size int) (enqueue, plain call) {
	enqueue = func(ctx context.Context, tx *sql.Tx, batch []outbox.Message) error {
		return b.ob.Enqueue(ctx, tx, batch...)
	}
	query := plainsql.Insert(dialect.Name(b.e.name), size)
	args := make([]any, 0, 7*size)
	shards := b.load.shards
	plain = func(ctx context.Context, tx *sql.Tx, batch []outbox.Message) error {
		args = args[:0]
		for i := range batch {
			m := &batch[i]
			args = append(args, outbox.NewMessageID(), m.Topic, m.Key, int64(outbox.KeyHash(m.Key)), m.Value, nil,
				outbox.ShardFor(m.Key, shards))
		}
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	}
	return enqueue, plain
}

// variant times both calls for sizes 1 and 100 on a pool opened with dsn,
// and counts their round trips through a proxy (not on SQLite).
func (b *enqueueBench) variant(ctx context.Context, dsn, option string) (enqueueVariant, error) {
	start := time.Now()
	v := enqueueVariant{DSNOption: option}
	label := "dsn as given"
	if option != "" {
		label = option
	}
	db, err := sql.Open(b.e.driver, dsn)
	if err != nil {
		return v, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one warm connection for every call
	for _, size := range []int{1, 100} {
		iters := b.iterations
		if size == 100 {
			iters = b.iterations100
		}
		enq, plain, err := b.timeCalls(ctx, db, size, iters/20, iters)
		if err != nil {
			return v, fmt.Errorf("%s, %d per call: %w", label, size, err)
		}
		es, ps := summarize(enq), summarize(plain)
		rm, ra := ratio(es.MedianUs, ps.MedianUs), ratio(es.MeanUs, ps.MeanUs)
		if size == 1 {
			v.Enqueue1, v.Plain1, v.Ratio1Median, v.Ratio1Mean = es, ps, rm, ra
		} else {
			v.Enqueue100, v.Plain100, v.Ratio100Median, v.Ratio100Mean = es, ps, rm, ra
		}
		fmt.Fprintf(b.e.stderr, "bench: enqueue (%s), %d per call: Enqueue median %.0fµs mean %.0fµs; plain median %.0fµs mean %.0fµs; ratio %.3f\n",
			label, size, es.MedianUs, es.MeanUs, ps.MedianUs, ps.MeanUs, rm)
		if rm <= 0 || ra <= 0 {
			b.c.failf("%s, %d per call: no valid timing", label, size)
		}
	}
	if b.e.name != "sqlite" {
		rt, err := b.roundTrips(ctx, dsn, label)
		if err != nil {
			return v, fmt.Errorf("%s: round trips: %w", label, err)
		}
		v.RoundTrips = rt
	}
	v.Seconds = secs(time.Since(start))
	return v, nil
}

// timeCalls runs warmup+iters iterations of both calls, alternating which
// goes first, and returns the durations of the counted ones in µs.
func (b *enqueueBench) timeCalls(ctx context.Context, db *sql.DB, size, warmup, iters int) (enq, plain []float64, err error) {
	enqueue, plainInsert := b.calls(size)
	pool := b.pools[size]
	for i := 0; i < warmup+iters; i++ {
		if b.rows >= cleanEvery {
			if err := b.clean(ctx, db); err != nil {
				return nil, nil, err
			}
		}
		batch := pool[i%len(pool)]
		for j := 0; j < 2; j++ {
			isEnqueue := (i+j)%2 == 0
			fn := plainInsert
			if isEnqueue {
				fn = enqueue
			}
			d, err := timeInTx(ctx, db, fn, batch)
			if err != nil {
				return nil, nil, err
			}
			b.rows += size
			if i < warmup {
				continue
			}
			us := float64(d) / float64(time.Microsecond)
			if isEnqueue {
				enq = append(enq, us)
			} else {
				plain = append(plain, us)
			}
		}
	}
	return enq, plain, b.clean(ctx, db)
}

// clean deletes the rows written so far and checks that they were all
// there.
func (b *enqueueBench) clean(ctx context.Context, db *sql.DB) error {
	r, err := db.ExecContext(ctx, "DELETE FROM "+dialect.TableMessages)
	if err != nil {
		return err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n != int64(b.rows) {
		b.c.failf("the outbox held %d rows, %d were written", n, b.rows)
	}
	b.rows = 0
	return nil
}

// timeInTx runs fn in a transaction of its own and returns how long fn
// took (BEGIN and COMMIT excluded).
func timeInTx(ctx context.Context, db *sql.DB, fn call, batch []outbox.Message) (time.Duration, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = fn(ctx, tx, batch)
	d := time.Since(start)
	if err != nil {
		_ = tx.Rollback()
		return 0, err
	}
	return d, tx.Commit()
}

// roundTrips counts the round trips of one call of each kind through a
// proxy in front of the server of dsn.
func (b *enqueueBench) roundTrips(ctx context.Context, dsn, label string) (*roundTrips, error) {
	proxied, target, err := viaProxy(b.e.name, dsn)
	if err != nil {
		return nil, err
	}
	p, err := startFlightProxy(target)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	db, err := sql.Open(b.e.driver, proxied(p.Addr()))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var rt roundTrips
	for _, size := range []int{1, 100} {
		enqueue, plain := b.calls(size)
		for _, k := range []struct {
			fn        call
			out       *int
			bad       string
			isEnqueue bool
		}{
			{enqueue, map[int]*int{1: &rt.Enqueue1, 100: &rt.Enqueue100}[size], "Enqueue", true},
			{plain, map[int]*int{1: &rt.Plain1, 100: &rt.Plain100}[size], "plain INSERT", false},
		} {
			var counts []int
			for i := 0; i < roundTripReps; i++ {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					return nil, err
				}
				before := p.Flights()
				err = k.fn(ctx, tx, b.pools[size][i])
				after := p.Flights()
				if err != nil {
					_ = tx.Rollback()
					return nil, err
				}
				if err := tx.Commit(); err != nil {
					return nil, err
				}
				b.rows += size
				counts = append(counts, int(after-before))
			}
			slices.Sort(counts)
			*k.out = counts[len(counts)/2]
			if counts[0] != counts[len(counts)-1] {
				fmt.Fprintf(b.e.stderr, "bench: enqueue (%s): %s of %d: round trips vary between calls: %v\n", label, k.bad, size, counts)
			}
			if k.isEnqueue && (counts[0] != 1 || counts[len(counts)-1] != 1) {
				b.c.failf("%s: Enqueue of %d messages takes %v round trips in %d calls, want exactly 1 each", label, size, counts, len(counts))
			}
		}
	}
	fmt.Fprintf(b.e.stderr, "bench: enqueue (%s): round trips: Enqueue %d/%d, plain %d/%d (1/100 messages)\n",
		label, rt.Enqueue1, rt.Enqueue100, rt.Plain1, rt.Plain100)
	if rt.Enqueue1 > rt.Plain1 || rt.Enqueue100 > rt.Plain100 {
		b.c.failf("%s: Enqueue takes more round trips than the plain INSERT (%d/%d against %d/%d)",
			label, rt.Enqueue1, rt.Enqueue100, rt.Plain1, rt.Plain100)
	}
	return &rt, b.clean(ctx, db)
}

// summarize returns the median, mean and 90th percentile of µs.
func summarize(us []float64) callStats {
	s := slices.Clone(us)
	slices.Sort(s)
	return callStats{MedianUs: round(percentile(s, 50), 1), MeanUs: round(mean(s), 1), P90Us: round(percentile(s, 90), 1)}
}
