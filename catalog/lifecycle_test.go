package catalog

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/internal/fixture"
)

// TestReadyWaitsForDerivedImages: an image is servable only once what
// derives from it is built; until then the service is not ready.
func TestReadyWaitsForDerivedImages(t *testing.T) {
	env := newPopEnv(t)
	srv := newPopServer(t, popBlob(1, 64<<10), nil)
	img := popImage("4.18", "418.1", "x86_64", srv.url("a.iso"))
	cfg := env.config(t, img)
	gate := make(chan struct{})
	var derives atomic.Int32
	cfg.Derive = func(ctx context.Context, _ cache.BaseRecord) error {
		derives.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return nil
	}
	c := mustNew(t, cfg)
	runPopulator(t, c)
	waitReady(t, c, 10*time.Second, img)
	waitFor(t, 10*time.Second, "the derived build to start", func() bool { return derives.Load() == 1 })
	if c.Ready() {
		t.Fatal("ready while the image's derived images are being built")
	}
	if h := parseHealth(t, c.Health()); h.Ready || h.Images[0].Derived != "" {
		t.Fatalf("health while deriving: %+v", h)
	}
	close(gate)
	waitFor(t, 10*time.Second, "ready", c.Ready)
	if h := parseHealth(t, c.Health()); !h.Ready || h.Images[0].Derived != "ok" || h.Images[0].Failing {
		t.Fatalf("health when done: %+v", h)
	}
}

// TestFailingImageDoesNotHoldReadinessBack: one image whose mirror fails
// is failing; the other makes the service ready.
func TestFailingImageDoesNotHoldReadinessBack(t *testing.T) {
	env := newPopEnv(t)
	good := newPopServer(t, popBlob(1, 64<<10), nil)
	bad := newPopServer(t, nil, serveStatus(500))
	imgA := popImage("4.18", "418.1", "x86_64", good.url("a.iso"))
	imgB := popImage("4.19", "419.1", "x86_64", bad.url("b.iso"))
	c := mustNew(t, env.config(t, imgA, imgB))
	runPopulator(t, c)
	waitFor(t, 10*time.Second, "ready with one failing image", c.Ready)
	// The failing image is retried every few tens of milliseconds, and is
	// "downloading" during each attempt: read health between attempts.
	var h popHealth
	waitFor(t, 30*time.Second, "the failing image between attempts", func() bool {
		h = parseHealth(t, c.Health())
		b, _ := h.image("419.1")
		return b.State != StateDownloading
	})
	b, _ := h.image("419.1")
	// Failing from its first failed attempt, also while a retry runs.
	if !b.Failing || b.Error == "" || (b.State != StateFailed && b.State != StateDownloading) {
		t.Errorf("failing image in health: %+v", b)
	}
	if a, _ := h.image("418.1"); a.Failing || a.State != StateReady {
		t.Errorf("good image in health: %+v", a)
	}
}

// TestNotReadyWhileOnlyFailing: with no servable image the service is
// not ready, even if every image is failing.
func TestNotReadyWhileOnlyFailing(t *testing.T) {
	env := newPopEnv(t)
	bad := newPopServer(t, nil, serveStatus(503))
	img := popImage("4.18", "418.1", "x86_64", bad.url("a.iso"))
	c := mustNew(t, env.config(t, img))
	runPopulator(t, c)
	waitFor(t, 10*time.Second, "the image failing", func() bool {
		s, _ := parseHealth(t, c.Health()).image("418.1")
		return s.Failing
	})
	if c.Ready() {
		t.Error("ready with no servable image")
	}
}

// TestDerivedBuildRetried: a derived build that fails is retried with
// backoff until it succeeds; the image is failing meanwhile.
func TestDerivedBuildRetried(t *testing.T) {
	env := newPopEnv(t)
	srv := newPopServer(t, popBlob(2, 64<<10), nil)
	img := popImage("4.18", "418.1", "x86_64", srv.url("a.iso"))
	cfg := env.config(t, img)
	var calls atomic.Int32
	cfg.Derive = func(context.Context, cache.BaseRecord) error {
		if calls.Add(1) <= 2 {
			return errors.New("scratch space is full")
		}
		return nil
	}
	c := mustNew(t, cfg)
	runPopulator(t, c)
	waitFor(t, 10*time.Second, "the derived build failing", func() bool {
		s, _ := parseHealth(t, c.Health()).image("418.1")
		return s.Failing && s.Error == "scratch space is full"
	})
	// Failing on its derived build only, it is stored: the service is
	// ready meanwhile (its full ISO is served).
	if !c.Ready() {
		t.Error("not ready although the image is stored and only its derived build fails")
	}
	waitFor(t, 10*time.Second, "the derived build done after retries", func() bool {
		s, _ := parseHealth(t, c.Health()).image("418.1")
		return s.Derived == "ok"
	})
	if n := calls.Load(); n != 3 {
		t.Errorf("derive called %d times, want 3", n)
	}
	if s, _ := parseHealth(t, c.Health()).image("418.1"); s.Failing || s.Derived != "ok" {
		t.Errorf("after the retry succeeded: %+v", s)
	}
	if srv.requests() != 1 {
		t.Errorf("a failed derived build downloaded the image again (%d requests)", srv.requests())
	}
}

