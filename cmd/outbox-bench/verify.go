package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
)

// ---------------------------------------------------------------------------
// Checking what the relay delivered against what was loaded

// loadedMessages is a loaded outbox as the relay must deliver it: every
// message's ID and key, in id order (the order the relay must keep among
// the messages of one key). It is read from the table before the relay
// runs.
type loadedMessages struct {
	index map[string]int32 // message ID -> position in id order
	key   []int32          // position -> key number
	keys  int              // distinct keys
}

// readLoaded reads the IDs and keys of the messages in the outbox table, in
// id order; n is the expected count (a capacity hint). The IDs are kept in
// one string, the map's keys are substrings of it: no allocation per row
// beyond the map's own.
func readLoaded(ctx context.Context, db *sql.DB, n int) (*loadedMessages, error) {
	rows, err := db.QueryContext(ctx, "SELECT message_id, msg_key FROM "+dialect.TableMessages+" ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("reading the loaded messages: %w", err)
	}
	defer rows.Close()
	buf := make([]byte, 0, n*36) // the library's IDs are 36 bytes
	ends := make([]int, 0, n)
	key := make([]int32, 0, n)
	keyNum := map[string]int32{}
	var id, k sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&id, &k); err != nil {
			return nil, fmt.Errorf("reading the loaded messages: %w", err)
		}
		buf = append(buf, id...)
		ends = append(ends, len(buf))
		num, ok := keyNum[string(k)]
		if !ok {
			num = int32(len(keyNum))
			keyNum[string(k)] = num
		}
		key = append(key, num)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the loaded messages: %w", err)
	}
	if len(ends) > math.MaxInt32 {
		return nil, fmt.Errorf("%d loaded messages: too many to check", len(ends))
	}
	all := string(buf)
	l := &loadedMessages{index: make(map[string]int32, len(ends)), key: key, keys: len(keyNum)}
	from := 0
	for i, end := range ends {
		l.index[all[from:end]] = int32(i) // message_id is unique
		from = end
	}
	return l, nil
}

// deliveryCheck is the read-back of the relay's topic, compared with the
// loaded messages.
type deliveryCheck struct {
	// Records is how many records the topic gained during the relay phase
	// and Read how many of them were read back.
	Records int64 `json:"readback_records"`
	Read    int64 `json:"-"`
	// Lost counts loaded messages that never arrived; Duplicates the
	// arrivals of a message beyond its first; Unknown the records whose
	// outbox-id header is missing or names no loaded message.
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	Unknown    int64 `json:"unknown"`
	// OrderViolations counts first arrivals that come, in their partition,
	// after the first arrival of a message of the same key loaded later.
	OrderViolations int64 `json:"order_violations"`
	// SplitKeys counts keys whose messages arrived on more than one
	// partition (their order is then lost to consumers).
	SplitKeys int64 `json:"split_keys"`
	// Seconds is the time the check took: reading the loaded IDs back from
	// the table and the topic back from the broker (outside every timing).
	Seconds float64 `json:"check_seconds"`
}

// readBackStall is how long the read-back may go without a record before
// it gives up (the records not read count as lost).
const readBackStall = 30 * time.Second

// checkDelivery reads topic from the offsets from up to the offsets to
// (the end offsets before and after the relay phase) and compares the
// records with the loaded messages, by their outbox-id header.
func checkDelivery(ctx context.Context, brokers []string, topic string, from, to map[int32]int64, l *loadedMessages, stderr io.Writer) (deliveryCheck, error) {
	rs, err := newReadState(topic, from, to, l)
	if err != nil || rs.remaining == 0 {
		return rs.finish(), err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("outbox-bench-readback"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: rs.offsets}),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return rs.d, fmt.Errorf("read-back consumer: %w", err)
	}
	defer cl.Close()
	lastProgress := time.Now()
	for rs.remaining > 0 {
		if time.Since(lastProgress) > readBackStall {
			fmt.Fprintf(stderr, "bench: read-back: no record for %s, %d of %d read: giving up\n", readBackStall, rs.d.Read, rs.d.Records)
			break
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return rs.d, ctx.Err()
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(stderr, "bench: read-back: %s/%d: %v\n", t, p, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if rs.add(r) {
				lastProgress = time.Now()
			}
		})
	}
	return rs.finish(), nil
}

