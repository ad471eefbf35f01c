// Package goroutines lets a test wait until other goroutines are parked at
// a known point (a select, a channel operation) instead of sleeping for a
// moment and hoping they got there. It is imported by tests only.
//
// It reads the goroutine dump of runtime.Stack: a header per goroutine,
// "goroutine 7 [select]:" or "goroutine 7 [select, 2 minutes]:", then one
// line per frame naming the function, "pkg/path.(*T).method(args)".
package goroutines

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Count returns how many goroutines have a frame of fn on their stack and
// wait in state, the reason the dump gives in brackets ("select",
// "chan receive", "chan send"); an empty state counts them in any state.
// fn is the function's full name, as in a panic's trace:
// "github.com/isoedge/isoedge/proxy.(*limiter).acquire".
func Count(fn, state string) int {
	n := 0
	for _, g := range strings.Split(dump(), "\n\n") {
		header, frames, _ := strings.Cut(g, "\n")
		if state != "" && stateOf(header) != state {
			continue
		}
		for _, line := range strings.Split(frames, "\n") {
			if strings.HasPrefix(line, fn+"(") {
				n++
				break
			}
		}
	}
	return n
}

// Wait polls until at least n goroutines are in fn waiting in state
// (see Count), and fails tb when that does not happen within timeout.
// Timeouts are only failure bounds: pass a generous one.
func Wait(tb testing.TB, fn, state string, n int, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := Count(fn, state)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v, %d goroutines wait in %s (state %q), want %d", timeout, got, fn, state, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stateOf returns "select" from "goroutine 7 [select, 2 minutes]:".
func stateOf(header string) string {
	_, s, ok := strings.Cut(header, "[")
	if !ok {
		return ""
	}
	s, _, _ = strings.Cut(s, "]")
	s, _, _ = strings.Cut(s, ",")
	return s
}

// dump returns the stacks of all goroutines, however many there are.
func dump() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}
