package cache

import (
	"os"
	"testing"
)

// TestMain lets the test binary also act as a process that a test kills
// (killedWriter). The index checker child needs nothing here: the package's
// init turns the binary into one before TestMain runs.
func TestMain(m *testing.M) {
	if root := os.Getenv(killHelperEnv); root != "" {
		killedWriter(root)
		os.Exit(0)
	}
	os.Exit(m.Run())
}
