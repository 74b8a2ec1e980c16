package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/ctxtime"
)

const outageAbout = `Measures a relay through a broker outage: its CPU while the broker is gone,
and how soon it publishes again once the broker is back.

A relay (in this process, default settings: outage pause 2s doubling to 60s,
a probe of the broker every 500ms) holds its shards; then kfake is taken off
the network (every connection closed, new ones closed at once, its data
kept), -n messages are committed, and for --down the process's CPU time
(getrusage: the relay, and kfake and the benchmark idling) is measured:
outage_cpu_percent_of_one_core = CPU time / --down * 100. Then kfake is put
back: resume_seconds is the time to the first publish, drain_seconds to the
last, and the topic is read back (lost, duplicates, order). With --brokers
it is a usage error: the broker must be one this process can take down.`

const outageExamples = `  go run ./cmd/outbox-bench outage --dialect postgres
  go run ./cmd/outbox-bench outage --dialect mysql --down 10s -n 5000 --keys 1`

// outageResult is the JSON line of the outage scenario.
type outageResult struct {
	header
	N               int     `json:"n"`
	Keys            int     `json:"keys"`
	KeySkew         string  `json:"key_skew"`
	DownSeconds     float64 `json:"down_seconds"`
	CPUSeconds      float64 `json:"outage_cpu_seconds"`
	CPUPercent      float64 `json:"outage_cpu_percent_of_one_core"`
	PublishedInside int64   `json:"published_during_outage"`
	Unavailable     int64   `json:"unavailable_outcomes"`
	Retried         int64   `json:"retried"`
	DeadLettered    int64   `json:"dead_lettered"`
	ResumeSeconds   float64 `json:"resume_seconds"`
	DrainSeconds    float64 `json:"drain_seconds"`
	PendingAfter    int64   `json:"pending_after"`
	deliveryCheck
	verdict
}

var outageScenario = scenario{
	name:     "outage",
	summary:  "relay CPU while the broker is gone, and time to resume once it is back",
	about:    outageAbout,
	examples: outageExamples,
	flags: func(fs *flag.FlagSet, co *commonOpts) benchmark {
		b := &outageBench{co: co, load: addLoad(fs, 1000, true)}
		fs.DurationVar(&b.down, "down", time.Minute, "how long the broker stays away")
		fs.DurationVar(&b.maxResume, "max-resume", 2*time.Second, "the run fails when the relay publishes again later than this after the broker's return")
		return b
	},
}

// outageBench is the outage scenario with its flags.
type outageBench struct {
	co              *commonOpts
	load            *loadOpts
	down, maxResume time.Duration
}

func (b *outageBench) check() error {
	if b.co.brokers != "" {
		return usagef("--brokers: the outage scenario takes its own in-process broker down; it cannot take a cluster down")
	}
	if b.down < time.Second {
		return usagef("--down %s: at least 1s, e.g. --down 60s", b.down)
	}
	return b.load.check(b.co.topic)
}

func (b *outageBench) needs() needs {
	return needs{pool: 2, topics: []string{b.co.topic}, switchable: true}
}

