package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
	"golang.org/x/sync/singleflight"
)

// built is a customized image ready to serve: the plan and the headers
// derived from it, computed once per download.
type built struct {
	plan    customize.Plan
	etag    string
	modTime time.Time
	fetched time.Time // when its upstream answers were asked for
	// held are the files of its own the plan reads (a spilled ramdisk, a
	// large ignition archive); a plan with any is never a snapshot.
	held []*heldFile
}

func newBuilt(p customize.Plan, lastMod string) *built {
	return &built{plan: p, etag: p.ETag(), modTime: lastModified(lastMod)}
}

// cost is the memory a built plan holds: its patches and bookkeeping.
func (b *built) cost() int64 {
	n := int64(256) + 48*int64(len(b.plan.Segs))
	for _, s := range b.plan.Segs {
		if s.Kind == customize.FromData {
			n += int64(len(s.Data))
		}
	}
	return n
}

// snapshotGroup holds the snapshots of one InfraEnv for one credential:
// dropping the group withdraws every download of that InfraEnv that the
// credential started, at once.
type snapshotGroup struct {
	mu    sync.Mutex
	items map[string]*built // by item key (image kind and base digest)
	dead  bool              // dropped: nothing more is stored here
}

func (g *snapshotGroup) cost() int64 {
	n := int64(128)
	for k, b := range g.items {
		n += int64(len(k)) + b.cost()
	}
	return n
}

// snapshots keeps the plan of each download for the Range requests that
// continue it. A download's first request (no Range, or a Range from byte
// 0, or HEAD) always asks assisted-service afresh, so a new download sees
// the InfraEnv's current state; the requests that continue it (a BMC
// mounting an ISO sends thousands) reuse that answer.
//
// Snapshots never extend access: one lives at most IGNITION_CACHE_TTL
// from the moment its upstream answers were asked for, however often it is
// used; a fresh request that assisted-service refuses (401, 403, 404) drops
// every snapshot of that InfraEnv for that credential; any other failed
// fresh request drops the snapshot it would have replaced. So a credential
// revoked at t0 is refused on its first request after min(next fresh
// request, fetch + TTL).
//
// Concurrent identical fetches share one set of upstream calls; a failure
// is shared, never cached. The snapshots live in a cache bounded in bytes
// (SNAPSHOT_CACHE_MAX_BYTES): dropping one only costs a refetch.
type snapshots struct {
	hot    *cache.Hot[*snapshotGroup]
	ttl    time.Duration
	flight singleflight.Group
	mu     sync.Mutex // serializes the creation of groups

	slots *limiter // bounds the fetches in flight (MAX_CONCURRENT_UPSTREAM_REQUESTS)

	hits, misses, coalesced *metrics.Counter
	joined                  func() // test hook: a fetch has joined its flight
}

func newSnapshots(ttl time.Duration, maxBytes int64, upstreamSlots int, set *metrics.Set) (*snapshots, error) {
	if maxBytes <= 0 {
		maxBytes = config.DefaultSnapshotCacheMaxBytes
	}
	if upstreamSlots <= 0 {
		upstreamSlots = config.DefaultMaxConcurrentUpstreamRequests
	}
	hot, err := cache.NewHot[*snapshotGroup](maxBytes)
	if err != nil {
		return nil, err
	}
	return &snapshots{
		hot: hot, ttl: ttl, slots: newLimiter(upstreamSlots, 0),
		hits:      set.GetOrCreateCounter(`isoedge_snapshot_requests_total{result="hit"}`),
		misses:    set.GetOrCreateCounter(`isoedge_snapshot_requests_total{result="miss"}`),
		coalesced: set.GetOrCreateCounter(`isoedge_snapshot_requests_total{result="coalesced"}`),
	}, nil
}

// snapshotGroupKey names an InfraEnv as seen with one credential. The
// credential is represented by its kind and a SHA-256 fingerprint, so a
// cached answer is only ever reused for the same credential (or for other
// requests without one), and the key holds no secret.
func snapshotGroupKey(imageID string, cred upstream.Credential) string {
	var b bytes.Buffer
	b.Grow(128)
	b.WriteString(imageID)
	b.WriteByte('|')
	b.WriteString(cred.Kind.String())
	b.WriteByte('|')
	b.WriteString(cred.Fingerprint())
	return b.String()
}

