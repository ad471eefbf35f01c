//go:build !linux

package registrytest

import "os/exec"

// dieWithParent is Linux-only; elsewhere the test's cleanup stops the
// registry.
func dieWithParent(*exec.Cmd) {}
