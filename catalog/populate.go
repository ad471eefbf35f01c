package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/upstream"
	"go.uber.org/zap"
)

// partialKey names the resumable download of an entry: the same image from
// the same URL continues the same file.
func partialKey(e *imageEntry) cache.Digest {
	return cache.DigestOf([]byte(e.key.Type + "\x00" + e.key.Version + "\x00" + e.key.Arch + "\x00" + e.img.URL))
}

func baseKey(img config.OSImage) cache.BaseKey {
	t := img.Type
	if t == "" {
		t = config.TypeFullISO
	}
	return cache.BaseKey{Type: t, Version: img.Version, Arch: img.CPUArchitecture}
}

// restore marks e ready when the index holds it for the same URL and its
// blob and layout are present.
func (c *Catalog) restore(e *imageEntry) bool {
	rec, err := c.cfg.Index.Base(e.key)
	if err != nil {
		return false
	}
	if rec.URL != e.img.URL {
		c.log.Info("OS image URL changed, fetching again", zap.String("version", e.key.Version), zap.String("arch", e.key.Arch))
		return false
	}
	if e.img.SHA256 != "" && rec.Digest.Hex() != e.img.SHA256 {
		return false
	}
	if size, err := c.cfg.Store.Stat(rec.Digest); err != nil || size != rec.Size {
		return false
	}
	if _, err := c.cfg.Index.Meta(MetaLayout, rec.Digest); err != nil {
		return false
	}
	c.mu.Lock()
	e.state, e.rec, e.done, e.total = StateReady, rec, rec.Size, rec.Size
	close(e.ready)
	c.mu.Unlock()
	return true
}

// fetch downloads, checks and commits one image.
func (c *Catalog) fetch(ctx context.Context, e *imageEntry) error {
	c.mu.Lock()
	e.state, e.done, e.total = StateDownloading, 0, -1
	c.mu.Unlock()
	log := c.log.With(zap.String("version", e.key.Version), zap.String("arch", e.key.Arch), zap.String("type", e.key.Type))
	start := time.Now()

	src := e.img.URL
	var w *cache.Writer
	var err error
	seed := ""
	if c.cfg.Seed != nil {
		seed = c.cfg.Seed(e.img)
	}
	if seed != "" {
		log.Info("ingesting the image assisted-image-service left in DATA_DIR", zap.String("path", seed))
		src = "file://" + seed
		w, err = c.cfg.Store.Create()
	} else if src == config.SampleURL {
		if c.cfg.BuildSample == nil {
			return errors.New("upstream: no sample image builder")
		}
		path := filepath.Join(c.cfg.TempDir, "sample.iso")
		if err := c.cfg.BuildSample(path, c.cfg.TempDir); err != nil {
			return fmt.Errorf("upstream: build sample image: %w", err)
		}
		defer os.Remove(path)
		src = "file://" + path
		w, err = c.cfg.Store.Create()
	} else {
		// A download interrupted by an error, a restart or a crash goes on
		// from what it already wrote.
		w, err = c.cfg.Store.Resume(partialKey(e))
	}
	if err != nil {
		return err
	}
	defer w.Cancel()
	lastTenth, wantTotal := int64(-1), int64(-1)
	progress := func(done, total int64) {
		wantTotal = total
		c.mu.Lock()
		e.done, e.total = done, total
		c.mu.Unlock()
		if total > 0 && done*10/total != lastTenth {
			lastTenth = done * 10 / total
			log.Info("downloading OS image", zap.Int64("percent", lastTenth*10))
		}
	}
	if off := w.Size(); off > 0 {
		log.Info("resuming OS image download", zap.Int64("offset", off))
	}
	_, err = c.cfg.Fetcher.Fetch(ctx, upstream.FetchRequest{URL: src, Offset: w.Size(), Progress: progress}, w)
	if errors.Is(err, upstream.ErrNoResume) {
		log.Info("the server cannot resume; downloading from the start")
		if err = w.Reset(); err == nil {
			_, err = c.cfg.Fetcher.Fetch(ctx, upstream.FetchRequest{URL: src, Progress: progress}, w)
		}
	}
	if err != nil {
		// Keep the bytes that arrived: the next attempt resumes from them.
		w.Suspend()
		return err
	}
	n := w.Size()
	if wantTotal > 0 && n != wantTotal {
		// A resumed response that ended early without an error.
		w.Suspend()
		return fmt.Errorf("upstream: downloaded %d of %d bytes", n, wantTotal)
	}
	layout, err := c.cfg.Inspect(w.TempPath())
	if err != nil {
		return err
	}
	var want cache.Digest
	if e.img.SHA256 != "" {
		if want, err = cache.ParseDigest(e.img.SHA256); err != nil {
			return err
		}
	}
	d, err := w.Commit(ctx, n, want)
	if err != nil {
		return err
	}
	if err := c.cfg.Index.PutMeta(MetaLayout, d, layout); err != nil {
		return err
	}
	rec := cache.BaseRecord{Key: e.key, Digest: d, Size: n, URL: e.img.URL, OpenshiftVersion: e.img.OpenshiftVersion, FetchedAt: time.Now().UTC()}
	if err := c.cfg.Index.PutBase(rec); err != nil {
		return err
	}
	c.mu.Lock()
	e.state, e.err, e.rec, e.done, e.total, e.evicted = StateReady, "", rec, n, n, false
	close(e.ready)
	c.mu.Unlock()
	log.Info("OS image ready", zap.String("digest", d.String()), zap.Int64("bytes", n), zap.Duration("took", time.Since(start)))
	if seed != "" {
		if err := os.Remove(seed); err != nil {
			log.Warn("removing the ingested copy", zap.String("path", seed), zap.Error(err))
		}
	}
	return nil
}

// Lookup resolves a request's version (an RHCOS version, else an OpenShift
// version, §D.5), architecture and image type. minimal-iso resolves to the
// full-iso entry it is derived from.
func (c *Catalog) Lookup(version, arch, imageType string) (rec cache.BaseRecord, configured bool, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.find(version, arch, lookupType(imageType))
	if e == nil {
		return cache.BaseRecord{}, false, nil
	}
	if e.state != StateReady {
		return cache.BaseRecord{}, true, fmt.Errorf("%w: %s %s is %s", ErrNotReady, e.key.Version, e.key.Arch, e.state)
	}
	e.served.Store(time.Now().UnixNano())
	return e.rec, true, nil
}

// lookupType is the configured image type a request's type is served from:
// minimal ISOs derive from full ISOs.
func lookupType(imageType string) string {
	if imageType == config.TypeDisconnectedISO {
		return config.TypeDisconnectedISO
	}
	return config.TypeFullISO
}

func (c *Catalog) find(version, arch, typ string) *imageEntry {
	for _, e := range c.entries {
		if e.key.Arch == arch && e.key.Type == typ && e.img.Version == version {
			return e
		}
	}
	for _, e := range c.entries {
		if e.key.Arch == arch && e.key.Type == typ && e.img.OpenshiftVersion == version {
			return e
		}
	}
	return nil
}
