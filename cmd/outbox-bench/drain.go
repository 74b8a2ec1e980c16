package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

const drainAbout = `Measures how fast the relay drains a preloaded outbox, against two floors:

  load        enqueue -n messages (transactions of 1000, keys as --keys and
              --key-skew say, random values), then VACUUM ANALYZE / ANALYZE
              TABLE / ANALYZE
  slim        the loaded rows copied, in id order, into bench_slim_outbox: a
              slim outbox table (id, topic, msg_key, payload, headers; the
              primary key only); then VACUUM ANALYZE / ANALYZE it
  raw_db      on one connection, with no broker: SELECT ... ORDER BY id LIMIT
              <batch> and DELETE ... WHERE id IN (...) until the table is empty
  raw_slim    the same loop over bench_slim_outbox (id, topic, msg_key,
              payload, headers): what the outbox table itself costs
  reload      the same load again
  relay       --relays relays (each with its own pool of 4, its own Kafka
              publisher, pqnotify wake-ups on PostgreSQL), timed from their
              start until they have published -n messages; then the topic must
              hold -n more records and the outbox must be empty
  check       outside the timing: the IDs and keys of the reloaded messages,
              read in id order before the relay phase, against the records
              the relay phase added to the topic (read back by outbox-id
              header): every message arrived (lost = 0), no record is
              unknown, no message arrived twice (duplicates = 0), and in
              each partition the first arrivals of each key keep the id
              order (order_violations = 0) and no key spans two partitions
  raw_broker  with no database: a Sarama async producer configured exactly as
              publisher/kafka configures its own (idempotent, acks=all, one
              request in flight per broker), producing -n records of the same
              shape (the load's keys in the load's order, outbox-id header)
              into <topic>.raw, pipelined

relay_over_raw_db, relay_over_raw_slim and relay_over_raw_broker are the
relay's rate divided by each floor's. relay_publish_seconds is the time the relays spent inside
Publish (the broker side); the rest of relay_seconds is the database side
(reading and deleting) and the relay's own work.

--hold holds a snapshot open on a connection of its own from before the
load to the end, as a long report or an idle-in-transaction session does
(see the pressure scenario): every row deleted after it stays dead, for the
raw loops and the relay alike, and the run fails if the snapshot was not held
to the end.

--broker-rtt puts a round trip between kfake and all its clients, the relays
and raw_broker's producer alike, so both floors and the relay see the same
broker.`

const drainExamples = `  go run ./cmd/outbox-bench drain --dialect postgres
  go run ./cmd/outbox-bench drain --dialect mysql -n 100000 --relays 2
  go run ./cmd/outbox-bench drain --dialect sqlite --batch-size 500
  go run ./cmd/outbox-bench drain --dialect postgres --hold`

