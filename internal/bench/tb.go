package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// tb lets the bench use the test fixture builder outside a test.
type tb struct {
	testing.TB
	dir      string
	n        int
	failed   string
	cleanups []func()
}

func (t *tb) Helper()                           {}
func (t *tb) Logf(format string, args ...any)   {}
func (t *tb) Errorf(format string, args ...any) { t.failed = fmt.Sprintf(format, args...) }
func (t *tb) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
func (t *tb) Fatal(args ...any) { panic(fmt.Sprint(args...)) }
func (t *tb) Skip(args ...any)  { panic(fmt.Sprint(append([]any{"skipped: "}, args...)...)) }
func (t *tb) Skipf(format string, args ...any) {
	panic("skipped: " + fmt.Sprintf(format, args...))
}
func (t *tb) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *tb) TempDir() string {
	t.n++
	d := filepath.Join(t.dir, "t"+strconv.Itoa(t.n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		panic(err)
	}
	return d
}
func (t *tb) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
