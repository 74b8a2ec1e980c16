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

	"github.com/outboxrelay/outbox/internal/proctest"
)

// relayBin is cmd/relay, built once per test binary.
var relayBin = &proctest.Binary{Package: "github.com/outboxrelay/outbox/cmd/relay"}

func TestMain(m *testing.M) { proctest.Main(m, relayBin) }

// relayBinary returns the relay binary under test: OUTBOX_CHAOS_RELAY_BIN,
// or cmd/relay built from this tree (without -race: the relays are the
// system under test, the race detector watches the suite).
func relayBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("OUTBOX_CHAOS_RELAY_BIN"); p != "" {
		t.Logf("relay binary %s (%s)", p, vcsInfo(p, false))
		return p
	}
	start := time.Now()
	p := relayBin.Path(t)
	t.Logf("relay binary ready in %s (%s)", time.Since(start).Round(time.Millisecond), vcsInfo(p, true))
	return p
}

// relayProc is one relay process: one incarnation of a slot.
type relayProc struct {
	*proctest.Proc
	slot, id, logPath string
	expected          atomic.Bool // we signalled it to end (SIGKILL or SIGTERM)
	stopped           atomic.Bool // SIGSTOPped and not continued yet
	reported          atomic.Bool // an unexpected exit was reported
}

// tail returns the last n lines of the process's log.
func (p *relayProc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.logPath, err)
	}
	return proctest.Tail(b, n)
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
	return &relays{h: h, current: map[string]*relayProc{}, gens: map[string]int{},
		env: proctest.Env("OUTBOX_", "OUTBOX_DATABASE_URL="+h.dbURL, "OUTBOX_KAFKA_BROKERS="+h.broker.addr())}
}

// start starts a new incarnation of slot. A failure to start fails the test.
func (rs *relays) start(slot string) *relayProc {
	h := rs.h
	rs.mu.Lock()
	rs.gens[slot]++
	id := fmt.Sprintf("%s-%s.%d", h.name, slot, rs.gens[slot])
	rs.mu.Unlock()
	p := &relayProc{slot: slot, id: id, logPath: filepath.Join(h.dir, id+".log")}
	f, err := os.Create(p.logPath)
	if err != nil {
		h.t.Errorf("%s: %v", id, err)
		return nil
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(h.bin, relayArgs(id, h.limits.lease)...)
	cmd.Env = rs.env
	cmd.Stdout = f
	cmd.Stderr = f
	if p.Proc, err = proctest.Start(cmd); err != nil {
		h.t.Errorf("%s: start: %v", id, err)
		return nil
	}
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
		if !p.Exited() {
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
		if p.Exited() && !p.expected.Load() {
			dead = append(dead, p)
		}
	}
	rs.mu.Unlock()
	for _, p := range dead {
		if !p.reported.CompareAndSwap(false, true) {
			continue // another goroutine is on it
		}
		rs.h.t.Errorf("%s exited by itself with status %d (%s); log tail:\n%s", p.id, p.ExitCode(), p.Cmd.ProcessState, p.tail(30))
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
		if err := p.Signal(syscall.SIGTERM); err != nil {
			rs.h.t.Errorf("%s: SIGTERM: %v", p.id, err)
		}
	}
	var codes []string
	for _, p := range ps {
		rs.checkTerm(p)
		codes = append(codes, fmt.Sprintf("%s: status %d, published %d", p.id, p.ExitCode(), p.published()))
	}
	rs.h.logf("relays stopped with SIGTERM: %s", strings.Join(codes, "; "))
}

// checkTerm waits for a relay sent SIGTERM and checks it exits 0 in time.
func (rs *relays) checkTerm(p *relayProc) time.Duration {
	start := time.Now()
	if !p.Wait(shutdownTimeout + 15*time.Second) {
		rs.h.t.Errorf("%s did not exit within %s of SIGTERM; log tail:\n%s", p.id, shutdownTimeout+15*time.Second, p.tail(30))
		_ = p.Signal(syscall.SIGKILL)
		p.Wait(10 * time.Second)
		return time.Since(start)
	}
	if code := p.ExitCode(); code != 0 {
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
		if !p.Exited() {
			p.expected.Store(true)
			if p.stopped.Load() {
				rs.h.t.Logf("%s is stopped (SIGSTOP): continuing it before SIGKILL", p.id)
			}
			_ = p.Signal(syscall.SIGCONT)
			_ = p.Signal(syscall.SIGKILL)
		}
	}
	for _, p := range all {
		if !p.Wait(10 * time.Second) {
			rs.h.t.Errorf("%s (pid %d) still running 10s after SIGKILL", p.id, p.Cmd.Process.Pid)
		}
	}
	if rs.h.t.Failed() {
		for _, p := range all {
			rs.h.t.Logf("--- %s (%s) log tail:\n%s", p.id, p.Cmd.ProcessState, p.tail(40))
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