// drainResult is the JSON line of the drain scenario.
type drainResult struct {
	header
	N              int     `json:"n"`
	ValueBytes     int     `json:"value_bytes"`
	Keys           int     `json:"keys"`
	KeySkew        string  `json:"key_skew"`
	BrokerRTTMs    float64 `json:"broker_rtt_ms"` // --broker-rtt (kfake only)
	Relays         int     `json:"relays"`
	BatchSize      int     `json:"batch_size"`
	Shards         int     `json:"shards"`
	RawDBBatchSize int     `json:"raw_db_batch_size"`
	Hold           bool    `json:"hold"`
	HoldStatement  string  `json:"hold_statement,omitempty"`
	SnapshotHeld   bool    `json:"snapshot_held,omitempty"` // --hold: still held at the end

	LoadSeconds      float64 `json:"load_seconds"`
	RawDBSeconds     float64 `json:"raw_db_seconds"`
	RawDBMsgsPerSec  float64 `json:"raw_db_msgs_per_sec"`
	RawDBDeleted     int64   `json:"raw_db_deleted"`
	RawDBSelectSecs  float64 `json:"raw_db_select_seconds"` // of raw_db_seconds: the SELECTs
	RawDBDeleteSecs  float64 `json:"raw_db_delete_seconds"` // and the DELETEs
	SlimLoadSeconds  float64 `json:"slim_load_seconds"`     // copying the load into the slim table
	RawSlimSeconds   float64 `json:"raw_slim_seconds"`
	RawSlimMsgsPerS  float64 `json:"raw_slim_msgs_per_sec"`
	RawSlimDeleted   int64   `json:"raw_slim_deleted"`
	RawSlimSelectSec float64 `json:"raw_slim_select_seconds"`
	RawSlimDeleteSec float64 `json:"raw_slim_delete_seconds"`
	ReloadSeconds    float64 `json:"reload_seconds"`
	RelaySeconds     float64 `json:"relay_seconds"`
	RelayMsgsPerSec  float64 `json:"relay_msgs_per_sec"`
	RelayPublished   int64   `json:"relay_published"`
	RelayBatches     int64   `json:"relay_batches"`
	RelayPublishSecs float64 `json:"relay_publish_seconds"`
	RelayPublishCall int64   `json:"relay_publish_calls"`
	RelayDeadLetters int64   `json:"relay_dead_lettered"`
	RelayRetried     int64   `json:"relay_retried"`
	RelayTopicGrowth int64   `json:"relay_topic_records"`
	PendingAfter     int64   `json:"pending_after_relay"`
	deliveryCheck
	RawBrokerSeconds float64 `json:"raw_broker_seconds"`
	RawBrokerRate    float64 `json:"raw_broker_msgs_per_sec"`
	RawBrokerRecords int64   `json:"raw_broker_topic_records"`
	RelayOverRawDB   float64 `json:"relay_over_raw_db"`
	RelayOverRawSlim float64 `json:"relay_over_raw_slim"`
	RelayOverRawBrk  float64 `json:"relay_over_raw_broker"`
	TotalSeconds     float64 `json:"total_seconds"`
	verdict
}

var drainScenario = scenario{
	name:     "drain",
	summary:  "relay throughput on a preloaded outbox, against raw database and broker loops",
	about:    drainAbout,
	examples: drainExamples,
	flags: func(fs *flag.FlagSet, co *commonOpts) benchmark {
		addBrokerRTT(fs, co)
		b := &drainBench{co: co, load: addLoad(fs, 200_000, true)}
		fs.IntVar(&b.relays, "relays", 1, "relays draining side by side, in this process")
		fs.IntVar(&b.batchSize, "batch-size", 0, "relay batch size; also the raw_db loop's LIMIT (0: the relay's default, 1000)")
		fs.BoolVar(&b.hold, "hold", false, "hold a snapshot open on another connection for the whole run")
		return b
	},
}

// drainBench is the drain scenario with its flags.
type drainBench struct {
	co                *commonOpts
	load              *loadOpts
	relays, batchSize int
	hold              bool
}

func (b *drainBench) check() error {
	return firstError(b.load.check(b.co.topic), checkAtLeast("--relays", b.relays, 1), checkBatchSize(b.batchSize))
}

func (b *drainBench) needs() needs {
	return needs{pool: 2, topics: []string{b.co.topic, b.rawTopic()}}
}

// rawTopic is the topic of the raw_broker phase.
func (b *drainBench) rawTopic() string { return b.co.topic + ".raw" }

// batch is the relay's batch size, and the raw_db loop's LIMIT.
func (b *drainBench) batch() int {
	if b.batchSize == 0 {
		return outbox.DefaultBatchSize
	}
	return b.batchSize
}

