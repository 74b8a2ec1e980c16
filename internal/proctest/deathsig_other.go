//go:build !linux

package proctest

import "os/exec"

// setDeathSignal does nothing where there is no parent-death signal; the
// tests' cleanup kills their children.
func setDeathSignal(*exec.Cmd) {}
