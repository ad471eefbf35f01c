package upstream

import (
	"slices"

	"github.com/isoedge/isoedge/cache"
	"go.uber.org/zap"
)

// enforceBudget evicts least recently served images until the store fits
// MaxBytes. It never evicts keep (just stored), an image being served, or
// one whose blob another ready entry shares. An evicted image is fetched
// again on its next request.
func (p *Populator) enforceBudget(keep *imageEntry) {
	if p.cfg.MaxBytes <= 0 {
		return
	}
	// One pass at a time: two passes measuring the same store would both
	// evict for the same excess.
	p.budgetMu.Lock()
	defer p.budgetMu.Unlock()
	used, err := p.storeBytes()
	if err != nil {
		p.log.Warn("disk budget: measuring the store", zap.Error(err))
		return
	}
	for used > p.cfg.MaxBytes {
		victim := p.evictionCandidate(keep)
		if victim == nil {
			p.log.Warn("disk budget exceeded, nothing can be evicted", zap.Int64("used", used), zap.Int64("budget", p.cfg.MaxBytes))
			return
		}
		if err := p.evict(victim); err != nil {
			p.log.Error("disk budget: evicting", zap.String("version", victim.key.Version), zap.String("arch", victim.key.Arch), zap.Error(err))
			return
		}
		if used, err = p.storeBytes(); err != nil {
			return
		}
	}
}

// storeBytes is the size of every committed blob.
func (p *Populator) storeBytes() (int64, error) {
	ds, err := p.cfg.Store.List()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, d := range ds {
		if size, err := p.cfg.Store.Stat(d); err == nil {
			n += size
		}
	}
	return n, nil
}

// evictionCandidate returns the ready entry served least recently that may
// be evicted, or nil.
func (p *Populator) evictionCandidate(keep *imageEntry) *imageEntry {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var ready []*imageEntry
	for _, e := range p.entries {
		if e != keep && e.state == StateReady && (p.cfg.InUse == nil || !p.cfg.InUse(e.rec.Digest)) {
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
		for _, o := range p.entries {
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
func (p *Populator) evict(e *imageEntry) error {
	p.mu.RLock()
	rec, state := e.rec, e.state
	p.mu.RUnlock()
	if state != StateReady {
		return nil
	}
	if p.cfg.Evict != nil {
		// First what derives from it: the hook refuses while that is served.
		if err := p.cfg.Evict(rec); err != nil {
			return err
		}
	}
	p.mu.Lock()
	if e.state != StateReady || e.rec.Digest != rec.Digest {
		p.mu.Unlock()
		return nil // changed meanwhile; the next pass measures again
	}
	// Not ready while its files go; still "started", so no request starts
	// a download of the same content whose commit the removal would undo.
	e.state = StateEvicting
	p.mu.Unlock()
	err := p.removeStored(rec)
	p.mu.Lock()
	e.state, e.started, e.derived, e.warning, e.done, e.total = StatePending, false, "", "", 0, -1
	e.rec = cache.BaseRecord{}
	e.ready = make(chan struct{})
	p.mu.Unlock()
	if err != nil {
		return err
	}
	p.log.Info("evicted OS image for the disk budget", zap.String("version", rec.Key.Version), zap.String("arch", rec.Key.Arch), zap.Int64("bytes", rec.Size))
	return nil
}

// removeStored deletes an image's record, layout and blob, the record first
// so that a crash leaves at worst an unreferenced blob, swept at start.
func (p *Populator) removeStored(rec cache.BaseRecord) error {
	if err := p.cfg.Index.DeleteBase(rec.Key); err != nil {
		return err
	}
	if err := p.cfg.Index.DeleteMeta(MetaLayout, rec.Digest); err != nil {
		return err
	}
	return p.cfg.Store.Remove(rec.Digest)
}