// run measures the phases in the order of drainAbout.
func (b *drainBench) run(ctx context.Context, e *env, c *checks) (result, error) {
	n := b.load.n
	res := &drainResult{header: e.header(), N: n, ValueBytes: b.load.valueBytes, Keys: b.load.keys,
		KeySkew: b.load.skew, BrokerRTTMs: e.brokerRTTMs(),
		Relays: b.relays, BatchSize: b.batch(), Shards: b.load.shards, RawDBBatchSize: b.batch(), Hold: b.hold}
	if b.hold {
		h, err := holdSnapshot(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("holding a snapshot: %w", err)
		}
		defer h.close()
		res.HoldStatement = h.statement
		defer func() {
			if res.SnapshotHeld, err = h.held(ctx); err != nil || !res.SnapshotHeld {
				c.failf("the snapshot was not held to the end (%v): the holding transaction sees a row committed after it began", err)
			}
		}()
	}
	spec := b.load.spec(b.co.topic)
	took, err := e.load(ctx, spec, "load")
	if err != nil {
		return nil, err
	}
	res.LoadSeconds = secs(took)
	if err := b.slim(ctx, e, res, c); err != nil {
		return nil, err
	}
	if err := b.rawDB(ctx, e, res, c); err != nil {
		return nil, err
	}
	if err := b.rawSlim(ctx, e, res, c); err != nil {
		return nil, err
	}
	if took, err = e.load(ctx, spec, "reload"); err != nil {
		return nil, err
	}
	res.ReloadSeconds = secs(took)
	rb, err := e.startReadback(ctx, n, "the reload", c)
	if err != nil {
		return nil, err
	}
	if err := b.relayPhase(ctx, e, rb, res, c); err != nil {
		return nil, err
	}
	if err := b.rawBroker(ctx, e, res, c); err != nil {
		return nil, err
	}
	res.RelayOverRawDB = ratio(res.RelayMsgsPerSec, res.RawDBMsgsPerSec)
	res.RelayOverRawSlim = ratio(res.RelayMsgsPerSec, res.RawSlimMsgsPerS)
	res.RelayOverRawBrk = ratio(res.RelayMsgsPerSec, res.RawBrokerRate)
	res.TotalSeconds = e.elapsed()
	return res, nil
}

// slim is the slim phase: the loaded rows copied into the slim table.
func (b *drainBench) slim(ctx context.Context, e *env, res *drainResult, c *checks) error {
	start := time.Now()
	if err := e.createSlim(ctx); err != nil {
		return err
	}
	copied, err := e.fillSlim(ctx)
	if err != nil {
		return err
	}
	if err := e.analyze(ctx, slimTable); err != nil {
		return fmt.Errorf("analyzing %s: %w", slimTable, err)
	}
	res.SlimLoadSeconds = secs(time.Since(start))
	fmt.Fprintf(e.stderr, "bench: slim: %d rows copied into %s and analyzed in %.1fs\n", copied, slimTable, res.SlimLoadSeconds)
	if copied != int64(b.load.n) {
		c.failf("%d rows copied into %s, want %d", copied, slimTable, b.load.n)
	}
	return nil
}

// rawDB is the raw_db phase: the preloaded outbox drained by a plain
// SELECT + DELETE loop.
func (b *drainBench) rawDB(ctx context.Context, e *env, res *drainResult, c *checks) error {
	raw, err := b.rawLoop(ctx, e, c, "raw_db", outboxRaw)
	res.RawDBDeleted, res.RawDBSeconds, res.RawDBMsgsPerSec = raw.deleted, secs(raw.took), rate(raw.deleted, raw.took)
	res.RawDBSelectSecs, res.RawDBDeleteSecs = secs(raw.selecting), secs(raw.deleting)
	return err
}

// rawSlim is the raw_slim phase: the slim table drained by the loop of
// raw_db.
func (b *drainBench) rawSlim(ctx context.Context, e *env, res *drainResult, c *checks) error {
	raw, err := b.rawLoop(ctx, e, c, "raw_slim", slimRaw)
	res.RawSlimDeleted, res.RawSlimSeconds, res.RawSlimMsgsPerS = raw.deleted, secs(raw.took), rate(raw.deleted, raw.took)
	res.RawSlimSelectSec, res.RawSlimDeleteSec = secs(raw.selecting), secs(raw.deleting)
	return err
}

