// Package proctest runs programs of this module as child processes for
// end-to-end tests: it builds a command once per test binary, starts it
// with a clean environment, and watches, signals and waits for it. The
// daemon's end-to-end tests (cmd/relay) and the fault-injection suite
// (test/chaos) share it.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary builds a package's command once, on first use, into a temporary
// directory. The zero value is not usable: set Package. Remove deletes the
// build; call it from TestMain after m.Run.
type Binary struct {
	Package string // import path of the main package, e.g. github.com/outboxrelay/outbox/cmd/relay

	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds the command (once per test binary) and returns its path; a
// failed build fails tb. The build is without -race whatever the tests
// use: the child is the system under test, the race detector watches the
// test process.
func (b *Binary) Path(tb testing.TB) string {
	tb.Helper()
	b.once.Do(func() {
		// go test puts its own toolchain first in PATH.
		goTool, err := exec.LookPath("go")
		if err != nil {
			b.err = err
			return
		}
		if b.dir, b.err = os.MkdirTemp("", "proctest-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, filepath.Base(b.Package))
		out, err := exec.Command(goTool, "build", "-o", b.path, b.Package).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", b.Package, err, out)
		}
	})
	if b.err != nil {
		tb.Fatalf("proctest: building %s: %v", b.Package, b.err)
	}
	return b.path
}

// Remove deletes the built command, if any.
func (b *Binary) Remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// Env returns the test process's environment without the variables whose
// names start with prefix (so that a developer's settings cannot leak into
// the child), followed by extra (KEY=VALUE).
func Env(prefix string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Proc is a started child process.
type Proc struct {
	Cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Start starts cmd, asking the kernel to kill it should the test process
// die without cleaning up (on Linux), and watches for its exit.
func Start(cmd *exec.Cmd) (*Proc, error) {
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode is the exit status: -1 while running or when a signal ended it.
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}

// Signal sends s unless the process has exited.
func (p *Proc) Signal(s os.Signal) error {
	if p.Exited() {
		return nil
	}
	err := p.Cmd.Process.Signal(s)
	if err != nil && p.Exited() {
		return nil // it exited meanwhile
	}
	return err
}

// Wait waits up to timeout for the process to exit and reports whether it
// did.
func (p *Proc) Wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Kill kills the process if it runs and waits up to timeout for its exit;
// it reports whether the process was still running.
func (p *Proc) Kill(timeout time.Duration) bool {
	if p.Exited() {
		return false
	}
	_ = p.Cmd.Process.Kill()
	p.Wait(timeout)
	return true
}

// Buffer is a bytes.Buffer safe for concurrent writes and reads: a child's
// output while it runs.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Tail returns the last n lines of text.
func Tail(text []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(text, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// Main runs a test binary's tests and removes the commands they built:
// call it from TestMain.
func Main(m *testing.M, built ...*Binary) {
	code := m.Run()
	for _, b := range built {
		b.Remove()
	}
	os.Exit(code)
}
