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

  load        enqueue -n messages (transactions of 1000, keys key-<i%keys>,
              random values), then VACUUM ANALYZE / ANALYZE TABLE / ANALYZE
  raw_db      on one connection, with no broker: SELECT ... ORDER BY id LIMIT
              <batch> and DELETE ... WHERE id IN (...) until the table is empty
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
              shape (outbox-id header) into <topic>.raw, pipelined

relay_over_raw_db and relay_over_raw_broker are the relay's rate divided by
each floor's. relay_publish_seconds is the time the relays spent inside
Publish (the broker side); the rest of relay_seconds is the database side
(reading and deleting) and the relay's own work.`

const drainExamples = `  go run ./cmd/outbox-bench drain --dialect postgres
  go run ./cmd/outbox-bench drain --dialect mysql -n 100000 --relays 2
  go run ./cmd/outbox-bench drain --dialect sqlite --batch-size 500`

// drainResult is the JSON line of the drain scenario.
type drainResult struct {
	header
	N              int `json:"n"`
	ValueBytes     int `json:"value_bytes"`
	Keys           int `json:"keys"`
	Relays         int `json:"relays"`
	BatchSize      int `json:"batch_size"`
	Shards         int `json:"shards"`
	RawDBBatchSize int `json:"raw_db_batch_size"`

	LoadSeconds      float64 `json:"load_seconds"`
	RawDBSeconds     float64 `json:"raw_db_seconds"`
	RawDBMsgsPerSec  float64 `json:"raw_db_msgs_per_sec"`
	RawDBDeleted     int64   `json:"raw_db_deleted"`
	RawDBSelectSecs  float64 `json:"raw_db_select_seconds"` // of raw_db_seconds: the SELECTs
	RawDBDeleteSecs  float64 `json:"raw_db_delete_seconds"` // and the DELETEs
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
	RelayOverRawBrk  float64 `json:"relay_over_raw_broker"`
	TotalSeconds     float64 `json:"total_seconds"`
	verdict
}

// drainOpts are the flags of the drain scenario.
type drainOpts struct {
	*commonOpts
	n, valueBytes, keys, relays, batchSize, shards int
}

// addLoadFlags registers the flags that shape a load.
func addLoadFlags(fs *flag.FlagSet, n *int, defN int, valueBytes, keys, shards *int) {
	fs.IntVar(n, "n", defN, "messages to enqueue")
	fs.IntVar(valueBytes, "value-bytes", 256, "bytes of each message value")
	fs.IntVar(keys, "keys", 1000, "distinct message keys (key-<i%keys>)")
	fs.IntVar(shards, "shards", outbox.DefaultNumShards, "outbox shards (outbox.Config.NumShards = RelayConfig.NumShards)")
}

// checkLoadFlags validates the load flags.
func checkLoadFlags(n, valueBytes, keys, shards int, topic string) error {
	switch {
	case n < 1:
		return usagef("-n must be at least 1; got %d", n)
	case keys < 1:
		return usagef("--keys must be at least 1; got %d", keys)
	case valueBytes < 0:
		return usagef("--value-bytes cannot be negative; got %d", valueBytes)
	case shards < 1 || shards > outbox.MaxNumShards:
		return usagef("--shards must be between 1 and %d; got %d", outbox.MaxNumShards, shards)
	}
	m := outbox.Message{Topic: topic, Key: []byte("key-" + strconv.Itoa(keys)), Value: make([]byte, valueBytes)}
	if err := outbox.Validate(0, m); err != nil {
		return usagef("--value-bytes %d: %v", valueBytes, err)
	}
	return nil
}

func cmdDrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("drain", drainAbout, drainExamples, stderr)
	o := drainOpts{commonOpts: addCommon(fs)}
	addLoadFlags(fs, &o.n, 200_000, &o.valueBytes, &o.keys, &o.shards)
	fs.IntVar(&o.relays, "relays", 1, "relays draining side by side, in this process")
	fs.IntVar(&o.batchSize, "batch-size", 0, "relay batch size; also the raw_db loop's LIMIT (0: the relay's default, 1000)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	if err := checkLoadFlags(o.n, o.valueBytes, o.keys, o.shards, o.topic); err != nil {
		return err
	}
	if o.relays < 1 {
		return usagef("--relays must be at least 1; got %d", o.relays)
	}
	if o.batchSize < 0 || o.batchSize > 100_000 {
		return usagef("--batch-size must be between 0 (default) and 100000; got %d", o.batchSize)
	}
	batch := o.batchSize
	if batch == 0 {
		batch = outbox.DefaultBatchSize
	}
	rawTopic := o.topic + ".raw"

	start := time.Now()
	e, err := setup(ctx, o.commonOpts, stderr, 2, o.topic, rawTopic)
	if err != nil {
		return err
	}
	defer e.close()
	res := drainResult{header: e.header("drain"), N: o.n, ValueBytes: o.valueBytes, Keys: o.keys,
		Relays: o.relays, BatchSize: batch, Shards: o.shards, RawDBBatchSize: batch}
	var c checks
	spec := loadSpec{topic: o.topic, n: o.n, valueBytes: o.valueBytes, keys: o.keys, numShards: o.shards}

	// (a) load, (b) raw_db
	took, err := e.load(ctx, spec, "load")
	if err != nil {
		return err
	}
	res.LoadSeconds = secs(took)
	raw, err := rawDBDrain(ctx, e.db, batch)
	if err != nil {
		return fmt.Errorf("raw_db: %w", err)
	}
	deleted, took := raw.deleted, raw.took
	res.RawDBDeleted, res.RawDBSeconds, res.RawDBMsgsPerSec = deleted, secs(took), rate(deleted, took)
	res.RawDBSelectSecs, res.RawDBDeleteSecs = secs(raw.selecting), secs(raw.deleting)
	fmt.Fprintf(stderr, "bench: raw_db: %d rows read and deleted in %.2fs (%.0f msg/s; %.2fs in SELECT, %.2fs in DELETE)\n",
		deleted, took.Seconds(), res.RawDBMsgsPerSec, raw.selecting.Seconds(), raw.deleting.Seconds())
	if deleted != int64(o.n) {
		c.failf("raw_db deleted %d rows, want %d", deleted, o.n)
	}

	// (c) reload, (d) relay
	if took, err = e.load(ctx, spec, "reload"); err != nil {
		return err
	}
	res.ReloadSeconds = secs(took)
	checkStart := time.Now()
	loaded, err := readLoaded(ctx, e.db, o.n)
	if err != nil {
		return err
	}
	if len(loaded.key) != o.n {
		c.failf("the outbox holds %d messages after the reload, want %d", len(loaded.key), o.n)
	}
	readTook := time.Since(checkStart)
	if err := drainWithRelays(ctx, e, o, batch, loaded, readTook, &res, &c); err != nil {
		return err
	}

	// (e) raw_broker
	before, err := endOffsets(e.brokers, rawTopic)
	if err != nil {
		return err
	}
	took, err = rawBroker(ctx, e.brokers, rawTopic, o.n, o.valueBytes, o.keys)
	if err != nil {
		return fmt.Errorf("raw_broker: %w", err)
	}
	res.RawBrokerSeconds, res.RawBrokerRate = secs(took), rate(int64(o.n), took)
	fmt.Fprintf(stderr, "bench: raw_broker: %d records acknowledged in %.2fs (%.0f msg/s)\n", o.n, took.Seconds(), res.RawBrokerRate)
	if res.RawBrokerRecords, err = topicGrowth(e.brokers, rawTopic, before); err != nil {
		return err
	}
	if res.RawBrokerRecords < int64(o.n) {
		c.failf("topic %s holds %d new records after raw_broker, want %d", rawTopic, res.RawBrokerRecords, o.n)
	}

	res.RelayOverRawDB = ratio(res.RelayMsgsPerSec, res.RawDBMsgsPerSec)
	res.RelayOverRawBrk = ratio(res.RelayMsgsPerSec, res.RawBrokerRate)
	res.TotalSeconds = secs(time.Since(start))
	res.verdict = c.verdict()
	if err := emit(stdout, res); err != nil {
		return err
	}
	return c.err()
}