// rawLoop runs the SELECT + DELETE loop of phase name over table, reports
// it and checks that it deleted -n rows.
func (b *drainBench) rawLoop(ctx context.Context, e *env, c *checks, name string, table rawTable) (rawDrain, error) {
	raw, err := rawDBDrain(ctx, e.db, table, b.batch())
	if err != nil {
		return rawDrain{}, fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(e.stderr, "bench: %s: %d rows read and deleted in %.2fs (%.0f msg/s; %.2fs in SELECT, %.2fs in DELETE)\n",
		name, raw.deleted, raw.took.Seconds(), rate(raw.deleted, raw.took), raw.selecting.Seconds(), raw.deleting.Seconds())
	if raw.deleted != int64(b.load.n) {
		c.failf("%s deleted %d rows, want %d", name, raw.deleted, b.load.n)
	}
	return raw, nil
}

// relayPhase is the relay phase: --relays relays drain the reloaded
// outbox, timed from their start until they have published -n messages;
// then the topic is read back (rb).
func (b *drainBench) relayPhase(ctx context.Context, e *env, rb *readback, res *drainResult, c *checks) error {
	d, err := drainLoaded(ctx, e, rb, drainSettings{relays: b.relays, shards: b.load.shards, batch: b.batch(), n: b.load.n}, c)
	if err != nil {
		return err
	}
	t := d.totals
	res.RelayPublished, res.RelayBatches, res.RelayDeadLetters, res.RelayRetried = t.published, t.batches, t.deadLettered, t.retried
	res.RelayPublishCall, res.RelayPublishSecs = t.publishCalls, secs(t.publishTime)
	res.RelaySeconds, res.RelayMsgsPerSec = secs(d.took), rate(int64(b.load.n), d.took)
	res.RelayTopicGrowth, res.PendingAfter, res.deliveryCheck = d.records, d.pending, d.check
	return nil
}

// drainSettings are the relays of a drain of a loaded outbox and what
// they drain.
type drainSettings struct {
	relays, shards, batch int
	n                     int           // messages loaded
	window                time.Duration // > 0: the rate of every window of this length too
}

// relayDrain is what drainLoaded measured: the time until the relays had
// published every loaded message, their statistics, the rate of each
// window, and what the read-back found.
type relayDrain struct {
	took    time.Duration
	totals  fleetTotals
	windows []drainWindow
	published
}

// drainWindow is the relays' rate over one window of a drain (the last
// one may be shorter).
type drainWindow struct {
	EndSeconds float64 `json:"end_seconds"` // since the relays started
	Published  int64   `json:"published"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
}

// drainLoaded drains the s.n loaded messages with s.relays relays, timed
// from their start until they have published s.n (under the CPU profile
// of --cpuprofile); then it reads the topic back (rb) and records the
// failed checks: fewer published or on the topic than loaded, rows left,
// dead letters, and those of the read-back (duplicates included).
func drainLoaded(ctx context.Context, e *env, rb *readback, s drainSettings, c *checks) (relayDrain, error) {
	var d relayDrain
	relays, err := newFleet(ctx, e, s.relays, s.shards, s.batch)
	if err != nil {
		return d, err
	}
	defer relays.close()
	stopProfile, err := e.profile()
	if err != nil {
		return d, err
	}
	defer stopProfile()
	start := time.Now()
	relays.start(ctx)
	if d.windows, err = waitPublishedWindows(ctx, e.stderr, int64(s.n), start, relays.published, s.window, c); err != nil {
		return d, err
	}
	d.took = time.Since(start)
	if err := stopProfile(); err != nil {
		return d, err
	}
	relays.stop()
	d.totals = relays.totals()
	t := d.totals
	fmt.Fprintf(e.stderr, "bench: relay: %d published in %.2fs (%.0f msg/s), %d batches, %.2fs in Publish\n",
		t.published, d.took.Seconds(), rate(int64(s.n), d.took), t.batches, t.publishTime.Seconds())
	if d.published, err = rb.finish(ctx, e, true, c); err != nil {
		return d, err
	}
	if t.published < int64(s.n) {
		c.failf("relays published %d, want %d", t.published, s.n)
	}
	if d.records < int64(s.n) {
		c.failf("topic %s holds %d new records after the relay phase, want at least %d", rb.topic, d.records, s.n)
	}
	if d.pending != 0 {
		c.failf("%d rows left in the outbox after the relay phase", d.pending)
	}
	if t.deadLettered != 0 {
		c.failf("%d messages dead-lettered", t.deadLettered)
	}
	return d, nil
}

// waitPublished waits until published() reaches n, reporting progress
// every 5s since start; a minute without progress is a failed check (and
// the end of the wait).
func waitPublished(ctx context.Context, stderr io.Writer, n int64, start time.Time, published func() int64, c *checks) error {
	_, err := waitPublishedWindows(ctx, stderr, n, start, published, 0, c)
	return err
}

// waitPublishedWindows is waitPublished that also returns, with window >
// 0, what was published in each window of that length from start (read
// every 10ms: the windows' ends are as precise).
func waitPublishedWindows(ctx context.Context, stderr io.Writer, n int64, start time.Time, published func() int64, window time.Duration, c *checks) ([]drainWindow, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	lastReport, lastProgress, last := start, start, int64(0)
	var windows []drainWindow
	winStart, winFrom := start, int64(0)
	closeWindow := func(now time.Time, got int64) {
		windows = append(windows, drainWindow{EndSeconds: secs(now.Sub(start)), Published: got - winFrom,
			MsgsPerSec: rate(got-winFrom, now.Sub(winStart))})
		winStart, winFrom = now, got
	}
	for {
		got := published()
		now := time.Now()
		if window > 0 && (now.Sub(winStart) >= window || got >= n) {
			closeWindow(now, got)
		}
		if got >= n {
			return windows, nil
		}
		if got != last {
			last, lastProgress = got, now
		}
		if now.Sub(lastProgress) > time.Minute {
			c.failf("relay stalled: %d of %d published, nothing for a minute", got, n)
			return windows, nil
		}
		if now.Sub(lastReport) >= 5*time.Second {
			fmt.Fprintf(stderr, "bench: relay: %d/%d published (%.0f msg/s)\n", got, n, float64(got)/now.Sub(start).Seconds())
			lastReport = now
		}
		select {
		case <-ctx.Done():
			return windows, ctx.Err()
		case <-tick.C:
		}
	}
}

// rawBroker is the raw_broker phase: the bare producer, no database.
func (b *drainBench) rawBroker(ctx context.Context, e *env, res *drainResult, c *checks) error {
	topic, n := b.rawTopic(), b.load.n
	before, err := endOffsets(e.brokers, topic)
	if err != nil {
		return err
	}
	took, err := rawProduce(ctx, e.brokers, b.load.spec(topic))
	if err != nil {
		return fmt.Errorf("raw_broker: %w", err)
	}
	res.RawBrokerSeconds, res.RawBrokerRate = secs(took), rate(int64(n), took)
	fmt.Fprintf(e.stderr, "bench: raw_broker: %d records acknowledged in %.2fs (%.0f msg/s)\n", n, took.Seconds(), res.RawBrokerRate)
	if res.RawBrokerRecords, err = topicGrowth(e.brokers, topic, before); err != nil {
		return err
	}
	if res.RawBrokerRecords < int64(n) {
		c.failf("topic %s holds %d new records after raw_broker, want %d", topic, res.RawBrokerRecords, n)
	}
	return nil
}

// rawDrain is what rawDBDrain did.
type rawDrain struct {
	deleted             int64
	took                time.Duration
	selecting, deleting time.Duration // parts of took
}

// rawTable is a table the raw loops drain: its name and the columns they
// read, id first.
type rawTable struct {
	name    string
	columns []string
}

// The tables of raw_db and raw_slim.
var (
	outboxRaw = rawTable{dialect.TableMessages, []string{"id", "message_id", "topic", "msg_key", "payload", "headers"}}
	slimRaw   = rawTable{slimTable, []string{"id", "topic", "msg_key", "payload", "headers"}}
)

// rawDBDrain empties table t the plain way, on one connection: SELECT the
// oldest batch rows, DELETE them by id, until nothing is left.
func rawDBDrain(ctx context.Context, db *sql.DB, t rawTable, batch int) (rawDrain, error) {
	var out rawDrain
	conn, err := db.Conn(ctx)
	if err != nil {
		return out, err
	}
	defer conn.Close()
	sel := "SELECT " + strings.Join(t.columns, ", ") + " FROM " + t.name + " ORDER BY id LIMIT " + strconv.Itoa(batch)
	var id int64
	cols := make([][]byte, len(t.columns)-1)
	dest := []any{&id}
	for i := range cols {
		dest = append(dest, &cols[i])
	}
	ids := make([]int64, 0, batch)
	var del strings.Builder
	start := time.Now()
	for {
		t0 := time.Now()
		rows, err := conn.QueryContext(ctx, sel)
		if err != nil {
			return out, err
		}
		ids = ids[:0]
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return out, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, err
		}
		t1 := time.Now()
		out.selecting += t1.Sub(t0)
		if len(ids) == 0 {
			break
		}
		// Literal ids, as the relay sends them: one round trip, no prepare.
		del.Reset()
		del.WriteString("DELETE FROM " + t.name + " WHERE id IN (")
		for i, id := range ids {
			if i > 0 {
				del.WriteByte(',')
			}
			del.WriteString(strconv.FormatInt(id, 10))
		}
		del.WriteByte(')')
		r, err := conn.ExecContext(ctx, del.String())
		if err != nil {
			return out, err
		}
		n, err := r.RowsAffected()
		if err != nil {
			return out, err
		}
		out.deleting += time.Since(t1)
		out.deleted += n
	}
	out.took = time.Since(start)
	return out, nil
}

// rawProduce produces the records of spec, shaped like the relay's (the
// keys of a load of spec, in the same order; random values; an outbox-id
// header), into spec.topic with a Sarama async producer configured exactly
// as publisher/kafka configures its own, as fast as the producer pipelines
// them, and returns the time until the last acknowledgement.
func rawProduce(ctx context.Context, brokers []string, spec loadSpec) (time.Duration, error) {
	topic, n, valueBytes := spec.topic, spec.n, spec.valueBytes
	// kafka.Config's Sarama hook receives the configuration the publisher
	// would use: capture it instead of copying the settings.
	var sc *sarama.Config
	kc := kafka.Config{Brokers: brokers, ClientID: "outbox-bench-raw", Sarama: func(c *sarama.Config) { sc = c }}
	if err := kc.Validate(); err != nil {
		return 0, err
	}
	producer, err := sarama.NewAsyncProducer(brokers, sc)
	if err != nil {
		return 0, err
	}
	defer producer.Close()

	keyBytes, pick := keyBytes(spec.keys), spec.picker()
	values := make([]byte, n*valueBytes)
	_, _ = newRand(uint64(n)).Read(values)
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = []byte(outbox.NewMessageID())
	}

	done := make(chan error, 1)
	go func() {
		var acked, failed int
		var first error
		for acked+failed < n {
			select {
			case <-producer.Successes():
				acked++
			case pe := <-producer.Errors():
				failed++
				if first == nil {
					first = pe.Err
				}
			case <-ctx.Done():
				done <- ctx.Err()
				return
			}
		}
		if first != nil {
			first = fmt.Errorf("%d of %d records failed, the first with: %w", failed, n, first)
		}
		done <- first
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		m := &sarama.ProducerMessage{
			Topic:   topic,
			Key:     sarama.ByteEncoder(keyBytes[pick.pick()]),
			Value:   sarama.ByteEncoder(values[i*valueBytes : (i+1)*valueBytes]),
			Headers: []sarama.RecordHeader{{Key: []byte(outbox.HeaderID), Value: ids[i]}},
		}
		select {
		case producer.Input() <- m:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if err := <-done; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
