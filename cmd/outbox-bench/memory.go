package main

import (
	"context"
	"flag"
	"fmt"
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
	N           int     `json:"n"`
	ValueBytes  int     `json:"value_bytes"`
	Keys        int     `json:"keys"`
	KeySkew     string  `json:"key_skew"`
	BrokerRTTMs float64 `json:"broker_rtt_ms"` // --broker-rtt (kfake only)
	Shards      int     `json:"shards"`
	BatchSize   int     `json:"batch_size"`

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

var memoryScenario = scenario{
	name:     "memory",
	summary:  "peak RSS of a relay process draining a large outbox",
	about:    memoryAbout,
	examples: memoryExamples,
	flags: func(fs *flag.FlagSet, co *commonOpts) benchmark {
		addBrokerRTT(fs, co)
		b := &memoryBench{co: co, load: addLoad(fs, 1_000_000, true)}
		fs.IntVar(&b.batchSize, "batch-size", 0, "relay batch size (0: the relay's default, 1000)")
		return b
	},
}

// memoryBench is the memory scenario with its flags.
type memoryBench struct {
	co        *commonOpts
	load      *loadOpts
	batchSize int
}

func (b *memoryBench) check() error {
	return firstError(b.load.check(b.co.topic), checkBatchSize(b.batchSize))
}

func (b *memoryBench) needs() needs { return needs{pool: 2, topics: []string{b.co.topic}} }

// run loads the outbox, lets a relay child drain it, and reads the topic
// back.
func (b *memoryBench) run(ctx context.Context, e *env, c *checks) (result, error) {
	n, batch := b.load.n, b.batchSize
	if batch == 0 {
		batch = outbox.DefaultBatchSize
	}
	res := &memoryResult{header: e.header(), N: n, ValueBytes: b.load.valueBytes, Keys: b.load.keys,
		KeySkew: b.load.skew, BrokerRTTMs: e.brokerRTTMs(), Shards: b.load.shards, BatchSize: batch}
	took, err := e.load(ctx, b.load.spec(b.co.topic), "load")
	if err != nil {
		return nil, err
	}
	res.LoadSeconds = secs(took)
	rb, err := e.startReadback(ctx, n, "the load", c)
	if err != nil {
		return nil, err
	}
	childStart := time.Now()
	done, err := drainInChild(ctx, e, int64(n), b.load.shards, batch, c)
	if err != nil {
		return nil, err
	}
	res.ChildSeconds = secs(time.Since(childStart))
	res.setChild(done)
	p, err := rb.finish(ctx, e, false, c)
	if err != nil {
		return nil, err
	}
	res.TopicRecords, res.PendingAfter, res.deliveryCheck = p.records, p.pending, p.check
	peak := "n/a"
	if res.PeakRSSMiB != nil {
		peak = fmt.Sprintf("%.1f MiB", *res.PeakRSSMiB)
	}
	fmt.Fprintf(e.stderr, "bench: memory: %d published in %.2fs (%.0f msg/s), peak RSS %s, heap in use at most %.1f MiB\n",
		done.Published, done.Seconds, res.MsgsPerSec, peak, res.PeakHeapInuseMiB)
	b.checkChild(done, res, c)
	res.TotalSeconds = e.elapsed()
	return res, nil
}

// drainInChild runs a relay child until it has published n messages and
// returns its final report.
func drainInChild(ctx context.Context, e *env, n int64, shards, batch int, c *checks) (childReport, error) {
	child, err := startChild(e, modeDrain, n, shards, batch)
	if err != nil {
		return childReport{}, fmt.Errorf("starting the relay child: %w", err)
	}
	defer child.kill()
	if _, err := child.next(ctx, "ready", time.Minute); err != nil {
		return childReport{}, err
	}
	fmt.Fprintf(e.stderr, "bench: memory: relay child %d started\n", child.Pid())
	// The child stops on its own once n messages are out; the wait is
	// bounded only by the run's context (and a generous guard).
	done, err := child.next(ctx, "done", 30*time.Minute)
	if err != nil {
		return childReport{}, err
	}
	if err := child.wait(30 * time.Second); err != nil {
		c.failf("relay child: %v", err)
	}
	return done, nil
}

// setChild fills the figures of the child's final report.
func (res *memoryResult) setChild(done childReport) {
	res.RelaySeconds, res.MsgsPerSec = done.Seconds, rate(done.Published, time.Duration(done.Seconds*float64(time.Second)))
	res.PeakRSSMiB = done.peakRSSMiB()
	res.HeapSysMiB, res.SysMiB, res.HeapInuseMiB = mib(done.HeapSys), mib(done.Sys), mib(done.HeapInuse)
	res.PeakHeapInuseMiB, res.TotalAllocMiB, res.NumGC = mib(done.PeakHeapInuse), mib(done.TotalAlloc), done.NumGC
	res.Published, res.Batches = done.Published, done.Batches
}

// checkChild records the failed checks of the child's run.
func (b *memoryBench) checkChild(done childReport, res *memoryResult, c *checks) {
	n := int64(b.load.n)
	if done.Error != "" {
		c.failf("relay child: %s", done.Error)
	}
	if done.Published < n {
		c.failf("the child published %d, want %d", done.Published, n)
	}
	if res.TopicRecords < n {
		c.failf("topic %s holds %d new records, want at least %d", b.co.topic, res.TopicRecords, n)
	}
	if res.PendingAfter != 0 {
		c.failf("%d rows left in the outbox", res.PendingAfter)
	}
	if done.DeadLettered != 0 {
		c.failf("%d messages dead-lettered", done.DeadLettered)
	}
}
