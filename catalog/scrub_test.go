package catalog

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
)

// flipByte changes one byte of a committed blob in place, as rot would.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestScrubFindsRotAndFetchesAgain: a blob whose bytes changed at rest is
// found by the scrub, quarantined (never opened again), and the image is
// downloaded again and served intact.
func TestScrubFindsRotAndFetchesAgain(t *testing.T) {
	env := newPopEnv(t)
	body := popBlob(21, 256<<10)
	srv := newPopServer(t, body, nil)
	img := popImage("4.18", "418.1", "x86_64", srv.url("a.iso"))
	cfg := env.config(t, img)
	cfg.ScrubBytesPerSecond = 1 << 30
	c := mustNew(t, cfg)
	// Not Run yet: the rot happens while stopped, the scrub runs at start.
	first := mustNew(t, env.config(t, img))
	stop := runPopulator(t, first)
	waitFor(t, 10*time.Second, "stored", first.Ready)
	stop()
	rec, err := env.index.Base(baseKey(img))
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, env.store.BlobPath(rec.Digest), 1000)

	runPopulator(t, c)
	waitFor(t, 20*time.Second, "the scrub to find the damage", func() bool {
		return parseHealth(t, c.Health()).Scrub.DamagedFound == 1
	})
	waitFor(t, 10*time.Second, "ready again", c.Ready)
	if srv.requests() != 2 {
		t.Errorf("mirror saw %d requests, want 2 (the image fetched again)", srv.requests())
	}
	got, _, err := c.Lookup(img.Version, "x86_64", config.TypeFullISO)
	if err != nil || got.Digest != cache.DigestOf(body) {
		t.Fatalf("after the scrub: %s, %v", got.Digest, err)
	}
	env.checkBlob(t, got.Digest, body)
	if err := env.store.Verify(context.Background(), got.Digest, 0); err != nil {
		t.Errorf("the blob served after the scrub: %v", err)
	}
	h := parseHealth(t, c.Health())
	if !h.Scrub.Enabled || h.Scrub.LastStarted.IsZero() {
		t.Errorf("scrub status %+v", h.Scrub)
	}
}

// TestScrubCleanStoreChangesNothing: a pass over intact blobs completes,
// reports nothing and downloads nothing.
func TestScrubCleanStoreChangesNothing(t *testing.T) {
	env := newPopEnv(t)
	srv := newPopServer(t, popBlob(22, 128<<10), nil)
	img := popImage("4.18", "418.1", "x86_64", srv.url("a.iso"))
	cfg := env.config(t, img)
	cfg.ScrubBytesPerSecond, cfg.ScrubInterval = 1<<30, time.Hour
	c := mustNew(t, cfg)
	runPopulator(t, c)
	waitFor(t, 10*time.Second, "ready", c.Ready)
	c.scrubPass(context.Background())
	h := parseHealth(t, c.Health())
	if h.Scrub.DamagedFound != 0 || h.Scrub.LastCompleted.IsZero() || !h.Ready {
		t.Errorf("after a clean pass: %+v", h)
	}
	if srv.requests() != 1 {
		t.Errorf("mirror saw %d requests", srv.requests())
	}
	if _, err := env.store.Stat(cache.DigestOf(popBlob(22, 128<<10))); errors.Is(err, cache.ErrNotFound) {
		t.Error("a clean pass removed a blob")
	}
}
