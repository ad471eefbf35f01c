package catalog

import (
	"slices"

	"github.com/isoedge/isoedge/cache"
	"go.uber.org/zap"
)

// enforceBudget evicts least recently served images until the store fits
// MaxBytes. It never evicts keep (just stored), an image being served, or
// one whose blob another ready entry shares. An evicted image is fetched
// again on its next request.
func (c *Catalog) enforceBudget(keep *imageEntry) {
	if c.cfg.MaxBytes <= 0 {
		return
	}
	// One pass at a time: two passes measuring the same store would both
	// evict for the same excess.
	c.budgetMu.Lock()
	defer c.budgetMu.Unlock()
	used, err := c.storeBytes()
	if err != nil {
		c.log.Warn("disk budget: measuring the store", zap.Error(err))
		return
	}
	for used > c.cfg.MaxBytes {
		victim := c.evictionCandidate(keep)
		if victim == nil {
			c.log.Warn("disk budget exceeded, nothing can be evicted", zap.Int64("used", used), zap.Int64("budget", c.cfg.MaxBytes))
			return
		}
		if err := c.evict(victim); err != nil {
			c.log.Error("disk budget: evicting", zap.String("version", victim.key.Version), zap.String("arch", victim.key.Arch), zap.Error(err))
			return
		}
		if used, err = c.storeBytes(); err != nil {
			return
		}
	}
}

// storeBytes is the size of every committed blob.
func (c *Catalog) storeBytes() (int64, error) {
	ds, err := c.cfg.Store.List()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, d := range ds {
		if size, err := c.cfg.Store.Stat(d); err == nil {
			n += size
		}
	}
	return n, nil
}

// evictionCandidate returns the ready entry served least recently that may
// be evicted, or nil.
func (c *Catalog) evictionCandidate(keep *imageEntry) *imageEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ready []*imageEntry
	for _, e := range c.entries {
		if e != keep && e.state == StateReady && !e.running && !c.cfg.InUse(e.rec.Digest) {
			ready = append(ready, e)
		}
	}
	slices.SortStableFunc(ready, func(a, b *imageEntry) int {
		x, y := a.served.Load(), b.served.Load()
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	for _, e := range ready {
		shared := false
		for _, o := range c.entries {
			if o != e && o.state == StateReady && o.rec.Digest == e.rec.Digest {
				shared = true
			}
		}
		if !shared {
			return e
		}
	}
	return nil
}

// evict removes an image and what derives from it, and marks it not
// fetched. The index record goes first, so a crash between the steps
// leaves an unreferenced blob (swept at start), never a dangling record.
func (c *Catalog) evict(e *imageEntry) error {
	c.mu.RLock()
	rec, state := e.rec, e.state
	c.mu.RUnlock()
	if state != StateReady {
		return nil
	}
	if c.cfg.Evict != nil {
		// First what derives from it: the hook refuses while that is served.
		if err := c.cfg.Evict(rec); err != nil {
			return err
		}
	}
	c.mu.Lock()
	if e.state != StateReady || e.rec.Digest != rec.Digest {
		c.mu.Unlock()
		return nil // changed meanwhile; the next pass measures again
	}
	// Not ready while its files go (no request starts a download of the
	// same content whose commit the removal would undo), and no longer
	// required for readiness.
	e.state, e.evicted = StateEvicting, true
	c.mu.Unlock()
	err := c.removeStored(rec)
	c.mu.Lock()
	e.state, e.evicted, e.derivedOK, e.done, e.total = StatePending, true, false, 0, -1
	e.rec = cache.BaseRecord{}
	e.ready = make(chan struct{})
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.log.Info("evicted OS image for the disk budget", zap.String("version", rec.Key.Version), zap.String("arch", rec.Key.Arch), zap.Int64("bytes", rec.Size))
	return nil
}

// removeStored deletes an image's record, layout and blob, the record first
// so that a crash leaves at worst an unreferenced blob, swept at start.
func (c *Catalog) removeStored(rec cache.BaseRecord) error {
	if err := c.cfg.Index.DeleteBase(rec.Key); err != nil {
		return err
	}
	if err := c.cfg.Index.DeleteMeta(MetaLayout, rec.Digest); err != nil {
		return err
	}
	return c.cfg.Store.Remove(rec.Digest)
}
