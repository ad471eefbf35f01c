package catalog

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"go.uber.org/zap/zaptest/observer"
)

const budgetImageSize = 320 << 10

// budgetSetup is a lazy populator over images A and B whose budget holds
// one of them.
type budgetSetup struct {
	env        *popEnv
	a, b       *popServer
	imgA, imgB config.OSImage
	p          *Catalog
	logs       *observer.ObservedLogs

	mu      sync.Mutex
	evicted []cache.BaseRecord
}

func newBudgetSetup(t *testing.T, tweak func(*Config, *budgetSetup)) *budgetSetup {
	t.Helper()
	s := &budgetSetup{env: newPopEnv(t)}
	s.a = newPopServer(t, popBlob(40, budgetImageSize), nil)
	s.b = newPopServer(t, popBlob(41, budgetImageSize+1024), nil)
	s.imgA = popImage("4.16", "416.94.1-0", "x86_64", s.a.url("a.iso"))
	s.imgB = popImage("4.17", "417.94.1-0", "x86_64", s.b.url("b.iso"))
	cfg := s.env.config(t, s.imgA, s.imgB)
	cfg.Lazy = true
	cfg.LazyWait = 30 * time.Second // only a bound: Ensure returns once the image is stored
	cfg.MaxBytes = budgetImageSize * 3 / 2
	cfg.Evict = func(rec cache.BaseRecord) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.evicted = append(s.evicted, rec)
		return nil
	}
	cfg.Log, s.logs = newPopLogger(nil)
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range s.logs.All() {
				t.Logf("populator log: %s %s %v", e.Level, e.Message, e.ContextMap())
			}
		}
	})
	if tweak != nil {
		tweak(&cfg, s)
	}
	s.p = mustNew(t, cfg)
	runPopulator(t, s.p)
	waitFor(t, 30*time.Second, "Ready()", s.p.Ready)
	// Ready comes before Run's own budget pass; that pass is over once
	// the first pass is logged as done, so it cannot add to what a test
	// counts later.
	waitFor(t, 30*time.Second, "the first pass", func() bool { return s.logs.FilterMessage(msgFirstPassDone).Len() == 1 })
	return s
}

func (s *budgetSetup) ensure(t *testing.T, img config.OSImage) cache.BaseRecord {
	t.Helper()
	rec, configured, err := s.p.Ensure(context.Background(), img.Version, img.CPUArchitecture, config.TypeFullISO)
	if err != nil || !configured {
		t.Fatalf("Ensure(%s): configured %v, %v", img.Version, configured, err)
	}
	return rec
}

func (s *budgetSetup) evictions() []cache.BaseRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cache.BaseRecord(nil), s.evicted...)
}

// waitGone waits until the eviction of rec is complete (its blob removed
// and the image back to pending), then checks that nothing of the image is
// left.
func (s *budgetSetup) waitGone(t *testing.T, img config.OSImage, rec cache.BaseRecord) {
	t.Helper()
	waitFor(t, 10*time.Second, img.Version+" evicted", func() bool {
		_, err := s.env.store.Stat(rec.Digest)
		st, _ := parseHealth(t, s.p.Health()).image(img.Version)
		return errors.Is(err, cache.ErrNotFound) && st.State == StatePending
	})
	if _, configured, err := s.p.Lookup(img.Version, img.CPUArchitecture, config.TypeFullISO); !configured || !errors.Is(err, ErrNotReady) {
		t.Errorf("Lookup(%s) after eviction: configured %v, %v; want ErrNotReady", img.Version, configured, err)
	}
	if _, err := s.env.index.Base(baseKey(img)); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("index.Base(%s) after eviction: %v, want ErrNotFound", img.Version, err)
	}
	if _, err := s.env.index.Meta(MetaLayout, rec.Digest); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("layout of %s after eviction: %v, want ErrNotFound", img.Version, err)
	}
	st, _ := parseHealth(t, s.p.Health()).image(img.Version)
	if st.State != StatePending || st.Digest != "" || !st.Evicted {
		t.Errorf("health of evicted %s: %+v, want pending", img.Version, st)
	}
}

