package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the relay child if the benchmark dies first, so no
// relay outlives its run.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
