package proctest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill the child if the test process dies
// without cleaning up (a -timeout panic, a crash): no orphans left running.
func setDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