// checkStored asserts img is ready and intact.
func (s *budgetSetup) checkStored(t *testing.T, img config.OSImage, rec cache.BaseRecord, body []byte) {
	t.Helper()
	if got, _, err := s.p.Lookup(img.Version, img.CPUArchitecture, config.TypeFullISO); err != nil || got.Digest != rec.Digest {
		t.Errorf("Lookup(%s): %s, %v; want it still stored", img.Version, got.Digest, err)
	}
	if _, err := s.env.index.Base(baseKey(img)); err != nil {
		t.Errorf("index.Base(%s): %v", img.Version, err)
	}
	s.env.checkBlob(t, rec.Digest, body)
}

func sameRecord(a, b cache.BaseRecord) bool {
	return a.Key == b.Key && a.Digest == b.Digest && a.Size == b.Size && a.URL == b.URL && a.OpenshiftVersion == b.OpenshiftVersion
}

func TestBudgetEvictsLeastRecentlyServed(t *testing.T) {
	s := newBudgetSetup(t, nil)

	recA := s.ensure(t, s.imgA)
	if got := s.evictions(); len(got) != 0 {
		t.Fatalf("evicted %v with one image stored", got)
	}

	recB := s.ensure(t, s.imgB)
	s.waitGone(t, s.imgA, recA)
	s.checkStored(t, s.imgB, recB, s.b.body)
	if got := s.evictions(); len(got) != 1 || !sameRecord(got[0], recA) {
		t.Errorf("Evict hook calls %+v, want one with A's record %+v", got, recA)
	}
	if got := s.env.blobs(t); len(got) != 1 || got[0] != recB.Digest {
		t.Errorf("store holds %v, want only B", got)
	}

	// A is asked for again: fetched again, and B makes room for it.
	before := s.a.requests()
	recA2 := s.ensure(t, s.imgA)
	if s.a.requests() <= before {
		t.Errorf("evicted A was served without a new download (%d requests)", s.a.requests())
	}
	if recA2.Digest != recA.Digest {
		t.Errorf("A fetched again as %s, want %s", recA2.Digest, recA.Digest)
	}
	s.waitGone(t, s.imgB, recB)
	s.checkStored(t, s.imgA, recA2, s.a.body)
	if got := s.evictions(); len(got) != 2 || !sameRecord(got[1], recB) {
		t.Errorf("Evict hook calls %+v, want the second with B's record", got)
	}
	if got := s.b.requests(); got != 1 {
		t.Errorf("B requested %d times, want 1", got)
	}
}

func TestBudgetKeepsImageInUse(t *testing.T) {
	var inUse atomic.Pointer[cache.Digest]
	var asked atomic.Int32
	s := newBudgetSetup(t, func(cfg *Config, _ *budgetSetup) {
		cfg.InUse = func(d cache.Digest) bool {
			asked.Add(1)
			p := inUse.Load()
			return p != nil && *p == d
		}
	})
	recA := s.ensure(t, s.imgA)
	inUse.Store(&recA.Digest)
	recB := s.ensure(t, s.imgB)

	waitFor(t, 30*time.Second, "budget warning", func() bool { return s.logs.FilterMessage(msgBudgetStuck).Len() > 0 })
	if asked.Load() == 0 {
		t.Error("InUse never consulted")
	}
	if got := s.evictions(); len(got) != 0 {
		t.Errorf("evicted %+v while A is in use", got)
	}
	s.checkStored(t, s.imgA, recA, s.a.body)
	s.checkStored(t, s.imgB, recB, s.b.body)
	if got := s.env.blobs(t); len(got) != 2 {
		t.Errorf("store holds %d blobs, want 2", len(got))
	}
}

