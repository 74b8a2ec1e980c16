package proctest_test

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/internal/proctest"
)

func TestStartSignalWait(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep command")
	}
	p, err := proctest.Start(exec.Command("sleep", "30"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Exited() || p.ExitCode() != -1 {
		t.Fatalf("exited=%t code=%d right after start", p.Exited(), p.ExitCode())
	}
	if p.Wait(50 * time.Millisecond) {
		t.Fatal("Wait returned true for a running process")
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !p.Wait(10 * time.Second) {
		t.Fatal("sleep did not end on SIGTERM")
	}
	if p.ExitCode() != -1 {
		t.Errorf("exit code %d after a signal, want -1", p.ExitCode())
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("signal after exit: %v, want nil", err)
	}
	if p.Kill(time.Second) {
		t.Error("Kill reported a running process after its exit")
	}
}

func TestExitCodeAndBuffer(t *testing.T) {
	var out proctest.Buffer
	cmd := exec.Command("sh", "-c", "echo one; echo two; echo three; exit 3")
	cmd.Stdout = &out
	p, err := proctest.Start(cmd)
	if err != nil {
		t.Skip("no sh:", err)
	}
	if !p.Wait(10 * time.Second) {
		t.Fatal("sh did not exit")
	}
	if p.ExitCode() != 3 {
		t.Errorf("exit code %d, want 3", p.ExitCode())
	}
	if got := proctest.Tail([]byte(out.String()), 2); got != "two\nthree" {
		t.Errorf("Tail = %q", got)
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("PROCTEST_SECRET", "x")
	env := proctest.Env("PROCTEST_", "PROCTEST_MINE=1")
	for _, kv := range env[:len(env)-1] {
		if strings.HasPrefix(kv, "PROCTEST_") {
			t.Errorf("Env kept %s", kv)
		}
	}
	if env[len(env)-1] != "PROCTEST_MINE=1" {
		t.Errorf("Env did not append the extra variables: %v", env[len(env)-1])
	}
	if len(env) < len(os.Environ())-1 {
		t.Errorf("Env dropped more than the prefixed variables")
	}
}
