package upstream

import (
	"sync"
	"sync/atomic"
)

// DefaultMemoryMaxBytes is the default bound of a MemoryBudget
// (UPSTREAM_MEMORY_MAX_BYTES).
const DefaultMemoryMaxBytes int64 = 48 << 20

// MemoryBudget accounts the bytes from assisted-service held in memory
// across all requests, so their sum stays under a bound. It is safe for
// concurrent use.
type MemoryBudget struct {
	max  int64
	used atomic.Int64
}

// NewMemoryBudget returns a budget of max bytes; max <= 0 means
// DefaultMemoryMaxBytes.
func NewMemoryBudget(max int64) *MemoryBudget {
	if max <= 0 {
		max = DefaultMemoryMaxBytes
	}
	return &MemoryBudget{max: max}
}

// Acquire reserves n bytes and reports whether they fit; on false nothing
// is reserved. Every successful Acquire is paired with a Release of n.
func (b *MemoryBudget) Acquire(n int64) bool {
	if n < 0 {
		return false
	}
	for {
		used := b.used.Load()
		if n > b.max-used {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// Release returns n bytes reserved with Acquire. Releasing more than is
// reserved is a bug in the caller and panics.
func (b *MemoryBudget) Release(n int64) {
	if n < 0 || b.used.Add(-n) < 0 {
		panic("upstream: MemoryBudget released more than was acquired")
	}
}

// Used returns the bytes currently reserved.
func (b *MemoryBudget) Used() int64 { return b.used.Load() }

// Max returns the bound.
func (b *MemoryBudget) Max() int64 { return b.max }

// hold is memory counted in a MemoryBudget until it is released, once.
type hold struct {
	once   sync.Once
	budget *MemoryBudget
	n      int64
}

func (h *hold) release() {
	if h == nil {
		return
	}
	h.once.Do(func() { h.budget.Release(h.n) })
}
