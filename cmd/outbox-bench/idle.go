package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/ctxtime"
)

const idleAbout = `Measures the CPU an idle relay uses.

With an empty outbox it starts a relay in a child process (as the memory
scenario does, but in a mode that does not stop when the outbox is empty),
lets it settle for --settle, then reads the child's utime+stime from
/proc/<pid>/stat (clock ticks of 1/100 s) at the start and at the end of
--duration: cpu_percent_of_one_core = CPU time / wall time * 100. Linux only;
null elsewhere. On PostgreSQL the child listens for NOTIFY wake-ups as
cmd/relay does; elsewhere it polls (every 250ms when idle).`

const idleExamples = `  go run ./cmd/outbox-bench idle --dialect postgres
  go run ./cmd/outbox-bench idle --dialect mysql --duration 60s`

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// idleResult is the JSON line of the idle scenario.
type idleResult struct {
	header
	DurationSeconds float64 `json:"duration_seconds"`
	SettleSeconds   float64 `json:"settle_seconds"`
	Shards          int     `json:"shards"`
	Wake            string  `json:"wake"`

	CPUPercent    *float64 `json:"cpu_percent_of_one_core"`
	CPUSeconds    *float64 `json:"cpu_seconds"`
	WindowSeconds float64  `json:"window_seconds"`
	ShardsHeld    int      `json:"shards_held"`
	Published     int64    `json:"published"`
	Batches       int64    `json:"batches"` // non-empty reads: 0 when idle
	PeakRSSMiB    *float64 `json:"peak_rss_mib"`
	verdict
}

var idleScenario = scenario{
	name:     "idle",
	summary:  "CPU use of an idle relay process",
	about:    idleAbout,
	examples: idleExamples,
	flags: func(fs *flag.FlagSet, co *commonOpts) benchmark {
		b := &idleBench{co: co}
		fs.DurationVar(&b.duration, "duration", 20*time.Second, "measured time")
		fs.DurationVar(&b.settle, "settle", 2*time.Second, "time the relay runs before the measurement")
		fs.IntVar(&b.shards, "shards", outbox.DefaultNumShards, "outbox shards")
		return b
	},
}

// idleBench is the idle scenario with its flags.
type idleBench struct {
	co               *commonOpts
	duration, settle time.Duration
	shards           int
}

func (b *idleBench) check() error {
	return firstError(checkPositive("--duration", b.duration), checkNotNegative("--settle", b.settle),
		checkBetween("--shards", b.shards, 1, outbox.MaxNumShards))
}

func (b *idleBench) needs() needs { return needs{pool: 1, topics: []string{b.co.topic}} }

// run starts an idle relay child, lets it settle and measures its CPU.
func (b *idleBench) run(ctx context.Context, e *env, c *checks) (result, error) {
	res := &idleResult{header: e.header(), DurationSeconds: b.duration.Seconds(), SettleSeconds: b.settle.Seconds(),
		Shards: b.shards, Wake: e.wake()}
	child, err := startChild(e, modeIdle, 0, b.shards, 0)
	if err != nil {
		return nil, fmt.Errorf("starting the relay child: %w", err)
	}
	defer child.kill()
	if _, err := child.next(ctx, "ready", time.Minute); err != nil {
		return nil, err
	}
	// The settling starts once the relay holds its shards: on a loaded
	// machine its start alone can take longer than --settle.
	if err := waitShardsHeld(ctx, e, b.shards, time.Minute); err != nil {
		return nil, err
	}
	fmt.Fprintf(e.stderr, "bench: idle: relay child %d started; settling %s, then measuring %s\n", child.Pid(), b.settle, b.duration)
	if !ctxtime.Sleep(ctx, b.settle) {
		return nil, ctx.Err()
	}
	w, err := measureCPU(ctx, child.Pid(), b.duration)
	if err != nil {
		return nil, err
	}
	// Whether the relay still holds its shards, asked of the database
	// before it is stopped: the relay's own count is cleared by its
	// shutdown, which races with its last report.
	heldAtEnd, heldErr := e.shardsHeld(ctx)
	done, err := stopChild(ctx, child, c)
	if err != nil {
		return nil, err
	}
	w.report(e.stderr, res, c)
	res.ShardsHeld, res.Published, res.Batches = heldAtEnd, done.Published, done.Batches
	res.PeakRSSMiB = done.peakRSSMiB()
	if heldErr != nil || heldAtEnd != b.shards {
		c.failf("the relay held %d of %d shards at the end of the window (%v): it was not running normally", heldAtEnd, b.shards, heldErr)
	}
	if done.Published != 0 {
		c.failf("the idle relay published %d messages", done.Published)
	}
	return res, nil
}

