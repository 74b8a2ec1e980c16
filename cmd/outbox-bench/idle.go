package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
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

func cmdIdle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("idle", idleAbout, idleExamples, stderr)
	co := addCommon(fs)
	duration := fs.Duration("duration", 20*time.Second, "measured time")
	settle := fs.Duration("settle", 2*time.Second, "time the relay runs before the measurement")
	shards := fs.Int("shards", outbox.DefaultNumShards, "outbox shards")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := co.check(); err != nil {
		return err
	}
	switch {
	case *duration <= 0:
		return usagef("--duration must be positive; got %s", *duration)
	case *settle < 0:
		return usagef("--settle cannot be negative; got %s", *settle)
	case *shards < 1 || *shards > outbox.MaxNumShards:
		return usagef("--shards must be between 1 and %d; got %d", outbox.MaxNumShards, *shards)
	}

	e, err := setup(ctx, co, stderr, 1, co.topic)
	if err != nil {
		return err
	}
	defer e.close()
	res := idleResult{header: e.header("idle"), DurationSeconds: duration.Seconds(), SettleSeconds: settle.Seconds(),
		Shards: *shards, Wake: "poll"}
	if e.dialect.SupportsNotify() {
		res.Wake = "pqnotify"
	}
	var c checks

	child, err := startChild(e, modeIdle, 0, *shards, 0)
	if err != nil {
		return fmt.Errorf("starting the relay child: %w", err)
	}
	defer child.kill()
	if _, err := child.next(ctx, "ready", time.Minute); err != nil {
		return err
	}
	// The settling starts once the relay holds its shards: on a loaded
	// machine its start alone can take longer than --settle.
	if err := waitShardsHeld(ctx, e, *shards, time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: idle: relay child %d started; settling %s, then measuring %s\n", child.Pid(), *settle, *duration)
	if !sleepCtx(ctx, *settle) {
		return ctx.Err()
	}
	t0, w0, err0 := cpuTicks(child.Pid())
	if !sleepCtx(ctx, *duration) {
		return ctx.Err()
	}
	t1, w1, err1 := cpuTicks(child.Pid())
	// Whether the relay still holds its shards, asked of the database
	// before it is stopped: the relay's own count is cleared by its
	// shutdown, which races with its last report.
	heldAtEnd, heldErr := shardsHeld(ctx, e)
	if err := child.terminate(); err != nil {
		return fmt.Errorf("stopping the relay child: %w", err)
	}
	done, err := child.next(ctx, "done", 30*time.Second)
	if err != nil {
		return err
	}
	if err := child.wait(30 * time.Second); err != nil {
		c.failf("relay child: %v", err)
	}
	res.WindowSeconds = secs(w1.Sub(w0))
	switch {
	case err0 == nil && err1 == nil:
		cpu := float64(t1-t0) / clockTicks
		pct := round(cpu/w1.Sub(w0).Seconds()*100, 3)
		cpu = round(cpu, 2)
		res.CPUSeconds, res.CPUPercent = &cpu, &pct
		fmt.Fprintf(stderr, "bench: idle: %.2fs of CPU in %.1fs: %.2f%% of one core\n", cpu, w1.Sub(w0).Seconds(), pct)
	case errors.Is(err0, errNoProc):
		fmt.Fprintf(stderr, "bench: idle: no /proc here: CPU not measured\n")
	default:
		c.failf("reading the child's CPU time: %v", errors.Join(err0, err1))
	}
	res.ShardsHeld, res.Published, res.Batches = heldAtEnd, done.Published, done.Batches
	if done.VmHWMKiB != nil {
		v := round(float64(*done.VmHWMKiB)/1024, 1)
		res.PeakRSSMiB = &v
	}
	if heldErr != nil || heldAtEnd != *shards {
		c.failf("the relay held %d of %d shards at the end of the window (%v): it was not running normally", heldAtEnd, *shards, heldErr)
	}
	if done.Published != 0 {
		c.failf("the idle relay published %d messages", done.Published)
	}
	res.verdict = c.verdict()
	if err := emit(stdout, res); err != nil {
		return err
	}
	return c.err()
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

// sleepCtx waits d or until ctx ends; it reports whether the full wait
// passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// shardsHeld counts the shards that have an owner.
func shardsHeld(ctx context.Context, e *env) (int, error) {
	var held int
	err := e.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+dialect.TableShards+" WHERE owner IS NOT NULL").Scan(&held)
	return held, err
}

// waitShardsHeld waits until n shards have an owner.
func waitShardsHeld(ctx context.Context, e *env, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		held, err := shardsHeld(ctx, e)
		if err == nil && held >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the relay child holds %d of %d shards after %s (last error: %v)", held, n, timeout, err)
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}
