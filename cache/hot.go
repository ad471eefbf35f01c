package cache

import (
	"errors"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Hot is a typed in-memory cache (ristretto) in front of slower lookups,
// such as decoded index records. It is safe for concurrent use.
//
// It is a cache, not a map: Set is applied asynchronously and may drop or
// reject a new item, so callers must always be able to recompute a value.
// Call Wait to make preceding Sets visible, mainly in tests.
type Hot[V any] struct {
	c *ristretto.Cache[string, V]
}

// Counter bounds for the admission policy (about 3 bytes each).
const (
	minCounters = 1000
	maxCounters = 1 << 22
)

// NewHot returns a cache holding at most maxCost units of cost. The unit is
// whatever callers pass to Set (bytes, or 1 per item); ristretto's own
// per-item overhead is not added, so the bound is exactly in caller units.
func NewHot[V any](maxCost int64) (*Hot[V], error) {
	if maxCost <= 0 {
		return nil, errors.New("cache: hot: maxCost must be positive")
	}
	c, err := ristretto.NewCache(&ristretto.Config[string, V]{
		NumCounters:        numCounters(maxCost),
		MaxCost:            maxCost,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, err
	}
	return &Hot[V]{c: c}, nil
}

// numCounters sizes the admission sketch at ten counters per unit of cost,
// which is ristretto's 10x-items advice when costs are 1 per item, clamped
// so that byte-valued costs do not allocate a huge sketch.
func numCounters(maxCost int64) int64 {
	n := maxCost
	if n <= maxCounters/10 {
		n *= 10
	}
	return min(max(n, minCounters), maxCounters)
}

// Get returns the value for key, if present and not expired.
func (h *Hot[V]) Get(key string) (V, bool) {
	return h.c.Get(key)
}

// Set stores v under key with the given cost (values below 1 count as 1).
// It reports whether the set was accepted into the buffer; false means it
// was dropped, which callers may ignore.
func (h *Hot[V]) Set(key string, v V, cost int64) bool {
	return h.c.Set(key, v, max(cost, 1))
}

// SetWithTTL is Set with an expiry: a ttl of 0 means none, a negative ttl
// stores nothing and returns false. Get stops returning the value once ttl
// has passed; memory is reclaimed by a background sweep a few seconds later.
func (h *Hot[V]) SetWithTTL(key string, v V, cost int64, ttl time.Duration) bool {
	return h.c.SetWithTTL(key, v, max(cost, 1), ttl)
}

// Del removes key.
func (h *Hot[V]) Del(key string) {
	h.c.Del(key)
}

// Wait blocks until preceding Sets and Dels have been applied.
func (h *Hot[V]) Wait() {
	h.c.Wait()
}

// Close stops the cache's goroutines; the Hot must not be used afterwards.
func (h *Hot[V]) Close() {
	h.c.Close()
}
