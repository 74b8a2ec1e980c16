//go:build unix

package chaos

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// relayBinary builds cmd/relay once per test binary (without -race: the
// relays are the system under test, the race detector watches the suite).
func relayBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("OUTBOX_CHAOS_RELAY_BIN"); p != "" {
		t.Logf("relay binary %s (%s)", p, vcsInfo(p, false))
		return p
	}
	buildOnce.Do(func() {
		// go test puts its own toolchain first in PATH.
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "relay-chaos-"); buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "relay")
		start := time.Now()
		out, err := exec.Command(goTool, "build", "-o", buildPath, "github.com/outboxrelay/outbox/cmd/relay").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		t.Logf("built cmd/relay in %s (%s)", time.Since(start).Round(time.Millisecond), vcsInfo(buildPath, true))
	})
	if buildErr != nil {
		t.Fatalf("building the relay: %v", buildErr)
	}
	return buildPath
}

// relayProc is one relay process: one incarnation of a slot.
type relayProc struct {
	slot, id, logPath string
	cmd               *exec.Cmd
	done              chan struct{} // closed when the process has exited
	expected          atomic.Bool   // we signalled it to end (SIGKILL or SIGTERM)
	stopped           atomic.Bool   // SIGSTOPped and not continued yet
	reported          atomic.Bool   // an unexpected exit was reported
}

func (p *relayProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the exit status (-1 when killed by a signal or running).
func (p *relayProc) exitCode() int {
	if !p.exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *relayProc) signal(s syscall.Signal) error {
	if p.exited() {
		return nil
	}
	return p.cmd.Process.Signal(s)
}

// wait waits up to timeout for the process to exit.
func (p *relayProc) wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// tail returns the last n lines of the process's log.
func (p *relayProc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.logPath, err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// relays runs the relay processes of a harness, by slot (relay-1, ...).
type relays struct {
	h       *harness
	mu      sync.Mutex
	current map[string]*relayProc
	gens    map[string]int
	all     []*relayProc
	env     []string
}

func newRelays(h *harness) *relays {
	rs := &relays{h: h, current: map[string]*relayProc{}, gens: map[string]int{}}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTBOX_") {
			rs.env = append(rs.env, kv)
		}
	}
	rs.env = append(rs.env,
		"OUTBOX_DATABASE_URL="+h.dbURL,
		"OUTBOX_KAFKA_BROKERS="+h.broker.addr(),
	)
	return rs
}

// start starts a new incarnation of slot. A failure to start fails the test.
func (rs *relays) start(slot string) *relayProc {
	h := rs.h
	rs.mu.Lock()
	rs.gens[slot]++
	id := fmt.Sprintf("%s-%s.%d", h.name, slot, rs.gens[slot])
	rs.mu.Unlock()
	p := &relayProc{slot: slot, id: id, logPath: filepath.Join(h.dir, id+".log"), done: make(chan struct{})}
	f, err := os.Create(p.logPath)
	if err != nil {
		h.t.Errorf("%s: %v", id, err)
		return nil
	}
	defer f.Close() // the child has its own descriptor
	p.cmd = exec.Command(h.bin, relayArgs(id, h.limits.lease)...)
	p.cmd.Env = rs.env
	p.cmd.Stdout = f
	p.cmd.Stderr = f
	setDeathSignal(p.cmd)
	if err := p.cmd.Start(); err != nil {
		h.t.Errorf("%s: start: %v", id, err)
		return nil
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	rs.mu.Lock()
	rs.current[slot] = p
	rs.all = append(rs.all, p)
	rs.mu.Unlock()
	return p
}

func (rs *relays) get(slot string) *relayProc {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.current[slot]
}

// running is the number of relays running now.
func (rs *relays) running() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	n := 0
	for _, p := range rs.current {
		if !p.exited() {
			n++
		}
	}
	return n
}

// remove forgets slot (a relay that left for good).
func (rs *relays) remove(slot string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.current, slot)
}

// revive reports relays that exited without being told to, and starts
// their slots again so that the run goes on.
func (rs *relays) revive() {
	rs.mu.Lock()
	var dead []*relayProc
	for _, p := range rs.current {
		if p.exited() && !p.expected.Load() {
			dead = append(dead, p)
		}
	}
	rs.mu.Unlock()
	for _, p := range dead {
		if !p.reported.CompareAndSwap(false, true) {
			continue // another goroutine is on it
		}
		rs.h.t.Errorf("%s exited by itself with status %d (%s); log tail:\n%s", p.id, p.exitCode(), p.cmd.ProcessState, p.tail(30))
		if np := rs.start(p.slot); np != nil {
			rs.h.logf("%s restarted as %s after an unexpected exit", p.slot, np.id)
		}
	}
}

