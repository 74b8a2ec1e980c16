package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/outboxrelay/outbox"
)

const memoryAbout = `Measures the memory of a relay process draining a large outbox.

It enqueues -n messages as the drain scenario does, then starts a relay in a
child process (this program again, with the hidden command relay-child; the
database and brokers go in OUTBOX_BENCH_* environment variables) that
publishes until -n messages are out and then reports, on its stdout, its peak
resident set size (VmHWM of /proc/self/status: Linux only, null elsewhere)
and its Go memory statistics. The child's stderr is this program's.
Afterwards the outbox must be empty and the topic must hold -n more records.

Then, outside every timing, it reads back what the child published, as the
drain scenario does: the IDs and keys of the loaded messages (read in id
order before the child starts) against the records the child added to the
topic. Every message must have arrived (lost = 0), no record may be unknown,
and in each partition the first arrivals of each key must keep the id order
(order_violations = 0); duplicates are reported, not failed on.`

const memoryExamples = `  go run ./cmd/outbox-bench memory --dialect postgres
  go run ./cmd/outbox-bench memory --dialect sqlite -n 200000 --batch-size 5000`

// memoryResult is the JSON line of the memory scenario.
type memoryResult struct {
	header
	N          int `json:"n"`
	ValueBytes int `json:"value_bytes"`
	Keys       int `json:"keys"`
	Shards     int `json:"shards"`
	BatchSize  int `json:"batch_size"`

	LoadSeconds      float64  `json:"load_seconds"`
	RelaySeconds     float64  `json:"relay_seconds"` // the child's relay start to -n published
	MsgsPerSec       float64  `json:"msgs_per_sec"`
	ChildSeconds     float64  `json:"child_seconds"` // process start to exit
	PeakRSSMiB       *float64 `json:"peak_rss_mib"`
	HeapSysMiB       float64  `json:"heap_sys_mib"`
	SysMiB           float64  `json:"sys_mib"`
	HeapInuseMiB     float64  `json:"heap_inuse_mib"`
	PeakHeapInuseMiB float64  `json:"peak_heap_inuse_mib"`
	TotalAllocMiB    float64  `json:"total_alloc_mib"`
	NumGC            uint32   `json:"num_gc"`
	Published        int64    `json:"published"`
	Batches          int64    `json:"batches"`
	TopicRecords     int64    `json:"topic_records"`
	PendingAfter     int64    `json:"pending_after"`
	deliveryCheck
	TotalSeconds float64 `json:"total_seconds"`
	verdict
}

// mib converts bytes to MiB, rounded.
func mib(b uint64) float64 { return round(float64(b)/(1<<20), 1) }

