package proxy

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// TestSnapshotCounters checks isoedge_snapshot_requests_total: a request
// that ran the build is a miss, one that waited for another's build is
// coalesced, one served from the cache is a hit; failures count too.
func TestSnapshotCounters(t *testing.T) {
	set := metrics.NewSet()
	s, err := newSnapshots(time.Minute, set)
	if err != nil {
		t.Fatal(err)
	}
	count := func(result string) uint64 {
		return set.GetOrCreateCounter(`isoedge_snapshot_requests_total{result="` + result + `"}`).Get()
	}
	var builds atomic.Uint64
	gets := uint64(0)
	// Concurrent identical gets until at least one round coalesced: the
	// gate opens once every goroutine is about to call get, so waiters
	// nearly always join the leader's flight, but only the counts say so.
	deadline := time.Now().Add(10 * time.Second)
	for round := 0; count("coalesced") == 0; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("no coalesced get in %d rounds", round)
		}
		key := "k" + strconv.Itoa(round)
		gate := make(chan struct{})
		var started, wg sync.WaitGroup
		for range 8 {
			started.Add(1)
			wg.Add(1)
			gets++
			go func() {
				defer wg.Done()
				started.Done()
				if _, err := s.get(key, false, func() (*built, error) {
					builds.Add(1)
					<-gate
					return &built{etag: `"x"`}, nil
				}); err != nil {
					t.Error(err)
				}
			}()
		}
		started.Wait()
		close(gate)
		wg.Wait()
		if miss, co := count("miss"), count("coalesced"); miss != builds.Load() || miss+co != gets {
			t.Fatalf("round %d: miss %d coalesced %d, want miss = %d builds and miss+coalesced = %d gets", round, miss, co, builds.Load(), gets)
		}
	}
	if count("hit") != 0 {
		t.Fatalf("hit = %d before any continuing request", count("hit"))
	}
	if _, err := s.get("k0", true, func() (*built, error) { t.Fatal("built a cached snapshot"); return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if count("hit") != 1 {
		t.Errorf("hit = %d after a continuing request found the snapshot, want 1", count("hit"))
	}
	miss := count("miss")
	boom := errors.New("boom")
	if _, err := s.get("fails", true, func() (*built, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if count("miss") != miss+1 || count("hit") != 1 {
		t.Errorf("failed build: miss %d (was %d), hit %d", count("miss"), miss, count("hit"))
	}
}
