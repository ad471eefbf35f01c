package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSnapshotCounters checks isoedge_snapshot_requests_total: a request
// that ran the build is a miss, one that waited for another's build is
// coalesced, one served from the cache is a hit; failures count too.
func TestSnapshotCounters(t *testing.T) {
	s, set := newTestSnapshots(t, time.Minute)
	count := func(result string) uint64 {
		return set.GetOrCreateCounter(`isoedge_snapshot_requests_total{result="` + result + `"}`).Get()
	}
	var joined atomic.Int32
	s.joined = func() { joined.Add(1) }
	gate := make(chan struct{})
	var builds atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.fetch(context.Background(), "g", "k", func(context.Context) (*built, error) {
				builds.Add(1)
				<-gate
				return &built{etag: `"x"`}, nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	// All eight have joined the one flight before its build may finish.
	waitCond(t, 10*time.Second, "8 fetches joined", func() bool { return joined.Load() == 8 })
	close(gate)
	wg.Wait()
	if miss, co := count("miss"), count("coalesced"); builds.Load() != 1 || miss != 1 || co != 7 {
		t.Fatalf("%d builds, miss %d, coalesced %d; want 1, 1, 7", builds.Load(), miss, co)
	}
	if count("hit") != 0 {
		t.Fatalf("hit = %d before any continuing request", count("hit"))
	}
	if b := s.cached("g", "k"); b == nil {
		t.Fatal("no snapshot after a successful fetch")
	}
	if count("hit") != 1 {
		t.Errorf("hit = %d after a continuing request found the snapshot, want 1", count("hit"))
	}
	boom := errors.New("boom")
	if _, err := s.fetch(context.Background(), "g", "fails", func(context.Context) (*built, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if count("miss") != 2 || count("hit") != 1 {
		t.Errorf("failed build: miss %d (want 2), hit %d", count("miss"), count("hit"))
	}
}
