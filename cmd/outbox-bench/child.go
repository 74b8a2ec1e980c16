package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// childCommand is the hidden command that runs a relay for the memory and
// idle scenarios, in a process of its own so that its memory and CPU can be
// measured apart from the benchmark's.
const childCommand = "relay-child"

// Environment of the child. The DSN, which may hold a password, never goes
// on the command line.
const (
	childEnv          = "OUTBOX_BENCH_CHILD" // "1" in a child
	childEnvDialect   = "OUTBOX_BENCH_DIALECT"
	childEnvDSN       = "OUTBOX_BENCH_DSN"
	childEnvBrokers   = "OUTBOX_BENCH_BROKERS"
	childEnvMode      = "OUTBOX_BENCH_MODE" // drain or idle
	childEnvN         = "OUTBOX_BENCH_N"
	childEnvShards    = "OUTBOX_BENCH_SHARDS"
	childEnvBatchSize = "OUTBOX_BENCH_BATCH_SIZE"
	childEnvProfile   = "OUTBOX_BENCH_CPUPROFILE" // optional: CPU profile file
)

// Modes of the child.
const (
	modeDrain = "drain" // stop once N messages are published
	modeIdle  = "idle"  // run until SIGTERM
)

// childReport is a JSON line the child writes on its stdout: one with
// Event "ready" when its relay starts, one with Event "done" at the end.
type childReport struct {
	Event string `json:"event"`
	Pid   int    `json:"pid"`
	// The rest is set in "done" only.
	Published    int64   `json:"published"`
	Batches      int64   `json:"batches"`
	DeadLettered int64   `json:"dead_lettered"`
	ShardsHeld   int     `json:"shards_held"`
	Seconds      float64 `json:"seconds"` // relay start to N published (drain) or to SIGTERM (idle)
	// PeakRSSKiB is the peak resident set size (VmHWM) from /proc/self/status; null
	// off Linux.
	PeakRSSKiB    *int64 `json:"vm_hwm_kib"`
	HeapSys       uint64 `json:"heap_sys"`
	Sys           uint64 `json:"sys"`
	HeapInuse     uint64 `json:"heap_inuse"`
	PeakHeapInuse uint64 `json:"peak_heap_inuse"` // sampled every 500ms
	TotalAlloc    uint64 `json:"total_alloc"`
	NumGC         uint32 `json:"num_gc"`
	Error         string `json:"error,omitempty"`
}

// childConfig is the child's settings, from its environment.
type childConfig struct {
	name, dsn, mode string
	brokers         []string
	n               int64
	shards, batch   int
}

// childConfigFromEnv reads the child's settings; args must be empty.
func childConfigFromEnv(args []string) (childConfig, error) {
	if os.Getenv(childEnv) != "1" || len(args) > 0 {
		return childConfig{}, usagef("%s is internal: the memory and idle scenarios run it", childCommand)
	}
	cfg := childConfig{name: os.Getenv(childEnvDialect), dsn: os.Getenv(childEnvDSN), mode: os.Getenv(childEnvMode),
		brokers: strings.Split(os.Getenv(childEnvBrokers), ",")}
	cfg.n, _ = strconv.ParseInt(os.Getenv(childEnvN), 10, 64)
	cfg.shards, _ = strconv.Atoi(os.Getenv(childEnvShards))
	cfg.batch, _ = strconv.Atoi(os.Getenv(childEnvBatchSize))
	switch {
	case cfg.name != "postgres" && cfg.name != "mysql" && cfg.name != "sqlite", cfg.dsn == "", cfg.brokers[0] == "":
		return cfg, usagef("%s: %s, %s and %s must be set", childCommand, childEnvDialect, childEnvDSN, childEnvBrokers)
	case cfg.mode != modeDrain && cfg.mode != modeIdle:
		return cfg, usagef("%s: %s must be %s or %s", childCommand, childEnvMode, modeDrain, modeIdle)
	case cfg.mode == modeDrain && cfg.n < 1:
		return cfg, usagef("%s: %s must be positive in mode %s", childCommand, childEnvN, modeDrain)
	}
	return cfg, nil
}