func TestBudgetEvictHookErrorPreventsEviction(t *testing.T) {
	var calls atomic.Int32
	s := newBudgetSetup(t, func(cfg *Config, _ *budgetSetup) {
		cfg.Evict = func(cache.BaseRecord) error {
			calls.Add(1)
			return errors.New("minimal template is being served")
		}
	})
	recA := s.ensure(t, s.imgA)
	recB := s.ensure(t, s.imgB)

	waitFor(t, 30*time.Second, "eviction error logged", func() bool { return s.logs.FilterMessage(msgBudgetEvictErr).Len() > 0 })
	if got := calls.Load(); got != 1 {
		t.Errorf("Evict hook called %d times, want 1", got)
	}
	s.checkStored(t, s.imgA, recA, s.a.body)
	s.checkStored(t, s.imgB, recB, s.b.body)
	if _, err := s.env.index.Meta(MetaLayout, recA.Digest); err != nil {
		t.Errorf("A's layout: %v", err)
	}
	st, _ := parseHealth(t, s.p.Health()).image(s.imgA.Version)
	if st.State != StateReady {
		t.Errorf("health of A after a refused eviction: %+v", st)
	}
	// Still served from the store, with no new download.
	if _, _, err := s.p.Ensure(context.Background(), s.imgA.Version, "x86_64", config.TypeFullISO); err != nil || s.a.requests() != 1 {
		t.Errorf("Ensure(A): %v, %d requests, want no new download", err, s.a.requests())
	}
}

// Two budget passes at once (two downloads finishing while the Evict hook
// is slow) must not evict more than needed: the budget holds one image, so
// once things settle one image is still stored, and the store fits.
func TestBudgetConcurrentPassesDoNotOverEvict(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	returned := make(chan struct{})
	var first atomic.Bool
	var imgC config.OSImage
	var c *popServer
	s := newBudgetSetup(t, func(cfg *Config, s *budgetSetup) {
		c = newPopServer(t, popBlob(42, budgetImageSize+2048), nil)
		imgC = popImage("4.18", "418.94.1-0", "x86_64", c.url("c.iso"))
		cfg.Images = append(cfg.Images, imgC)
		cfg.Evict = func(rec cache.BaseRecord) error {
			s.mu.Lock()
			s.evicted = append(s.evicted, rec)
			s.mu.Unlock()
			if rec.Key == baseKey(s.imgA) && first.CompareAndSwap(false, true) {
				// The first eviction of A is slow (say, a derived ISO is
				// still being removed).
				close(entered)
				defer close(returned)
				<-release // closed by the test, or by its deferred cleanup
			}
			return nil
		}
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	s.ensure(t, s.imgA)
	s.ensure(t, s.imgB) // its budget pass starts evicting A, slowly
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no eviction of A started")
	}
	s.ensure(t, imgC) // a second budget pass while the first is stuck
	// A is asked for again while its eviction is stuck. (The second pass
	// waits for the first: passes take budgetMu, so nothing is evicted
	// until the hook returns; there is no moment to wait for here.)
	s.ensure(t, s.imgA)

	close(release)
	select {
	case <-returned:
	case <-time.After(30 * time.Second):
		t.Fatal("Evict hook did not return")
	}
	// The stalled pass goes on once released: the store must come to fit
	// the budget.
	waitFor(t, 10*time.Second, "the store to fit the budget", func() bool {
		used, err := s.p.storeBytes()
		return err == nil && used <= budgetImageSize*3/2
	})
	// And no pass is still at work on what is checked below.
	s.p.budgetMu.Lock()
	s.p.budgetMu.Unlock()
	used, _ := s.p.storeBytes()
	var ready []string
	for _, img := range []config.OSImage{s.imgA, s.imgB, imgC} {
		rec, _, err := s.p.Lookup(img.Version, img.CPUArchitecture, config.TypeFullISO)
		if err != nil {
			continue
		}
		ready = append(ready, img.Version)
		if _, err := s.env.store.Stat(rec.Digest); err != nil {
			t.Errorf("%s is ready but its blob is gone: %v", img.Version, err)
		}
		if _, err := s.env.index.Base(baseKey(img)); err != nil {
			t.Errorf("%s is ready but its index record is gone: %v", img.Version, err)
		}
	}
	if len(ready) == 0 {
		t.Errorf("every image was evicted although the budget holds one (store: %d bytes; Evict hook calls: %d)",
			used, len(s.evictions()))
		for i, r := range s.evictions() {
			t.Logf("Evict hook call %d: %s %s", i+1, r.Key, r.Digest)
		}
	}
}
