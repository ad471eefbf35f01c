package proxy

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isoedge/isoedge/internal/goroutines"
)

func TestLimiterCapacity(t *testing.T) {
	const wait = 50 * time.Millisecond
	l := newLimiter(2, wait)
	r1, ok1 := l.acquire()
	r2, ok2 := l.acquire()
	if !ok1 || !ok2 {
		t.Fatalf("acquire within capacity failed: %v %v", ok1, ok2)
	}
	if got := l.inUse(); got != 2 {
		t.Fatalf("inUse = %d, want 2", got)
	}
	t0 := time.Now()
	if r, ok := l.acquire(); ok {
		r()
		t.Fatal("acquire beyond capacity succeeded")
	}
	if d := time.Since(t0); d < wait {
		t.Fatalf("acquire beyond capacity failed after %v, before the %v wait", d, wait)
	}

	r1()
	if got := l.inUse(); got != 1 {
		t.Fatalf("inUse after release = %d, want 1", got)
	}
	r3, ok := l.acquire()
	if !ok {
		t.Fatal("acquire after release failed")
	}
	r2()
	r3()
	if got := l.inUse(); got != 0 {
		t.Fatalf("inUse after releasing all = %d, want 0", got)
	}
}

func TestLimiterNoWait(t *testing.T) {
	l := newLimiter(1, 0)
	r, ok := l.acquire()
	if !ok {
		t.Fatal("first acquire failed")
	}
	defer r()
	t0 := time.Now()
	if _, ok := l.acquire(); ok {
		t.Fatal("acquire on a full limiter without wait succeeded")
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Fatalf("acquire without wait blocked for %v", d)
	}
}

func TestLimiterWaitsForRelease(t *testing.T) {
	l := newLimiter(1, time.Minute)
	r, _ := l.acquire()
	got := make(chan bool, 1)
	go func() {
		r2, ok := l.acquire()
		if ok {
			r2()
		}
		got <- ok
	}()
	// The slot is given back while the second acquire waits for it.
	goroutines.Wait(t, "github.com/isoedge/isoedge/proxy.(*limiter).acquire", "select", 1, time.Minute)
	r()
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("acquire did not get the slot released while it waited")
		}
	case <-time.After(time.Minute):
		t.Fatal("acquire still waits after the slot was released")
	}
}

func TestLimiterReleaseTwice(t *testing.T) {
	l := newLimiter(2, 10*time.Millisecond)
	a, _ := l.acquire()
	b, _ := l.acquire()
	defer b()
	a()
	a()
	if got := l.inUse(); got != 1 {
		t.Fatalf("inUse after releasing one slot twice = %d, want 1", got)
	}
	c, ok := l.acquire()
	if !ok {
		t.Fatal("acquire after release failed")
	}
	defer c()
	if d, ok := l.acquire(); ok {
		d()
		t.Fatal("a double release freed two slots")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	const n, workers = 5, 100
	l := newLimiter(n, 10*time.Second)
	var cur, peak, served atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			release, ok := l.acquire()
			if !ok {
				return
			}
			c := cur.Add(1)
			for {
				p := peak.Load()
				if c <= p || peak.CompareAndSwap(p, c) {
					break
				}
			}
			if got := l.inUse(); got > n {
				t.Errorf("inUse = %d > %d", got, n)
			}
			time.Sleep(time.Millisecond)
			cur.Add(-1)
			served.Add(1)
			release()
			release() // a second call must not free another slot
		}()
	}
	close(start)
	wg.Wait()
	if p := peak.Load(); p > n {
		t.Fatalf("%d holders at once, capacity %d", p, n)
	}
	if s := served.Load(); s != workers {
		t.Fatalf("%d of %d workers got a slot", s, workers)
	}
	if got := l.inUse(); got != 0 {
		t.Fatalf("inUse after all released = %d", got)
	}
}
