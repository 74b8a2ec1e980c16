//go:build unix && !linux

package chaos

import "os/exec"

// setDeathSignal does nothing where there is no parent-death signal; the
// test's cleanup kills the relays.
func setDeathSignal(*exec.Cmd) {}