// readState is the progress of a read-back: where each partition is, and
// what has arrived so far. Partitions get slots 0..P-1.
type readState struct {
	l         *loadedMessages
	d         deliveryCheck
	slotOf    []int   // partition number -> slot (-1: not read)
	next      []int64 // slot -> next offset to read
	ends      []int64 // slot -> end offset (exclusive)
	offsets   map[int32]kgo.Offset
	remaining int    // partitions not read to their end
	seen      []bool // position -> arrived
	// lastPos[key*P+slot] is the latest position (id order) of a first
	// arrival of key on the partition of slot; keySlot the first partition a
	// key arrived on (-1: none yet, -2: split, counted).
	lastPos []int32
	keySlot []int32
}

// newReadState prepares the read-back of topic from the offsets from to
// the offsets to.
func newReadState(topic string, from, to map[int32]int64, l *loadedMessages) (*readState, error) {
	parts := make([]int32, 0, len(to))
	for p := range to {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	rs := &readState{l: l, ends: make([]int64, len(parts)), next: make([]int64, len(parts)),
		offsets: make(map[int32]kgo.Offset, len(parts)), seen: make([]bool, len(l.key)),
		lastPos: make([]int32, l.keys*len(parts)), keySlot: make([]int32, l.keys)}
	for s, p := range parts {
		if p < 0 {
			return rs, fmt.Errorf("partition %d of %s", p, topic)
		}
		for int(p) >= len(rs.slotOf) {
			rs.slotOf = append(rs.slotOf, -1)
		}
		rs.slotOf[p] = s
		rs.next[s], rs.ends[s] = from[p], to[p]
		rs.d.Records += max(0, rs.ends[s]-rs.next[s])
		if rs.ends[s] > rs.next[s] {
			rs.offsets[p] = kgo.NewOffset().At(rs.next[s])
			rs.remaining++
		}
	}
	for i := range rs.lastPos {
		rs.lastPos[i] = -1
	}
	for i := range rs.keySlot {
		rs.keySlot[i] = -1
	}
	return rs, nil
}

// add takes one record; it reports whether the record was in the range
// read back.
func (rs *readState) add(r *kgo.Record) bool {
	if r.Partition < 0 || int(r.Partition) >= len(rs.slotOf) || rs.slotOf[r.Partition] < 0 {
		return false
	}
	s := rs.slotOf[r.Partition]
	if r.Offset < rs.next[s] || r.Offset >= rs.ends[s] {
		return false // before or after the relay phase (a shared topic)
	}
	rs.next[s] = r.Offset + 1
	if rs.next[s] >= rs.ends[s] {
		rs.remaining--
	}
	rs.d.Read++
	var id []byte
	found := false
	for _, h := range r.Headers {
		if h.Key == outbox.HeaderID {
			id, found = h.Value, true
			break
		}
	}
	pos, ok := rs.l.index[string(id)]
	switch {
	case !found || !ok:
		rs.d.Unknown++
	case rs.seen[pos]:
		rs.d.Duplicates++
	default:
		rs.seen[pos] = true
		rs.arrived(pos, s)
	}
	return true
}

// arrived checks the first arrival of the message at pos on the partition
// of slot s against the earlier arrivals of its key.
func (rs *readState) arrived(pos int32, s int) {
	k := rs.l.key[pos]
	switch ks := rs.keySlot[k]; {
	case ks == -1:
		rs.keySlot[k] = int32(s)
	case ks >= 0 && int(ks) != s:
		rs.keySlot[k] = -2
		rs.d.SplitKeys++
	}
	i := int(k)*len(rs.next) + s
	if pos < rs.lastPos[i] {
		rs.d.OrderViolations++
	} else {
		rs.lastPos[i] = pos
	}
}

// finish counts the loaded messages that never arrived and returns the
// result.
func (rs *readState) finish() deliveryCheck {
	for _, ok := range rs.seen {
		if !ok {
			rs.d.Lost++
		}
	}
	return rs.d
}

// failDelivery records the failed checks of d; duplicates fail only when
// strict.
func failDelivery(c *checks, d deliveryCheck, topic string, strict bool) {
	if d.Read < d.Records {
		c.failf("read back %d of the %d records the relay phase added to %s", d.Read, d.Records, topic)
	}
	if d.Lost > 0 {
		c.failf("%d loaded messages never arrived on %s", d.Lost, topic)
	}
	if d.Unknown > 0 {
		c.failf("%d records on %s carry no loaded message's ID", d.Unknown, topic)
	}
	if d.OrderViolations > 0 {
		c.failf("%d messages arrived after a later message of the same key", d.OrderViolations)
	}
	if d.SplitKeys > 0 {
		c.failf("the messages of %d keys arrived on more than one partition", d.SplitKeys)
	}
	if strict && d.Duplicates > 0 {
		c.failf("%d messages arrived more than once", d.Duplicates)
	}
}

// ---------------------------------------------------------------------------
// The read-back around a publishing phase

// readback checks one phase that publishes a loaded outbox (the relays of
// drain, the child of memory): before it, the loaded messages and the end
// offsets of the topic; after it, the topic against them.
type readback struct {
	topic    string
	n        int
	loaded   *loadedMessages
	readTook time.Duration // reading loaded, for check_seconds
	before   map[int32]int64
}

// published is what a publishing phase left: the records the topic
// gained, the rows left in the outbox, and the read-back.
type published struct {
	records, pending int64
	check            deliveryCheck
}

// startReadback reads the n loaded messages (failing a check when the
// outbox holds another count after what, "the load") and the end offsets of
// e's topic.
func (e *env) startReadback(ctx context.Context, n int, what string, c *checks) (*readback, error) {
	rb, err := e.readbackOfLoaded(ctx, n, what, c)
	if err != nil {
		return nil, err
	}
	if rb.before, err = endOffsets(e.brokers, rb.topic); err != nil {
		return nil, err
	}
	return rb, nil
}

// readbackOfLoaded is a read-back of the n loaded messages that starts at
// the topic's first offsets (rb.before empty): startReadback moves it to
// the current end.
func (e *env) readbackOfLoaded(ctx context.Context, n int, what string, c *checks) (*readback, error) {
	rb := &readback{topic: e.opts.topic, n: n, before: map[int32]int64{}}
	start := time.Now()
	loaded, err := readLoaded(ctx, e.db, n)
	if err != nil {
		return nil, err
	}
	if len(loaded.key) != n {
		c.failf("the outbox holds %d messages after %s, want %d", len(loaded.key), what, n)
	}
	rb.loaded, rb.readTook = loaded, time.Since(start)
	return rb, nil
}

// finish reads what the phase published: the topic's growth, the rows
// left, and the records read back against the loaded messages; it records
// the failed delivery checks (duplicates only when strict).
func (rb *readback) finish(ctx context.Context, e *env, strict bool, c *checks) (published, error) {
	var p published
	after, err := endOffsets(e.brokers, rb.topic)
	if err != nil {
		return p, err
	}
	p.records = sumOffsets(after) - sumOffsets(rb.before)
	if p.pending, err = e.pending(ctx); err != nil {
		return p, err
	}
	start := time.Now()
	if p.check, err = checkDelivery(ctx, e.brokers, rb.topic, rb.before, after, rb.loaded, e.stderr); err != nil {
		return p, err
	}
	p.check.Seconds = secs(rb.readTook + time.Since(start))
	d := p.check
	fmt.Fprintf(e.stderr, "bench: check: %d records read back in %.2fs: lost %d, duplicates %d, unknown %d, order violations %d, split keys %d\n",
		d.Read, d.Seconds, d.Lost, d.Duplicates, d.Unknown, d.OrderViolations, d.SplitKeys)
	failDelivery(c, d, rb.topic, strict)
	return p, nil
}
