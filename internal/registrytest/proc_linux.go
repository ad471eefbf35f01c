package registrytest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the registry get SIGKILL when the test binary dies
// (a timeout, a crash), so no registry outlives its test.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
