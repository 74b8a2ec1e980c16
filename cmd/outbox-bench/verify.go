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
	var d deliveryCheck
	// Partitions get slots 0..P-1; slotOf is indexed by partition number.
	parts := make([]int32, 0, len(to))
	for p := range to {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	slotOf := make([]int, 0)
	ends := make([]int64, len(parts))
	next := make([]int64, len(parts))
	offsets := make(map[int32]kgo.Offset, len(parts))
	remaining := 0
	for s, p := range parts {
		if p < 0 {
			return d, fmt.Errorf("partition %d of %s", p, topic)
		}
		for int(p) >= len(slotOf) {
			slotOf = append(slotOf, -1)
		}
		slotOf[p] = s
		next[s], ends[s] = from[p], to[p]
		d.Records += max(0, ends[s]-next[s])
		if ends[s] > next[s] {
			offsets[p] = kgo.NewOffset().At(next[s])
			remaining++
		}
	}
	seen := make([]bool, len(l.key))
	// lastPos[key*P+slot] is the latest position (id order) of a first
	// arrival of key on the partition of slot; keySlot the first partition a
	// key arrived on (-1: none yet, -2: split, counted).
	lastPos := make([]int32, l.keys*len(parts))
	for i := range lastPos {
		lastPos[i] = -1
	}
	keySlot := make([]int32, l.keys)
	for i := range keySlot {
		keySlot[i] = -1
	}
	if remaining > 0 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("outbox-bench-readback"),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
			kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20), kgo.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			return d, fmt.Errorf("read-back consumer: %w", err)
		}
		defer cl.Close()
		lastProgress := time.Now()
		for remaining > 0 {
			if time.Since(lastProgress) > readBackStall {
				fmt.Fprintf(stderr, "bench: read-back: no record for %s, %d of %d read: giving up\n", readBackStall, d.Read, d.Records)
				break
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			fetches := cl.PollFetches(pctx)
			cancel()
			if ctx.Err() != nil {
				return d, ctx.Err()
			}
			fetches.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					fmt.Fprintf(stderr, "bench: read-back: %s/%d: %v\n", t, p, err)
				}
			})
			fetches.EachRecord(func(r *kgo.Record) {
				if r.Partition < 0 || int(r.Partition) >= len(slotOf) || slotOf[r.Partition] < 0 {
					return
				}
				s := slotOf[r.Partition]
				if r.Offset < next[s] || r.Offset >= ends[s] {
					return // before or after the relay phase (a shared topic)
				}
				next[s] = r.Offset + 1
				if next[s] >= ends[s] {
					remaining--
				}
				d.Read++
				lastProgress = time.Now()
				var id []byte
				found := false
				for _, h := range r.Headers {
					if h.Key == outbox.HeaderID {
						id, found = h.Value, true
						break
					}
				}
				pos, ok := l.index[string(id)]
				if !found || !ok {
					d.Unknown++
					return
				}
				if seen[pos] {
					d.Duplicates++
					return
				}
				seen[pos] = true
				k := l.key[pos]
				switch ks := keySlot[k]; {
				case ks == -1:
					keySlot[k] = int32(s)
				case ks >= 0 && int(ks) != s:
					keySlot[k] = -2
					d.SplitKeys++
				}
				i := int(k)*len(parts) + s
				if pos < lastPos[i] {
					d.OrderViolations++
				} else {
					lastPos[i] = pos
				}
			})
		}
	}
	for _, ok := range seen {
		if !ok {
			d.Lost++
		}
	}
	return d, nil
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