// stopChild stops the child (SIGTERM) and returns its final report.
func stopChild(ctx context.Context, child *childProc, c *checks) (childReport, error) {
	if err := child.terminate(); err != nil {
		return childReport{}, fmt.Errorf("stopping the relay child: %w", err)
	}
	done, err := child.next(ctx, "done", 30*time.Second)
	if err != nil {
		return childReport{}, err
	}
	if err := child.wait(30 * time.Second); err != nil {
		c.failf("relay child: %v", err)
	}
	return done, nil
}

// cpuWindow is the CPU time of a process read at both ends of a window.
type cpuWindow struct {
	t0, t1     int64 // clock ticks
	w0, w1     time.Time
	err0, err1 error
}

// measureCPU reads the CPU time of pid now and after d.
func measureCPU(ctx context.Context, pid int, d time.Duration) (cpuWindow, error) {
	var w cpuWindow
	w.t0, w.w0, w.err0 = cpuTicks(pid)
	if !ctxtime.Sleep(ctx, d) {
		return w, ctx.Err()
	}
	w.t1, w.w1, w.err1 = cpuTicks(pid)
	return w, nil
}

// report fills the CPU figures of res, or records why they are missing.
func (w cpuWindow) report(stderr io.Writer, res *idleResult, c *checks) {
	res.WindowSeconds = secs(w.w1.Sub(w.w0))
	switch {
	case w.err0 == nil && w.err1 == nil:
		cpu := float64(w.t1-w.t0) / clockTicks
		pct := round(cpu/w.w1.Sub(w.w0).Seconds()*100, 3)
		cpu = round(cpu, 2)
		res.CPUSeconds, res.CPUPercent = &cpu, &pct
		fmt.Fprintf(stderr, "bench: idle: %.2fs of CPU in %.1fs: %.2f%% of one core\n", cpu, w.w1.Sub(w.w0).Seconds(), pct)
	case errors.Is(w.err0, errNoProc):
		fmt.Fprintf(stderr, "bench: idle: no /proc here: CPU not measured\n")
	default:
		c.failf("reading the child's CPU time: %v", errors.Join(w.err0, w.err1))
	}
}

// errNoProc is returned where /proc/<pid>/stat does not exist.
var errNoProc = errors.New("no /proc")

// cpuTicks returns utime+stime of process pid, in clock ticks, and when it
// read them.
func cpuTicks(pid int) (int64, time.Time, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	now := time.Now()
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat("/proc/self/stat"); serr != nil {
			return 0, now, errNoProc
		}
	}
	if err != nil {
		return 0, now, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields from the last ')'. Field 3 (state) is the first after it,
	// so utime (14) and stime (15) are the 12th and 13th.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, now, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, now, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, now, fmt.Errorf("unexpected /proc/%d/stat: %w", pid, err)
	}
	return utime + stime, now, nil
}

// waitShardsHeld waits until n shards have an owner.
func waitShardsHeld(ctx context.Context, e *env, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		held, err := e.shardsHeld(ctx)
		if err == nil && held >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the relay child holds %d of %d shards after %s (last error: %v)", held, n, timeout, err)
		}
		if !ctxtime.Sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}
