package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/upstream"
	"go.uber.org/zap"
)

// errZeroDigest refuses an OS_IMAGES sha256 of all zeros up front: no
// content has that digest, and it must not read as "no check".
var errZeroDigest = fmt.Errorf("%w: sha256 is all zeros; no image can match it", cache.ErrDigestMismatch)

// fetch downloads, checks and commits one image: from the copy
// assisted-image-service left in DATA_DIR, the built-in sample, a sibling
// replica (PEERS, PEERS_DNS), or its URL, resuming an interrupted download
// only from the same version of the source.
func (c *Catalog) fetch(ctx context.Context, e *imageEntry) error {
	c.mu.Lock()
	e.state, e.done, e.total = StateDownloading, 0, -1
	c.mu.Unlock()
	log := c.log.With(zap.String("version", e.key.Version), zap.String("arch", e.key.Arch), zap.String("type", e.key.Type))
	start := time.Now()

	var want cache.Digest
	if e.img.SHA256 != "" {
		var err error
		if want, err = cache.ParseDigest(e.img.SHA256); err != nil {
			return err
		}
		if want.IsZero() {
			return errZeroDigest
		}
	}
	seed := ""
	if c.cfg.Seed != nil {
		seed = c.cfg.Seed(e.img)
	}
	src, w, resumable, cleanup, err := c.source(e, seed, log)
	if err != nil {
		return err
	}
	defer cleanup()
	defer w.Cancel()
	if seed == "" && c.cfg.Peers.Enabled() && peerEligible(e.img) {
		if c.fromPeers(ctx, e, log, want, start) {
			// Stored: the deferred Cancel drops what an interrupted
			// download from the source had written.
			return nil
		}
		if err := ctx.Err(); err != nil {
			if resumable {
				w.Suspend() // what the source sent is kept for the next attempt
			}
			return err
		}
	}
	if limit := c.imageLimit(); limit > 0 {
		w.Limit(limit)
	}
	kind := sourceKind(src)
	dst := c.sources.writer(kind, w)
	if config.IsDockerURL(src) {
		// The registry source hashes what it streams and checks it against
		// the image's <path>.sha256 and the entry's sha256: commit exactly
		// that digest.
		d, err := c.pull(ctx, e, log, dst)
		if err != nil {
			return err
		}
		want = d
	} else if err := c.download(ctx, e, log, src, w, dst, resumable); err != nil {
		if resumable && !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, cache.ErrTooLarge) && !errors.Is(err, upstream.ErrTooLarge) {
			// Keep the bytes that arrived (and the version they are of):
			// the next attempt resumes from them.
			w.Suspend()
		}
		return err
	}
	return c.store(ctx, e, log, w, want, kind, start)
}

// store checks what w holds as any download is checked (Inspect),
// commits it (with the digest want unless zero) and records it as e's
// image, fetched from a source of kind.
func (c *Catalog) store(ctx context.Context, e *imageEntry, log *zap.Logger, w *cache.Writer, want cache.Digest, kind string, start time.Time) error {
	n := w.Size()
	layout, err := c.cfg.Inspect(w.TempPath())
	if err != nil {
		return err
	}
	d, err := w.Commit(ctx, n, want)
	if err != nil {
		return err
	}
	if err := c.cfg.Index.PutMeta(MetaLayout, d, layout); err != nil {
		return err
	}
	rec := cache.BaseRecord{Key: e.key, Digest: d, Size: n, URL: sourceID(e.img.URL), OpenshiftVersion: e.img.OpenshiftVersion, FetchedAt: time.Now().UTC()}
	if err := c.cfg.Index.PutBase(rec); err != nil {
		return err
	}
	// Freshly stored counts as just used: the least recently served image
	// is evicted first, not the one a request is waiting for.
	e.served.Store(time.Now().UnixNano())
	c.mu.Lock()
	// evicted stays until what derives from it is built (derive): an
	// image fetched again on request does not make the service unready.
	e.state, e.err, e.rec, e.done, e.total, e.source = StateReady, "", rec, n, n, kind
	close(e.ready)
	c.mu.Unlock()
	log.Info("OS image ready", zap.String("digest", d.String()), zap.Int64("bytes", n), zap.String("source", kind), zap.Duration("took", time.Since(start)))
	return nil
}

