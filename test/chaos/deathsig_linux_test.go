package chaos

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill the relay if the test process dies
// without cleaning up (a -timeout panic, a crash): no orphans left running.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