// run takes the broker down under a running relay, then brings it back.
func (b *outageBench) run(ctx context.Context, e *env, c *checks) (result, error) {
	res := &outageResult{header: e.header(), N: b.load.n, Keys: b.load.keys, KeySkew: b.load.skew, DownSeconds: secs(b.down)}
	relays, err := newFleet(ctx, e, 1, b.load.shards, outbox.DefaultBatchSize)
	if err != nil {
		return nil, err
	}
	defer relays.close()
	relays.start(ctx)
	if err := b.waitShards(ctx, e); err != nil {
		return nil, err
	}

	e.brokerDown(true)
	fmt.Fprintf(e.stderr, "bench: broker taken down; committing %d messages\n", b.load.n)
	if _, err := e.load(ctx, b.load.spec(b.co.topic), "load"); err != nil {
		return nil, err
	}
	rb, err := e.readbackWhileDown(ctx, b.load.n, c)
	if err != nil {
		return nil, err
	}
	stopProfile, err := e.profile()
	if err != nil {
		return nil, err
	}
	defer stopProfile()
	cpu0 := processCPU()
	if !ctxtime.Sleep(ctx, b.down) {
		return nil, ctx.Err()
	}
	used := processCPU() - cpu0
	if err := stopProfile(); err != nil {
		return nil, err
	}
	res.CPUSeconds, res.CPUPercent = secs(used), round(100*used.Seconds()/b.down.Seconds(), 3)
	st := relays[0].relay.Stats()
	res.PublishedInside, res.Unavailable = st.Published, st.Unavailable

	e.brokerDown(false)
	up := time.Now()
	for relays.published() == 0 {
		if time.Since(up) > time.Minute {
			c.failf("nothing published within a minute of the broker's return")
			break
		}
		if !ctxtime.Sleep(ctx, time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	res.ResumeSeconds = secs(time.Since(up))
	if err := waitPublished(ctx, e.stderr, int64(b.load.n), up, relays.published, c); err != nil {
		return nil, err
	}
	res.DrainSeconds = secs(time.Since(up))
	relays.stop()
	t := relays.totals()
	res.Retried, res.DeadLettered = t.retried, t.deadLettered
	p, err := rb.finish(ctx, e, false, c)
	if err != nil {
		return nil, err
	}
	res.PendingAfter, res.deliveryCheck = p.pending, p.check
	fmt.Fprintf(e.stderr, "bench: outage %s: CPU %.3fs (%.2f%% of one core); resumed %.3fs after the broker's return, drained in %.3fs\n",
		b.down, used.Seconds(), res.CPUPercent, res.ResumeSeconds, res.DrainSeconds)
	b.checkOutage(res, c)
	return res, nil
}

// waitShards waits until the relay holds every shard.
func (b *outageBench) waitShards(ctx context.Context, e *env) error {
	for start := time.Now(); ; {
		held, err := e.shardsHeld(ctx)
		if err != nil {
			return err
		}
		if held == b.load.shards {
			return nil
		}
		if time.Since(start) > time.Minute {
			return fmt.Errorf("the relay holds %d of %d shards after a minute", held, b.load.shards)
		}
		if !ctxtime.Sleep(ctx, 10*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// checkOutage records the failed checks: nothing published, retried or
// dead-lettered for the outage, the relay back within --max-resume,
// everything there.
func (b *outageBench) checkOutage(res *outageResult, c *checks) {
	if res.PublishedInside != 0 {
		c.failf("%d messages published while the broker was down", res.PublishedInside)
	}
	if res.Unavailable == 0 {
		c.failf("the relay never saw the broker unavailable")
	}
	if res.Retried != 0 || res.DeadLettered != 0 {
		c.failf("the outage cost %d retries and %d dead letters, want none", res.Retried, res.DeadLettered)
	}
	if res.ResumeSeconds > b.maxResume.Seconds() {
		c.failf("the relay published again %.3fs after the broker's return, want within %s", res.ResumeSeconds, b.maxResume)
	}
	if res.PendingAfter != 0 {
		c.failf("%d rows left in the outbox", res.PendingAfter)
	}
}

// readbackWhileDown is startReadback for a broker that is down: the topic
// was empty when the broker went away, so the read-back starts at offset 0.
func (e *env) readbackWhileDown(ctx context.Context, n int, c *checks) (*readback, error) {
	rb := &readback{topic: e.opts.topic, n: n}
	start := time.Now()
	loaded, err := readLoaded(ctx, e.db, n)
	if err != nil {
		return nil, err
	}
	if len(loaded.key) != n {
		c.failf("the outbox holds %d messages after the load, want %d", len(loaded.key), n)
	}
	rb.loaded, rb.readTook, rb.before = loaded, time.Since(start), map[int32]int64{}
	return rb, nil
}