// TestMissingBlobIsFetchedAgain: a stored image whose blob disappears is
// answered ErrNotReady (not a server error), downloaded again, and served.
func TestMissingBlobIsFetchedAgain(t *testing.T) {
	env := newPopEnv(t)
	body := popBlob(3, 64<<10)
	// The download again waits until the test has looked: it could
	// otherwise be over before the Lookup below.
	again := make(chan struct{})
	srv := newPopServer(t, body, func(n int, w http.ResponseWriter, r *http.Request) {
		if n > 1 {
			select {
			case <-again:
			case <-r.Context().Done():
				return
			}
		}
		serveRange(w, r, body)
	})
	img := popImage("4.18", "418.1", "x86_64", srv.url("a.iso"))
	c := mustNew(t, env.config(t, img))
	runPopulator(t, c)
	waitFor(t, 10*time.Second, "ready", c.Ready)
	rec, _, _ := c.Lookup(img.Version, "x86_64", config.TypeFullISO)
	if err := os.Remove(env.store.BlobPath(rec.Digest)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Open(rec.Digest); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Open of a missing blob: %v, want ErrNotReady", err)
	}
	if _, _, err := c.Lookup(img.Version, "x86_64", config.TypeFullISO); !errors.Is(err, ErrNotReady) {
		t.Errorf("Lookup right after the blob went missing: %v", err)
	}
	close(again)
	waitFor(t, 10*time.Second, "ready again", c.Ready)
	if srv.requests() != 2 {
		t.Errorf("mirror saw %d requests, want 2", srv.requests())
	}
	f, release, err := c.Open(rec.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	got := make([]byte, len(body)+1)
	n, _ := f.ReadAt(got, 0)
	if !bytes.Equal(got[:n], body) {
		t.Error("the image fetched again differs from the mirror's")
	}
}

// TestMissingDerivedBlobIsRebuilt: a derived blob that disappears is
// dropped and built again from its stored parent, without a download.
func TestMissingDerivedBlobIsRebuilt(t *testing.T) {
	env := newPopEnv(t)
	srv := newPopServer(t, popBlob(4, 64<<10), nil)
	img := popImage("4.18", "418.1", "x86_64", srv.url("a.iso"))
	cfg := env.config(t, img)
	var derives atomic.Int32
	cfg.Derive = func(ctx context.Context, rec cache.BaseRecord) error {
		derives.Add(1)
		if d, err := env.index.Derived(DerivedNmstate, rec.Digest, ""); err == nil {
			if _, err := env.store.Stat(d); err == nil {
				return nil
			}
		}
		d, _, err := env.store.Put(ctx, bytes.NewReader([]byte("nmstatectl archive")))
		if err != nil {
			return err
		}
		if err := env.index.PutMeta(MetaNmstate, d, nil); err != nil {
			return err
		}
		return env.index.PutDerived(DerivedNmstate, rec.Digest, "", d)
	}
	c := mustNew(t, cfg)
	runPopulator(t, c)
	waitFor(t, 10*time.Second, "ready", c.Ready)
	rec, _, _ := c.Lookup(img.Version, "x86_64", config.TypeFullISO)
	d, err := env.index.Derived(DerivedNmstate, rec.Digest, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(env.store.BlobPath(d)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Open(d); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Open of a missing derived blob: %v, want ErrNotReady", err)
	}
	waitFor(t, 10*time.Second, "the derived blob rebuilt", func() bool {
		_, err := env.store.Stat(d)
		return err == nil && c.Ready()
	})
	if n := derives.Load(); n != 2 {
		t.Errorf("derive ran %d times, want 2", n)
	}
	if srv.requests() != 1 {
		t.Errorf("rebuilding a derived blob downloaded the image again (%d requests)", srv.requests())
	}
}

// TestEvictedImageDoesNotFlapReadiness: an image evicted for the disk
// budget is not required for readiness, neither while it is removed nor
// while it is fetched again and its derived images are rebuilt.
func TestEvictedImageDoesNotFlapReadiness(t *testing.T) {
	env := newPopEnv(t)
	a := newPopServer(t, popBlob(50, 64<<10), nil)
	b := newPopServer(t, popBlob(51, 64<<10+512), nil)
	imgA := popImage("4.16", "416.1", "x86_64", a.url("a.iso"))
	imgB := popImage("4.17", "417.1", "x86_64", b.url("b.iso"))
	cfg := env.config(t, imgA, imgB)
	cfg.MaxBytes = 96 << 10 // one image fits
	cfg.Concurrency = 1
	gate := make(chan struct{})
	var aDerives atomic.Int32
	cfg.Derive = func(ctx context.Context, rec cache.BaseRecord) error {
		if rec.Key.Version == imgA.Version && aDerives.Add(1) == 2 {
			select { // A's rebuild after its eviction waits
			case <-gate:
			case <-ctx.Done():
			}
		}
		return nil
	}
	c := mustNew(t, cfg)
	runPopulator(t, c)
	waitFor(t, 10*time.Second, "one image evicted and the service ready", func() bool {
		h := parseHealth(t, c.Health())
		sa, _ := h.image("416.1")
		sb, _ := h.image("417.1")
		gone := func(s ImageStatus) bool { return s.Evicted && s.State == StatePending }
		return h.Ready && (gone(sa) || gone(sb))
	})
	// Ask for whichever was evicted; watch readiness while it comes back.
	h := parseHealth(t, c.Health())
	evicted := imgA
	if s, _ := h.image("417.1"); s.Evicted {
		evicted = imgB
		close(gate) // only A's rebuild is held
	}
	var flapped atomic.Bool
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if !c.Ready() {
				flapped.Store(true)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if _, _, err := c.Ensure(context.Background(), evicted.Version, "x86_64", config.TypeFullISO); err != nil {
		t.Fatalf("Ensure of the evicted image: %v", err)
	}
	if evicted == imgA {
		waitFor(t, 10*time.Second, "A's rebuild to start", func() bool { return aDerives.Load() == 2 })
		close(gate)
	}
	waitFor(t, 10*time.Second, "the other image evicted in turn, or settled", func() bool {
		s, _ := parseHealth(t, c.Health()).image(evicted.Version)
		return s.Derived == "ok" || s.Evicted
	})
	close(stop)
	<-done
	if flapped.Load() {
		t.Error("/health went unready while an evicted image was fetched again")
	}
}

// TestIngestRefusesISOWithoutIgnitionArea: a base ISO whose ISOs could
// only answer 500 (no ignition embed area) is refused at ingest.
func TestIngestRefusesISOWithoutIgnitionArea(t *testing.T) {
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{})
	// Take images/ignition.img out of the image.
	bare := filepath.Join(dir, "bare.iso")
	if out, err := exec.Command("xorriso", "-indev", iso, "-outdev", bare, "-boot_image", "any", "replay", "-rm", "/images/ignition.img", "--").CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	env := newPopEnv(t)
	c := mustNew(t, Config{Store: env.store, Index: env.index, MinRootfsBytes: 1, MinKernelBytes: 1})
	if _, err := c.inspect(iso); err != nil {
		t.Fatalf("the fixture itself: %v", err)
	}
	if _, err := c.inspect(bare); !errors.Is(err, customize.ErrBadImage) || !strings.Contains(err.Error(), "no ignition embed area") {
		t.Errorf("an ISO without ignition area: %v, want ErrBadImage", err)
	}
}

// TestImageListedForTwoReleases: the same RHCOS image listed under two
// OpenShift versions is one image, found by either version, and gets
// nmstatectl when either needs it.
func TestImageListedForTwoReleases(t *testing.T) {
	env := newPopEnv(t)
	srv := newPopServer(t, popBlob(70, 64<<10), nil)
	older := popImage("4.17", "417.94.1", "x86_64", srv.url("a.iso"))
	newer := popImage("4.18", "417.94.1", "x86_64", srv.url("a.iso"))
	cfg := env.config(t, older, newer)
	var derived atomic.Value
	cfg.Derive = func(_ context.Context, rec cache.BaseRecord) error {
		derived.Store(rec.OpenshiftVersion)
		return nil
	}
	c := mustNew(t, cfg)
	runPopulator(t, c)
	waitFor(t, 10*time.Second, "ready", c.Ready)
	for _, v := range []string{"4.17", "4.18", "417.94.1"} {
		if _, configured, err := c.Lookup(v, "x86_64", config.TypeFullISO); !configured || err != nil {
			t.Errorf("Lookup(%s): configured %v, %v", v, configured, err)
		}
	}
	if srv.requests() != 1 {
		t.Errorf("%d downloads of one image", srv.requests())
	}
	if v, _ := derived.Load().(string); !customize.NmstateNeeded(v) {
		t.Errorf("derived as OpenShift %q, want a version that gets nmstatectl", v)
	}
}
