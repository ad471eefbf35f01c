package proxy

import (
	"bytes"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
	"golang.org/x/sync/singleflight"
)

// built is a customized image ready to serve: the plan and the headers
// derived from it, computed once per download.
type built struct {
	plan      customize.Plan
	etag      string
	modTime   time.Time
	refreshed atomic.Int64 // unix nanoseconds of the last TTL refresh
}

func newBuilt(p customize.Plan, lastMod string) *built {
	return &built{plan: p, etag: p.ETag(), modTime: lastModified(lastMod)}
}

// cost is the memory a built plan holds: its patches.
func (b *built) cost() int64 {
	n := int64(64)
	for _, s := range b.plan.Segs {
		if s.Kind == customize.FromData {
			n += int64(len(s.Data))
		}
	}
	return n
}

// snapshots keeps the plan of each download for the Range requests that
// continue it. A download's first request (no Range, or a Range from byte
// 0) always asks assisted-service afresh, so a new download sees the
// InfraEnv's current state; the requests that continue it (a BMC mounting
// an ISO sends thousands) reuse that answer. Concurrent identical fetches
// share one set of upstream calls; a failure is shared, never cached.
//
// Every get is counted in isoedge_snapshot_requests_total by result, as
// groupcache's Stats count gets, hits, loads and deduplicated loads.
type snapshots struct {
	hot   *cache.Hot[*built]
	ttl   time.Duration
	group singleflight.Group

	hits      *metrics.Counter // served from the cache
	misses    *metrics.Counter // built by this request
	coalesced *metrics.Counter // waited for an identical request's build
}

func newSnapshots(ttl time.Duration, set *metrics.Set) (*snapshots, error) {
	hot, err := cache.NewHot[*built](256 << 20)
	if err != nil {
		return nil, err
	}
	const name = "isoedge_snapshot_requests_total"
	return &snapshots{
		hot:       hot,
		ttl:       ttl,
		hits:      set.GetOrCreateCounter(name + `{result="hit"}`),
		misses:    set.GetOrCreateCounter(name + `{result="miss"}`),
		coalesced: set.GetOrCreateCounter(name + `{result="coalesced"}`),
	}, nil
}

// snapshotKey names everything that changes a built image: the route kind,
// the image, the base image it is built on, and the credential. The
// credential is represented by its kind and a SHA-256 fingerprint, so a
// cached answer is only ever reused for the same credential (or for other
// requests without one), and the key holds no secret.
func snapshotKey(kind, imageID string, base cache.Digest, cred upstream.Credential) string {
	var b bytes.Buffer
	b.Grow(160)
	b.WriteString(kind)
	b.WriteByte('|')
	b.WriteString(imageID)
	b.WriteByte('|')
	b.WriteString(base.Hex())
	b.WriteByte('|')
	b.WriteString(cred.Kind.String())
	b.WriteByte('|')
	b.WriteString(cred.Fingerprint())
	return b.String()
}

// get returns the built image for key: from the cache when the request
// continues a download, else from build (coalesced with identical
// concurrent builds), caching the result.
func (s *snapshots) get(key string, continuing bool, build func() (*built, error)) (*built, error) {
	if continuing && s.ttl > 0 {
		if b, ok := s.hot.Get(key); ok {
			// Refreshed on use, at most twice per TTL: a set wakes
			// ristretto's goroutine, too costly for every Range request.
			now := time.Now().UnixNano()
			if last := b.refreshed.Load(); now-last > int64(s.ttl/2) && b.refreshed.CompareAndSwap(last, now) {
				s.hot.SetWithTTL(key, b, b.cost(), s.ttl)
			}
			s.hits.Inc()
			return b, nil
		}
	}
	// singleflight's shared result is true for the caller that ran fn as
	// well as for those that waited, so the leader marks itself.
	led := false
	v, err, _ := s.group.Do(key, func() (any, error) {
		led = true
		b, err := build()
		if err == nil && s.ttl > 0 {
			b.refreshed.Store(time.Now().UnixNano())
			s.hot.SetWithTTL(key, b, b.cost(), s.ttl)
			// ristretto applies sets asynchronously; the next request of
			// this download must find the snapshot.
			s.hot.Wait()
		}
		return b, err
	})
	if led {
		s.misses.Inc()
	} else {
		s.coalesced.Inc()
	}
	if err != nil {
		return nil, err
	}
	return v.(*built), nil
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
