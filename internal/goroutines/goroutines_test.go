package goroutines

import (
	"testing"
	"time"
)

const (
	parkSelect = "github.com/isoedge/isoedge/internal/goroutines.parkInSelect"
	parkRecv   = "github.com/isoedge/isoedge/internal/goroutines.parkOnReceive"
)

//go:noinline
func parkInSelect(a, b <-chan struct{}) {
	select {
	case <-a:
	case <-b:
	}
}

//go:noinline
func parkOnReceive(a <-chan struct{}) { <-a }

func TestCountAndWait(t *testing.T) {
	if n := Count(parkSelect, ""); n != 0 {
		t.Fatalf("Count before any goroutine parks = %d", n)
	}
	release, never := make(chan struct{}), make(chan struct{})
	done := make(chan struct{}, 4)
	for range 3 {
		go func() { parkInSelect(release, never); done <- struct{}{} }()
	}
	go func() { parkOnReceive(release); done <- struct{}{} }()

	Wait(t, parkSelect, "select", 3, time.Minute)
	Wait(t, parkRecv, "chan receive", 1, time.Minute)
	if n := Count(parkSelect, "select"); n != 3 {
		t.Errorf("Count(select) = %d, want 3", n)
	}
	if n := Count(parkSelect, "chan receive"); n != 0 {
		t.Errorf("goroutines in a select counted as receiving: %d", n)
	}
	if n := Count(parkRecv, ""); n != 1 {
		t.Errorf("Count(any state) = %d, want 1", n)
	}
	close(release)
	for range 4 {
		<-done
	}
	deadline := time.Now().Add(time.Minute)
	for Count(parkSelect, "") != 0 || Count(parkRecv, "") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("released goroutines are still counted")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStateOf(t *testing.T) {
	for header, want := range map[string]string{
		"goroutine 7 [select]:":                     "select",
		"goroutine 7 [select, 2 minutes]:":          "select",
		"goroutine 12 [chan receive]:":              "chan receive",
		"goroutine 1 [running]:":                    "running",
		"goroutine 3 [sync.Mutex.Lock, 5 minutes]:": "sync.Mutex.Lock",
		"garbage": "",
	} {
		if got := stateOf(header); got != want {
			t.Errorf("stateOf(%q) = %q, want %q", header, got, want)
		}
	}
}