// drainWithRelays runs the relay phase: o.relays relays drain the loaded
// outbox; it fills the relay figures of res and checks the topic and the
// table, and reads the topic back against loaded (readTook is the time
// spent reading loaded, for check_seconds).
func drainWithRelays(ctx context.Context, e *env, o drainOpts, batch int, loaded *loadedMessages, readTook time.Duration, res *drainResult, c *checks) error {
	rigs := make([]*relayRig, 0, o.relays)
	defer func() {
		for _, r := range rigs {
			r.close()
		}
	}()
	for i := 0; i < o.relays; i++ {
		r, err := newRelayRig(ctx, relaySettings{driver: e.driver, dsn: e.dsn, dialect: e.dialect, brokers: e.brokers,
			id: "bench-relay-" + strconv.Itoa(i), numShards: o.shards, batchSize: batch}, e.log)
		if err != nil {
			return fmt.Errorf("relay %d: %w", i, err)
		}
		rigs = append(rigs, r)
	}
	before, err := endOffsets(e.brokers, o.topic)
	if err != nil {
		return err
	}
	published := func() (n int64) {
		for _, r := range rigs {
			n += r.relay.Stats().Published
		}
		return n
	}
	stopProfile, err := startProfile(o.cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	start := time.Now()
	for _, r := range rigs {
		r.start(ctx)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	lastReport, lastProgress, last := start, start, int64(0)
	for {
		n := published()
		if n >= int64(o.n) {
			break
		}
		now := time.Now()
		if n != last {
			last, lastProgress = n, now
		}
		if now.Sub(lastProgress) > time.Minute {
			c.failf("relay stalled: %d of %d published, nothing for a minute", n, o.n)
			break
		}
		if now.Sub(lastReport) >= 5*time.Second {
			fmt.Fprintf(e.stderr, "bench: relay: %d/%d published (%.0f msg/s)\n", n, o.n, float64(n)/now.Sub(start).Seconds())
			lastReport = now
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	took := time.Since(start)
	if err := stopProfile(); err != nil {
		return err
	}
	for _, r := range rigs {
		r.stop()
	}
	var publishTime time.Duration
	for _, r := range rigs {
		s := r.relay.Stats()
		res.RelayPublished += s.Published
		res.RelayBatches += s.Batches
		res.RelayDeadLetters += s.DeadLettered
		res.RelayRetried += s.Retried
		t, calls := r.timed.spent()
		publishTime += t
		res.RelayPublishCall += calls
	}
	res.RelaySeconds, res.RelayMsgsPerSec = secs(took), rate(int64(o.n), took)
	res.RelayPublishSecs = secs(publishTime)
	fmt.Fprintf(e.stderr, "bench: relay: %d published in %.2fs (%.0f msg/s), %d batches, %.2fs in Publish\n",
		res.RelayPublished, took.Seconds(), res.RelayMsgsPerSec, res.RelayBatches, publishTime.Seconds())
	after, err := endOffsets(e.brokers, o.topic)
	if err != nil {
		return err
	}
	res.RelayTopicGrowth = sumOffsets(after) - sumOffsets(before)
	if res.PendingAfter, err = e.pending(ctx); err != nil {
		return err
	}
	checkStart := time.Now()
	if res.deliveryCheck, err = checkDelivery(ctx, e.brokers, o.topic, before, after, loaded, e.stderr); err != nil {
		return err
	}
	res.deliveryCheck.Seconds = secs(readTook + time.Since(checkStart))
	d := res.deliveryCheck
	fmt.Fprintf(e.stderr, "bench: check: %d records read back in %.2fs: lost %d, duplicates %d, unknown %d, order violations %d, split keys %d\n",
		d.Read, d.Seconds, d.Lost, d.Duplicates, d.Unknown, d.OrderViolations, d.SplitKeys)
	failDelivery(c, d, o.topic, true)
	if res.RelayPublished < int64(o.n) {
		c.failf("relays published %d, want %d", res.RelayPublished, o.n)
	}
	if res.RelayTopicGrowth < int64(o.n) {
		c.failf("topic %s holds %d new records after the relay phase, want at least %d", o.topic, res.RelayTopicGrowth, o.n)
	}
	if res.PendingAfter != 0 {
		c.failf("%d rows left in the outbox after the relay phase", res.PendingAfter)
	}
	if res.RelayDeadLetters != 0 {
		c.failf("%d messages dead-lettered", res.RelayDeadLetters)
	}
	return nil
}

// rawDrain is what rawDBDrain did.
type rawDrain struct {
	deleted             int64
	took                time.Duration
	selecting, deleting time.Duration // parts of took
}

// rawDBDrain empties the outbox the plain way, on one connection: SELECT
// the oldest batch rows, DELETE them by id, until nothing is left.
func rawDBDrain(ctx context.Context, db *sql.DB, batch int) (rawDrain, error) {
	var out rawDrain
	conn, err := db.Conn(ctx)
	if err != nil {
		return out, err
	}
	defer conn.Close()
	sel := "SELECT id, message_id, topic, msg_key, payload, headers FROM " + dialect.TableMessages +
		" ORDER BY id LIMIT " + strconv.Itoa(batch)
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
			var (
				id                    int64
				messageID, topic      string
				key, payload, headers []byte
			)
			if err := rows.Scan(&id, &messageID, &topic, &key, &payload, &headers); err != nil {
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
		del.WriteString("DELETE FROM " + dialect.TableMessages + " WHERE id IN (")
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

// rawBroker produces n records shaped like the relay's (keys key-<i%keys>,
// random values, an outbox-id header) into topic with a Sarama async
// producer configured exactly as publisher/kafka configures its own, as fast
// as the producer pipelines them, and returns the time until the last
// acknowledgement.
func rawBroker(ctx context.Context, brokers []string, topic string, n, valueBytes, keys int) (time.Duration, error) {
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

	keyBytes := make([][]byte, keys)
	for i := range keyBytes {
		keyBytes[i] = []byte("key-" + strconv.Itoa(i))
	}
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
			Key:     sarama.ByteEncoder(keyBytes[i%keys]),
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
