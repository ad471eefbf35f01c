package catalog

import (
	"errors"
	"fmt"
	"os"

	"github.com/isoedge/isoedge/cache"
	"go.uber.org/zap"
)

// Open returns a read-only file of blob d for one response, counted in use
// (never evicted) until release is called. A blob missing from the store
// is treated like a damaged one (blobGone) and the request is told to come
// back: the error wraps ErrNotReady.
func (c *Catalog) Open(d cache.Digest) (f *os.File, release func(), err error) {
	f, release, err = c.files.acquire(d)
	if errors.Is(err, cache.ErrNotFound) {
		c.blobGone(d, "stored file is missing")
		return nil, nil, fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	return f, release, err
}

// InUse reports whether a response streams from blob d.
func (c *Catalog) InUse(d cache.Digest) bool { return c.files.inUse(d) }

// blobGone withdraws blob d, which is missing or no longer holds its
// content, and builds again what it was: a base image is downloaded again
// (the image is failing meanwhile), a derived one (minimal template,
// nmstatectl archive) is rebuilt. Nothing resolves to d once this returns.
func (c *Catalog) blobGone(d cache.Digest, reason string) {
	c.mu.Lock()
	var bases, parents []*imageEntry
	for _, e := range c.entries {
		if e.state != StateReady {
			continue
		}
		if e.rec.Digest == d {
			bases = append(bases, e)
			e.state, e.failing, e.derivedOK, e.err = StatePending, true, false, reason
			e.rec, e.ready = cache.BaseRecord{}, make(chan struct{})
		}
	}
	c.mu.Unlock()
	c.forget(d)
	if len(bases) > 0 {
		// Before any download starts again: the same content committed
		// anew must keep the layout it writes.
		if err := c.cfg.Index.DeleteMeta(MetaLayout, d); err != nil {
			c.log.Warn("dropping the layout of a damaged image", zap.Error(err))
		}
	}
	for _, e := range bases {
		c.log.Error("stored OS image is damaged or missing; downloading it again", zap.String("version", e.key.Version),
			zap.String("arch", e.key.Arch), zap.String("digest", d.String()), zap.String("reason", reason))
		if err := c.cfg.Index.DeleteBase(e.key); err != nil {
			c.log.Warn("dropping the record of a damaged image", zap.Error(err))
		}
		c.restart(e)
	}
	if len(bases) > 0 {
		return
	}
	// A derived blob: its parents build it again.
	c.mu.RLock()
	recs := make(map[*imageEntry]cache.BaseRecord)
	for _, e := range c.entries {
		if e.state == StateReady {
			recs[e] = e.rec
		}
	}
	c.mu.RUnlock()
	for e, rec := range recs {
		if c.derivesFrom(rec, d) {
			parents = append(parents, e)
		}
	}
	for _, e := range parents {
		c.log.Error("derived image is damaged or missing; building it again", zap.String("version", e.key.Version),
			zap.String("arch", e.key.Arch), zap.String("digest", d.String()), zap.String("reason", reason))
		c.mu.Lock()
		e.derivedOK, e.failing, e.err = false, true, reason
		c.mu.Unlock()
		c.restart(e)
	}
}

// derivesFrom reports whether blob d was derived from the image rec (its
// nmstatectl archive or a minimal template), and drops that derivation.
func (c *Catalog) derivesFrom(rec cache.BaseRecord, d cache.Digest) bool {
	index := c.cfg.Index
	found := false
	nm, err := index.Derived(DerivedNmstate, rec.Digest, "")
	if err == nil && nm == d {
		found = true
		index.DeleteDerived(DerivedNmstate, rec.Digest, "")
		index.DeleteMeta(MetaNmstate, d)
	}
	for _, n := range []cache.Digest{nm, {}} {
		key, err := c.minimalKey(rec, n)
		if err != nil {
			continue
		}
		if m, err := index.Derived(DerivedMinimal, rec.Digest, key); err == nil && m == d {
			found = true
			index.DeleteDerived(DerivedMinimal, rec.Digest, key)
			index.DeleteMeta(MetaLayout, d)
		}
	}
	return found
}