func cmdMemory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("memory", memoryAbout, memoryExamples, stderr)
	co := addCommon(fs)
	var n, valueBytes, keys, shards, batchSize int
	addLoadFlags(fs, &n, 1_000_000, &valueBytes, &keys, &shards)
	fs.IntVar(&batchSize, "batch-size", 0, "relay batch size (0: the relay's default, 1000)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := co.check(); err != nil {
		return err
	}
	if err := checkLoadFlags(n, valueBytes, keys, shards, co.topic); err != nil {
		return err
	}
	if batchSize < 0 || batchSize > 100_000 {
		return usagef("--batch-size must be between 0 (default) and 100000; got %d", batchSize)
	}
	batch := batchSize
	if batch == 0 {
		batch = outbox.DefaultBatchSize
	}

	start := time.Now()
	e, err := setup(ctx, co, stderr, 2, co.topic)
	if err != nil {
		return err
	}
	defer e.close()
	res := memoryResult{header: e.header("memory"), N: n, ValueBytes: valueBytes, Keys: keys, Shards: shards, BatchSize: batch}
	var c checks
	took, err := e.load(ctx, loadSpec{topic: co.topic, n: n, valueBytes: valueBytes, keys: keys, numShards: shards}, "load")
	if err != nil {
		return err
	}
	res.LoadSeconds = secs(took)
	checkStart := time.Now()
	loaded, err := readLoaded(ctx, e.db, n)
	if err != nil {
		return err
	}
	if len(loaded.key) != n {
		c.failf("the outbox holds %d messages after the load, want %d", len(loaded.key), n)
	}
	readTook := time.Since(checkStart)
	before, err := endOffsets(e.brokers, co.topic)
	if err != nil {
		return err
	}

	childStart := time.Now()
	child, err := startChild(e, modeDrain, int64(n), shards, batch)
	if err != nil {
		return fmt.Errorf("starting the relay child: %w", err)
	}
	defer child.kill()
	if _, err := child.next(ctx, "ready", time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: memory: relay child %d started\n", child.Pid())
	// The child stops on its own once n messages are out; the wait is
	// bounded only by the run's context (and a generous guard).
	done, err := child.next(ctx, "done", 30*time.Minute)
	if err != nil {
		return err
	}
	if err := child.wait(30 * time.Second); err != nil {
		c.failf("relay child: %v", err)
	}
	res.ChildSeconds = secs(time.Since(childStart))
	res.RelaySeconds, res.MsgsPerSec = done.Seconds, rate(done.Published, time.Duration(done.Seconds*float64(time.Second)))
	if done.VmHWMKiB != nil {
		v := round(float64(*done.VmHWMKiB)/1024, 1)
		res.PeakRSSMiB = &v
	}
	res.HeapSysMiB, res.SysMiB, res.HeapInuseMiB = mib(done.HeapSys), mib(done.Sys), mib(done.HeapInuse)
	res.PeakHeapInuseMiB, res.TotalAllocMiB, res.NumGC = mib(done.PeakHeapInuse), mib(done.TotalAlloc), done.NumGC
	res.Published, res.Batches = done.Published, done.Batches
	after, err := endOffsets(e.brokers, co.topic)
	if err != nil {
		return err
	}
	res.TopicRecords = sumOffsets(after) - sumOffsets(before)
	if res.PendingAfter, err = e.pending(ctx); err != nil {
		return err
	}
	checkStart = time.Now()
	if res.deliveryCheck, err = checkDelivery(ctx, e.brokers, co.topic, before, after, loaded, stderr); err != nil {
		return err
	}
	res.deliveryCheck.Seconds = secs(readTook + time.Since(checkStart))
	d := res.deliveryCheck
	fmt.Fprintf(stderr, "bench: check: %d records read back in %.2fs: lost %d, duplicates %d, unknown %d, order violations %d, split keys %d\n",
		d.Read, d.Seconds, d.Lost, d.Duplicates, d.Unknown, d.OrderViolations, d.SplitKeys)
	failDelivery(&c, d, co.topic, false)
	peak := "n/a"
	if res.PeakRSSMiB != nil {
		peak = fmt.Sprintf("%.1f MiB", *res.PeakRSSMiB)
	}
	fmt.Fprintf(stderr, "bench: memory: %d published in %.2fs (%.0f msg/s), peak RSS %s, heap in use at most %.1f MiB\n",
		done.Published, done.Seconds, res.MsgsPerSec, peak, res.PeakHeapInuseMiB)
	if done.Error != "" {
		c.failf("relay child: %s", done.Error)
	}
	if done.Published < int64(n) {
		c.failf("the child published %d, want %d", done.Published, n)
	}
	if res.TopicRecords < int64(n) {
		c.failf("topic %s holds %d new records, want at least %d", co.topic, res.TopicRecords, n)
	}
	if res.PendingAfter != 0 {
		c.failf("%d rows left in the outbox", res.PendingAfter)
	}
	if done.DeadLettered != 0 {
		c.failf("%d messages dead-lettered", done.DeadLettered)
	}
	res.TotalSeconds = secs(time.Since(start))
	res.verdict = c.verdict()
	if err := emit(stdout, res); err != nil {
		return err
	}
	return c.err()
}