// stopAll sends SIGTERM to every current relay and checks that each exits
// 0 within the shutdown timeout plus slack.
func (rs *relays) stopAll() {
	rs.revive()
	rs.mu.Lock()
	var ps []*relayProc
	for _, p := range rs.current {
		ps = append(ps, p)
	}
	rs.current = map[string]*relayProc{}
	rs.mu.Unlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].id < ps[j].id })
	for _, p := range ps {
		p.expected.Store(true)
		if err := p.signal(syscall.SIGTERM); err != nil {
			rs.h.t.Errorf("%s: SIGTERM: %v", p.id, err)
		}
	}
	var codes []string
	for _, p := range ps {
		rs.checkTerm(p)
		codes = append(codes, fmt.Sprintf("%s: status %d, published %d", p.id, p.exitCode(), p.published()))
	}
	rs.h.logf("relays stopped with SIGTERM: %s", strings.Join(codes, "; "))
}

// checkTerm waits for a relay sent SIGTERM and checks it exits 0 in time.
func (rs *relays) checkTerm(p *relayProc) time.Duration {
	start := time.Now()
	if !p.wait(shutdownTimeout + 15*time.Second) {
		rs.h.t.Errorf("%s did not exit within %s of SIGTERM; log tail:\n%s", p.id, shutdownTimeout+15*time.Second, p.tail(30))
		_ = p.signal(syscall.SIGKILL)
		p.wait(10 * time.Second)
		return time.Since(start)
	}
	if code := p.exitCode(); code != 0 {
		rs.h.t.Errorf("%s exited with status %d after SIGTERM, want 0; log tail:\n%s", p.id, code, p.tail(30))
	}
	return time.Since(start)
}

// cleanup kills whatever still runs (continuing stopped processes first)
// and, when the test failed, prints the tail of every relay's log.
func (rs *relays) cleanup() {
	rs.mu.Lock()
	all := append([]*relayProc(nil), rs.all...)
	rs.mu.Unlock()
	for _, p := range all {
		if !p.exited() {
			p.expected.Store(true)
			if p.stopped.Load() {
				rs.h.t.Logf("%s is stopped (SIGSTOP): continuing it before SIGKILL", p.id)
			}
			_ = p.signal(syscall.SIGCONT)
			_ = p.signal(syscall.SIGKILL)
		}
	}
	for _, p := range all {
		if !p.wait(10 * time.Second) {
			rs.h.t.Errorf("%s (pid %d) still running 10s after SIGKILL", p.id, p.cmd.Process.Pid)
		}
	}
	if rs.h.t.Failed() {
		for _, p := range all {
			rs.h.t.Logf("--- %s (%s) log tail:\n%s", p.id, p.cmd.ProcessState, p.tail(40))
		}
	}
}

var (
	levelRE = regexp.MustCompile(`\blevel=(WARN|ERROR)\b`)
	msgRE   = regexp.MustCompile(`\bmsg=("(?:[^"\\]|\\.)*"|\S+)`)
)

// logSummary counts the warnings and errors of every relay's log by message.
func (rs *relays) logSummary() string {
	rs.mu.Lock()
	all := append([]*relayProc(nil), rs.all...)
	rs.mu.Unlock()
	counts := map[string]int{}
	for _, p := range all {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			lv := levelRE.FindStringSubmatch(line)
			if lv == nil {
				continue
			}
			msg := line
			if m := msgRE.FindStringSubmatch(line); m != nil {
				msg = strings.Trim(m[1], `"`)
			}
			counts[lv[1]+" "+msg]++
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%dx %s", counts[k], k))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}

var publishedRE = regexp.MustCompile(`msg="outbox relay stopped".*\bpublished=(\d+)`)

// published returns what the relay logged it published when it stopped,
// or -1.
func (p *relayProc) published() int {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return -1
	}
	m := publishedRE.FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// vcsInfo says which commit a binary was built from, and whether the tree
// had uncommitted changes: a failure then names the code it ran. builtHere
// means the binary was just built from this tree, so git can tell when the
// binary has no stamp.
func vcsInfo(path string, builtHere bool) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "no build info: " + err.Error()
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" && !builtHere {
		return "no VCS stamp"
	}
	if rev == "" {
		// GOFLAGS=-buildvcs=false: ask git about the tree.
		head, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
		if err != nil {
			return "no VCS stamp"
		}
		changed, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", "../..", ":(exclude).").Output()
		rev, modified = strings.TrimSpace(string(head)), strconv.FormatBool(len(bytes.TrimSpace(changed)) > 0)
		return fmt.Sprintf("tree at commit %s, uncommitted changes outside test/chaos: %s", rev, modified)
	}
	return fmt.Sprintf("commit %.12s, uncommitted changes: %s", rev, modified)
}
