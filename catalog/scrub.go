package catalog

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/cache"
	"go.uber.org/zap"
)

// scrubber re-verifies stored blobs in the background: bytes at rest rot,
// and a blob whose content no longer matches its digest must never be
// served again. It never holds readiness back.
type scrubber struct {
	rate     int64         // bytes per second; 0 disables the scrub
	interval time.Duration // between passes

	mu        sync.Mutex
	running   bool
	lastStart time.Time
	lastEnd   time.Time
	corrupt   int // blobs found damaged since start

	bytes   *metrics.Counter
	ok      *metrics.Counter
	damaged *metrics.Counter
}

func newScrubber(rate int64, interval time.Duration, set *metrics.Set) *scrubber {
	if interval <= 0 {
		interval = 24 * time.Hour
	}
	s := &scrubber{
		rate: rate, interval: interval,
		bytes:   set.GetOrCreateCounter("isoedge_scrub_bytes_total"),
		ok:      set.GetOrCreateCounter(`isoedge_scrub_blobs_total{result="ok"}`),
		damaged: set.GetOrCreateCounter(`isoedge_scrub_blobs_total{result="damaged"}`),
	}
	set.GetOrCreateGauge("isoedge_scrub_last_completed_timestamp_seconds", func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.lastEnd.IsZero() {
			return 0
		}
		return float64(s.lastEnd.Unix())
	})
	return s
}

// ScrubStatus is the scrub part of the /health body.
type ScrubStatus struct {
	Enabled       bool      `json:"enabled"`
	Running       bool      `json:"running"`
	LastStarted   time.Time `json:"last_started,omitzero"`
	LastCompleted time.Time `json:"last_completed,omitzero"`
	DamagedFound  int       `json:"damaged_found"`
}

func (s *scrubber) status() ScrubStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ScrubStatus{Enabled: s.rate > 0, Running: s.running, LastStarted: s.lastStart, LastCompleted: s.lastEnd, DamagedFound: s.corrupt}
}

// scrubLoop runs a pass at start and then every interval until ctx ends.
func (c *Catalog) scrubLoop(ctx context.Context) {
	s := c.scrub
	if s.rate <= 0 {
		return
	}
	for {
		c.scrubPass(ctx)
		t := time.NewTimer(s.interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// scrubPass hashes every committed blob at the scrub rate. A blob whose
// content does not match its digest is quarantined and what it was is
// fetched or built again (blobGone).
func (c *Catalog) scrubPass(ctx context.Context) {
	s := c.scrub
	s.mu.Lock()
	s.running, s.lastStart = true, time.Now()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		if ctx.Err() == nil {
			s.lastEnd = time.Now()
		}
		s.mu.Unlock()
	}()
	ds, err := c.cfg.Store.List()
	if err != nil {
		c.log.Warn("scrub: listing the store", zap.Error(err))
		return
	}
	for _, d := range ds {
		if ctx.Err() != nil {
			return
		}
		err := c.cfg.Store.Verify(ctx, d, s.rate)
		switch {
		case err == nil:
			if size, err := c.cfg.Store.Stat(d); err == nil {
				s.bytes.AddInt64(size)
			}
			s.ok.Inc()
		case errors.Is(err, cache.ErrDigestMismatch):
			if qerr := c.cfg.Store.Quarantine(d); qerr != nil {
				c.log.Error("scrub: quarantining a damaged blob", zap.String("digest", d.String()), zap.Error(qerr))
			}
			c.blobGone(d, "stored bytes no longer match their digest (found by the scrub)")
			// Counted once nothing resolves to the blob any more.
			s.damaged.Inc()
			s.mu.Lock()
			s.corrupt++
			s.mu.Unlock()
		case errors.Is(err, cache.ErrNotFound), ctx.Err() != nil:
			// Removed meanwhile (eviction), or stopping.
		default:
			c.log.Warn("scrub: verifying a blob", zap.String("digest", d.String()), zap.Error(err))
		}
	}
}