// source returns where e's bytes come from and the writer they go to:
// resumable writers keep what a failed attempt wrote. seed is the path of
// a local copy to ingest, or "". cleanup runs after the attempt.
func (c *Catalog) source(e *imageEntry, seed string, log *zap.Logger) (src string, w *cache.Writer, resumable bool, cleanup func(), err error) {
	cleanup = func() {}
	switch {
	case seed != "":
		log.Info("ingesting the image assisted-image-service left in DATA_DIR", zap.String("path", seed))
		w, err = c.cfg.Store.Create()
		cleanup = func() {
			// Once ingested, the copy is redundant; until then it stays.
			if c.stored(e) {
				if err := os.Remove(seed); err != nil {
					log.Warn("removing the ingested copy", zap.String("path", seed), zap.Error(err))
				}
			}
		}
		return "file://" + seed, w, false, cleanup, err
	case e.img.URL == config.SampleURL:
		path := filepath.Join(c.cfg.TempDir, "sample.iso")
		if err := c.cfg.BuildSample(path, c.cfg.TempDir); err != nil {
			return "", nil, false, cleanup, fmt.Errorf("catalog: build sample image: %w", err)
		}
		w, err = c.cfg.Store.Create()
		return "file://" + path, w, false, func() { os.Remove(path) }, err
	}
	if config.IsDockerURL(e.img.URL) {
		// A layer is a compressed tar: a pull cannot resume mid-stream, so
		// it starts again; the temp file of an interrupted one is swept.
		w, err = c.cfg.Store.Create()
		return e.img.URL, w, false, cleanup, err
	}
	// A download interrupted by an error, a restart or a crash goes on
	// from what it already wrote.
	w, err = c.cfg.Store.Resume(partialKey(e))
	return e.img.URL, w, true, cleanup, err
}

// pull streams the file an OS image names in a container image into w
// and returns the digest it must be committed with.
func (c *Catalog) pull(ctx context.Context, e *imageEntry, log *zap.Logger, w io.Writer) (cache.Digest, error) {
	if c.cfg.Registry == nil {
		return cache.Digest{}, errors.New("catalog: no registry source configured")
	}
	req := upstream.RegistryRequestFor(e.img)
	if req.MaxBytes <= 0 || (c.imageLimit() > 0 && c.imageLimit() < req.MaxBytes) {
		req.MaxBytes = c.imageLimit()
	}
	req.Progress = c.progress(e, log, "pulling OS image")
	res, err := c.cfg.Registry.Fetch(ctx, req, w)
	if err != nil {
		return cache.Digest{}, err
	}
	log.Info("pulled OS image from its container image", zap.String("image_digest", res.Digest),
		zap.String("layer", res.Layer), zap.Bool("checked_against_image_sha256", res.Checksum != ""))
	return cache.ParseDigest(res.SHA256)
}

// progress returns the progress callback of a transfer into e: /health
// shows it, and the log gets msg at every tenth.
func (c *Catalog) progress(e *imageEntry, log *zap.Logger, msg string) func(done, total int64) {
	lastTenth := int64(-1)
	return func(done, total int64) {
		c.mu.Lock()
		e.done, e.total = done, total
		c.mu.Unlock()
		if total > 0 && done*10/total != lastTenth {
			lastTenth = done * 10 / total
			log.Info(msg, zap.Int64("percent", lastTenth*10))
		}
	}
}

// imageLimit is the largest image a download may write: OS_IMAGE_MAX_BYTES,
// and never more than the whole disk budget.
func (c *Catalog) imageLimit() int64 {
	limit := c.cfg.MaxImageBytes
	if c.cfg.MaxBytes > 0 && (limit <= 0 || c.cfg.MaxBytes < limit) {
		limit = c.cfg.MaxBytes
	}
	return limit
}

// download streams src into w through dst (w, counted). A resumable
// writer continues only from bytes of the same version of the source (its
// validator, sent as If-Range); otherwise, or when the source changed, it
// starts over.
func (c *Catalog) download(ctx context.Context, e *imageEntry, log *zap.Logger, src string, w *cache.Writer, dst io.Writer, resumable bool) error {
	req := upstream.FetchRequest{URL: src, MaxBytes: c.imageLimit(), Progress: c.progress(e, log, "downloading OS image")}
	if resumable {
		if w.Size() > 0 && w.Validator() == "" {
			// Bytes of an unknown version of the source: never mixed.
			if err := w.Reset(); err != nil {
				return err
			}
		}
		req.Offset, req.Validator = w.Size(), w.Validator()
		// The version the bytes are of is on disk before the first of them.
		req.OnResponse = func(validator string, _ int64) error {
			if w.Size() > 0 {
				return nil
			}
			return w.SetValidator(validator)
		}
	}
	if req.Offset > 0 {
		log.Info("resuming OS image download", zap.Int64("offset", req.Offset))
	}
	_, err := c.cfg.Fetcher.Fetch(ctx, req, dst)
	if errors.Is(err, upstream.ErrNoResume) {
		log.Info("the source changed or cannot resume; downloading from the start")
		if err = w.Reset(); err == nil {
			req.Offset, req.Validator = 0, ""
			_, err = c.cfg.Fetcher.Fetch(ctx, req, dst)
		}
	}
	return err
}
