package catalog

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/upstream"
	"go.uber.org/zap"
)

// Run keeps the configured images servable until ctx ends: first every
// image already stored is marked ready (no download, no parsing), then
// missing ones are downloaded, at most Concurrency at a time, and what
// derives from each is built; every failure is retried with backoff.
func (c *Catalog) Run(ctx context.Context) {
	c.rebuildIndex(ctx)
	var pending []*imageEntry
	for _, e := range c.entries {
		if !c.restore(e) {
			pending = append(pending, e)
		}
	}
	// The scrub runs beside everything else and never holds readiness back.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.scrubLoop(ctx)
	}()
	var first sync.WaitGroup
	c.mu.Lock()
	c.runCtx = ctx
	for _, e := range c.entries {
		if c.cfg.Lazy && e.state != StateReady {
			continue // fetched on its first request
		}
		first.Add(1)
		c.startLocked(ctx, e, first.Done)
	}
	c.mu.Unlock()
	first.Wait()
	c.mu.Lock()
	c.firstPass = true
	c.mu.Unlock()
	c.enforceBudget(nil)
	c.log.Info("first pass over OS images done", zap.Int("images", len(c.entries)), zap.Int("stored", c.readyCount()), zap.Int("downloaded", len(pending)), zap.Bool("lazy", c.cfg.Lazy))
	<-ctx.Done()
	c.wg.Wait()
}

// startLocked starts a keep goroutine for e; firstDone is called once
// after its first attempt. c.mu must be held.
func (c *Catalog) startLocked(ctx context.Context, e *imageEntry, firstDone func()) {
	e.running = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.keep(ctx, e, firstDone)
	}()
}

// restart starts a keep goroutine for e unless one runs or Run has not
// started (Run starts them).
func (c *Catalog) restart(e *imageEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !e.running && c.runCtx != nil && c.runCtx.Err() == nil {
		c.startLocked(c.runCtx, e, func() {})
	}
}

// keep brings e to servable: it downloads the image unless it is stored,
// then builds what derives from it; each failure marks e failing and is
// retried with exponential backoff. It returns once e is servable, or
// when ctx ends.
func (c *Catalog) keep(ctx context.Context, e *imageEntry, firstDone func()) {
	var once sync.Once
	markFirst := func() { once.Do(firstDone) }
	defer markFirst()
	cleared := false
	clearRunning := func() {
		c.mu.Lock()
		e.running = false
		c.mu.Unlock()
		cleared = true
	}
	defer func() {
		if !cleared {
			clearRunning()
		}
	}()
	backoff := c.cfg.MinBackoff
	wait := func() bool {
		t := time.NewTimer(backoff)
		defer t.Stop()
		select {
		case <-t.C:
			backoff = min(2*backoff, c.cfg.MaxBackoff)
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		if !c.stored(e) {
			if !c.acquireSlot(ctx) {
				return
			}
			err := c.fetch(ctx, e)
			<-c.sem
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				c.failed(e, "OS image download failed", err, backoff, true)
				markFirst()
				if !wait() {
					return
				}
				continue
			}
			backoff = c.cfg.MinBackoff
		}
		if !c.acquireSlot(ctx) {
			return
		}
		err := c.derive(ctx, e)
		<-c.sem
		markFirst()
		if err == nil {
			// Done: e may be evicted by another image's budget pass from
			// now on, as that pass may be the one that must make room.
			clearRunning()
			c.enforceBudget(e)
			return
		}
		if ctx.Err() != nil {
			return
		}
		c.failed(e, "building what derives from an OS image failed", err, backoff, false)
		if !wait() {
			return
		}
	}
}

// acquireSlot takes one of the Concurrency slots for downloads and
// derived builds.
func (c *Catalog) acquireSlot(ctx context.Context) bool {
	select {
	case c.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// stored reports whether e's image is in the store.
func (c *Catalog) stored(e *imageEntry) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return e.state == StateReady
}

// failed records a failed attempt: e is failing until it next succeeds.
func (c *Catalog) failed(e *imageEntry, msg string, err error, retryIn time.Duration, download bool) {
	c.mu.Lock()
	e.failing, e.err, e.retryAt = true, err.Error(), time.Now().Add(retryIn)
	if download {
		e.state = StateFailed
		e.attempts++
	}
	c.mu.Unlock()
	c.log.Error(msg, zap.String("version", e.key.Version), zap.String("arch", e.key.Arch), zap.String("type", e.key.Type),
		zap.String("url", upstream.RedactURL(e.img.URL)), zap.Error(err), zap.Duration("retry_in", retryIn))
}

// derive runs the Derive hook for a stored image and records the outcome.
func (c *Catalog) derive(ctx context.Context, e *imageEntry) error {
	c.mu.RLock()
	rec := e.rec
	c.mu.RUnlock()
	err := c.cfg.Derive(ctx, rec)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.state != StateReady || e.rec.Digest != rec.Digest {
		return errors.New("catalog: the image changed while its derived images were built")
	}
	var warning *DeriveWarning
	switch {
	case errors.As(err, &warning):
		// What could be built was (no nmstatectl in the image, or no
		// minimal ISO configured): servable as is, and not retried, since
		// what is missing is missing from the image or the configuration.
		e.warning = warning.Error()
		c.log.Warn("derived images incomplete", zap.String("version", e.key.Version), zap.String("arch", e.key.Arch), zap.Error(err))
	case err != nil:
		e.derivedOK = false
		return err
	default:
		e.warning = ""
	}
	e.derivedOK, e.failing, e.err, e.retryAt, e.evicted = true, false, "", time.Time{}, false
	return nil
}

// Ensure is Lookup for a request: in lazy mode, or for an image evicted
// for the disk budget, it starts fetching an image not stored and waits up
// to LazyWait (or ctx) for it.
func (c *Catalog) Ensure(ctx context.Context, version, arch, imageType string) (cache.BaseRecord, bool, error) {
	rec, configured, err := c.Lookup(version, arch, imageType)
	if !configured || !errors.Is(err, ErrNotReady) {
		return rec, configured, err
	}
	c.mu.Lock()
	e := c.find(version, arch, lookupType(imageType))
	started := false
	if !e.running && e.state != StateEvicting && c.runCtx != nil && (c.cfg.Lazy || e.evicted) {
		c.log.Info("fetching OS image on request", zap.String("version", e.key.Version), zap.String("arch", e.key.Arch), zap.Bool("evicted", e.evicted))
		c.startLocked(c.runCtx, e, func() {})
		started = true
	}
	ready := e.ready
	c.mu.Unlock()
	if !c.cfg.Lazy && !started {
		return rec, configured, err // eager: a download in progress answers 503 at once
	}
	t := time.NewTimer(c.cfg.LazyWait)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
	case <-ctx.Done():
	}
	return c.Lookup(version, arch, imageType)
}