// snapshotItemKey names what else changes a built image: the route kind
// and the base image it is built on.
func snapshotItemKey(kind string, base cache.Digest) string {
	return kind + "|" + base.Hex()
}

// cached returns the live snapshot of (group, item) for a request that
// continues a download, or nil.
func (s *snapshots) cached(group, item string) *built {
	if s.ttl <= 0 {
		return nil
	}
	b := s.lookup(group, item)
	if b != nil {
		s.hits.Inc()
	}
	return b
}

// fetch builds the image of (group, item) from fresh upstream answers,
// coalesced with identical concurrent builds, and keeps it as the
// snapshot its download's later requests continue from.
func (s *snapshots) fetch(ctx context.Context, group, item string, build func(context.Context) (*built, error)) (*built, error) {
	ran := false // this request's build ran; singleflight's Shared is true for the leader too
	ch := s.flight.DoChan(group+"\x00"+item, func() (any, error) {
		ran = true
		// Only the request that calls upstream takes an upstream slot:
		// those that join its flight add no load upstream (a PXE farm's
		// stampede is one call).
		release, ok := s.slots.acquire()
		if !ok {
			return nil, errUpstreamBusy
		}
		defer release()
		start := time.Now()
		b, err := build(ctx)
		if err != nil {
			s.dropAfter(group, item, err)
			return nil, err
		}
		b.fetched = start
		s.store(group, item, b)
		return b, nil
	})
	if s.joined != nil {
		s.joined()
	}
	select {
	case r := <-ch:
		if ran {
			s.misses.Inc()
		} else {
			s.coalesced.Inc()
		}
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*built), nil
	case <-ctx.Done():
		// Waiting on another request's fetch that outlives this one.
		return nil, fmt.Errorf("%w: %w", upstream.ErrUnavailable, ctx.Err())
	}
}

// lookup returns the live snapshot of (group, item), or nil.
func (s *snapshots) lookup(group, item string) *built {
	g, ok := s.hot.Get(group)
	if !ok {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.items[item]
	if b == nil || g.dead {
		return nil
	}
	if time.Since(b.fetched) >= s.ttl {
		delete(g.items, item)
		return nil
	}
	return b
}

// store keeps b as the snapshot of (group, item).
func (s *snapshots) store(group, item string, b *built) {
	if s.ttl <= 0 || len(b.held) > 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.hot.Get(group)
	if !ok {
		g = &snapshotGroup{items: map[string]*built{}}
	}
	g.mu.Lock()
	if g.dead {
		g.mu.Unlock()
		return
	}
	g.items[item] = b
	for k, o := range g.items {
		if time.Since(o.fetched) >= s.ttl {
			delete(g.items, k)
		}
	}
	cost := g.cost()
	g.mu.Unlock()
	s.hot.SetWithTTL(group, g, cost, s.ttl)
	// ristretto applies sets asynchronously; the next request of this
	// download must find the snapshot.
	s.hot.Wait()
}

// dropAfter withdraws what a failed fresh fetch invalidates: the whole
// group when assisted-service refused the credential, else the item.
func (s *snapshots) dropAfter(group, item string, err error) {
	g, ok := s.hot.Get(group)
	if !ok {
		return
	}
	var se *upstream.StatusError
	refused := errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden || se.Code == http.StatusNotFound)
	g.mu.Lock()
	if refused {
		g.dead = true
		g.items = nil
	} else {
		delete(g.items, item)
	}
	g.mu.Unlock()
	if refused {
		s.hot.Del(group)
	}
}

// continuesDownload reports whether a Range header asks for bytes after the
// first: such a request continues a download already started.
func continuesDownload(rangeHeader []byte) bool {
	const prefix = "bytes="
	if !bytes.HasPrefix(rangeHeader, []byte(prefix)) {
		return false
	}
	spec := bytes.TrimLeft(rangeHeader[len(prefix):], " ")
	if len(spec) == 0 {
		return false
	}
	if spec[0] == '-' {
		return true // suffix range
	}
	i := 0
	for i < len(spec) && spec[i] == '0' {
		i++
	}
	return i < len(spec) && spec[i] >= '1' && spec[i] <= '9'
}