// cmdChild is the relay child: it runs a relay until N messages are out
// (drain) or until SIGTERM (idle), and reports on its stdout.
func cmdChild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := childConfigFromEnv(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rig, err := newRelayRig(ctx, relaySettings{driver: cfg.name, dsn: cfg.dsn, dialect: dbtest.Dialect(dialect.Name(cfg.name)), brokers: cfg.brokers,
		id: "bench-relay-child", numShards: cfg.shards, batchSize: cfg.batch}, log)
	if err != nil {
		return err
	}
	defer rig.close()
	stopProfile, err := startProfile(os.Getenv(childEnvProfile))
	if err != nil {
		return err
	}
	defer stopProfile()
	if err := emit(stdout, childReport{Event: "ready", Pid: os.Getpid()}); err != nil {
		return err
	}
	start := time.Now()
	rig.start(ctx)
	peakHeap := cfg.watch(ctx, rig, start, stderr)
	took := time.Since(start)
	st := rig.relay.Stats()
	rig.close()
	if err := stopProfile(); err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep := childReport{Event: "done", Pid: os.Getpid(), Published: st.Published, Batches: st.Batches,
		DeadLettered: st.DeadLettered, ShardsHeld: st.Shards, Seconds: secs(took), PeakRSSKiB: vmHWM(),
		HeapSys: ms.HeapSys, Sys: ms.Sys, HeapInuse: ms.HeapInuse, PeakHeapInuse: max(peakHeap, ms.HeapInuse),
		TotalAlloc: ms.TotalAlloc, NumGC: ms.NumGC}
	if cfg.mode == modeDrain && st.Published < cfg.n {
		rep.Error = fmt.Sprintf("stopped after %d of %d messages", st.Published, cfg.n)
	}
	if err := emit(stdout, rep); err != nil {
		return err
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	return nil
}

// watch waits until the relay has published N messages (drain) or ctx
// ends, sampling the heap every 500ms; it returns the peak heap in use.
func (cfg childConfig) watch(ctx context.Context, rig *relayRig, start time.Time, stderr io.Writer) (peakHeap uint64) {
	var ms runtime.MemStats
	// Idle mode measures the relay's own CPU: no ticker of ours wakes the
	// process (a nil channel never fires).
	var tickC <-chan time.Time
	if cfg.mode == modeDrain {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		tickC = tick.C
	}
	lastSample, lastReport := start, start
	for {
		select {
		case <-ctx.Done():
			return peakHeap
		case now := <-tickC:
			st := rig.relay.Stats()
			if now.Sub(lastSample) >= 500*time.Millisecond {
				runtime.ReadMemStats(&ms)
				peakHeap = max(peakHeap, ms.HeapInuse)
				lastSample = now
			}
			if st.Published >= cfg.n {
				return peakHeap
			}
			if now.Sub(lastReport) >= 5*time.Second {
				fmt.Fprintf(stderr, "bench: relay-child: %d/%d published (%.0f msg/s)\n", st.Published, cfg.n, float64(st.Published)/now.Sub(start).Seconds())
				lastReport = now
			}
		}
	}
}

// peakRSSMiB returns PeakRSSKiB in MiB, rounded, or nil.
func (r childReport) peakRSSMiB() *float64 {
	if r.PeakRSSKiB == nil {
		return nil
	}
	v := round(float64(*r.PeakRSSKiB)/1024, 1)
	return &v
}

// vmHWM returns the peak resident set size of this process in KiB, or nil
// where /proc/self/status does not tell it.
func vmHWM() *int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return &v
				}
			}
		}
	}
	return nil
}

// childProc is a running relay child.
type childProc struct {
	cmd     *exec.Cmd
	reports chan childReport
	exited  chan struct{} // closed once the child has exited and been reaped
	exitErr error         // cmd.Wait's error, set before exited closes
}

// startChild starts a relay child on e's database and brokers. It runs the
// benchmark's own executable (or the test binary, whose TestMain
// dispatches the child command) with the child's settings in its
// environment, its stderr going to e.stderr and its stdout read as reports.
func startChild(e *env, mode string, n int64, shards, batchSize int) (*childProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	profile := e.opts.cpuprofile
	if profile != "" {
		if profile, err = filepath.Abs(profile); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(exe, childCommand)
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		childEnvDialect+"="+e.name,
		childEnvDSN+"="+e.dsn,
		childEnvBrokers+"="+strings.Join(e.brokers, ","),
		childEnvMode+"="+mode,
		childEnvN+"="+strconv.FormatInt(n, 10),
		childEnvShards+"="+strconv.Itoa(shards),
		childEnvBatchSize+"="+strconv.Itoa(batchSize),
		childEnvProfile+"="+profile,
	)
	cmd.Stderr = e.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// The child writes two reports; the buffer takes them all, so the
	// reader never blocks and always reaps the child.
	c := &childProc{cmd: cmd, reports: make(chan childReport, 16), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var r childReport
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil || len(c.reports) == cap(c.reports) {
				fmt.Fprintf(e.stderr, "bench: relay-child wrote %q on stdout\n", sc.Text())
				continue
			}
			c.reports <- r
		}
		close(c.reports)
		c.exitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// Pid is the child's process id.
func (c *childProc) Pid() int { return c.cmd.Process.Pid }

// next returns the child's next report, or an error when the child exits
// first, ctx ends or timeout passes.
func (c *childProc) next(ctx context.Context, event string, timeout time.Duration) (childReport, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r, ok := <-c.reports:
		if !ok {
			return r, fmt.Errorf("relay child exited before its %q report", event)
		}
		if r.Event != event {
			return r, fmt.Errorf("relay child reported %q, expected %q", r.Event, event)
		}
		return r, nil
	case <-ctx.Done():
		return childReport{}, ctx.Err()
	case <-t.C:
		return childReport{}, fmt.Errorf("no %q report from the relay child within %s", event, timeout)
	}
}

// terminate asks the child to stop (SIGTERM).
func (c *childProc) terminate() error { return c.cmd.Process.Signal(syscall.SIGTERM) }

// wait waits for the child to exit, killing it after timeout.
func (c *childProc) wait(timeout time.Duration) error {
	select {
	case <-c.exited:
		return c.exitErr
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("relay child did not exit within %s: killed", timeout)
	}
}

// kill ends the child at once, if it still runs, and reaps it. Every
// scenario that starts a child defers it.
func (c *childProc) kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
}
