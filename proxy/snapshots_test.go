package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
)

func TestContinuesDownload(t *testing.T) {
	tests := []struct {
		h    string
		want bool
	}{
		{"", false},
		{"bytes=0-", false},
		{"bytes=0-99", false},
		{"bytes=00-5", false},
		{"bytes= 0-5", false},
		{"bytes=1-", true},
		{"bytes=100-199", true},
		{"bytes=007-", true},
		{"bytes= 5-", true},
		{"bytes=-500", true},
		{"bytes=", false},
		{"items=5-", false},
		{"5-", false},
		{"bytes=x-", false},
	}
	for _, tt := range tests {
		if got := continuesDownload([]byte(tt.h)); got != tt.want {
			t.Errorf("continuesDownload(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestSnapshotKeys(t *testing.T) {
	d := cache.DigestOf([]byte("base"))
	a := upstream.Credential{Kind: upstream.CredAPIKey, Value: "SECRET-123"}
	key := func(kind, id string, base cache.Digest, c upstream.Credential) string {
		return snapshotGroupKey(id, c) + "\x00" + snapshotItemKey(kind, base)
	}
	keys := map[string]string{
		"base":        key("full-iso", testID, d, a),
		"type":        key("minimal-iso", testID, d, a),
		"image":       key("full-iso", "other", d, a),
		"digest":      key("full-iso", testID, cache.DigestOf([]byte("other")), a),
		"cred value":  key("full-iso", testID, d, upstream.Credential{Kind: upstream.CredAPIKey, Value: "SECRET-124"}),
		"cred kind":   key("full-iso", testID, d, upstream.Credential{Kind: upstream.CredImageToken, Value: "SECRET-123"}),
		"no cred":     key("full-iso", testID, d, upstream.Credential{}),
		"auth header": key("full-iso", testID, d, upstream.Credential{Kind: upstream.CredAuthorization, Value: "SECRET-123"}),
	}
	seen := map[string]string{}
	for name, k := range keys {
		if strings.Contains(k, "SECRET") {
			t.Errorf("%s: key %q holds the credential", name, k)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s share the key %q", name, other, k)
		}
		seen[k] = name
	}
}

func newTestSnapshots(t *testing.T, ttl time.Duration) (*snapshots, *metrics.Set) {
	t.Helper()
	set := metrics.NewSet()
	s, err := newSnapshots(ttl, 1<<20, 64, set)
	if err != nil {
		t.Fatal(err)
	}
	return s, set
}

func TestSnapshotsCoalesceAndNoErrorCaching(t *testing.T) {
	s, _ := newTestSnapshots(t, time.Minute)
	var joined atomic.Int32
	s.joined = func() { joined.Add(1) }
	var builds atomic.Int32
	gate := make(chan struct{})
	build := func(context.Context) (*built, error) {
		builds.Add(1)
		<-gate
		return &built{etag: `"x"`}, nil
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b, err := s.fetch(context.Background(), "g", "k", build); err != nil || b.etag != `"x"` {
				t.Errorf("fetch = %v, %v", b, err)
			}
		}()
	}
	// Every fetch has joined the flight before the build may finish.
	waitCond(t, 10*time.Second, "10 fetches joined", func() bool { return joined.Load() == 10 })
	close(gate)
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Errorf("10 concurrent fetches built %d times, want 1", n)
	}
	if b := s.cached("g", "k"); b == nil || b.etag != `"x"` {
		t.Errorf("cached after fetch = %v", b)
	}

	boom := errors.New("boom")
	fails := 0
	failing := func(context.Context) (*built, error) { fails++; return nil, boom }
	for range 2 {
		if _, err := s.fetch(context.Background(), "g", "e", failing); !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
	}
	if fails != 2 {
		t.Errorf("a failure was cached: %d builds for 2 fetches", fails)
	}
}

// TestSnapshotLifetimeIsAbsolute: a snapshot used continuously still ends
// TTL after its fetch.
func TestSnapshotLifetimeIsAbsolute(t *testing.T) {
	// A lifetime renewed by use would never end; the bound only has to
	// catch that, and is generous for a busy machine.
	const ttl, bound = 300 * time.Millisecond, 30 * time.Second
	s, _ := newTestSnapshots(t, ttl)
	if _, err := s.fetch(context.Background(), "g", "k", func(context.Context) (*built, error) { return &built{etag: `"a"`}, nil }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for s.cached("g", "k") != nil {
		if time.Since(start) > bound {
			t.Fatalf("snapshot still served %v after its fetch (TTL %v)", time.Since(start), ttl)
		}
		time.Sleep(ttl / 30)
	}
	if age := time.Since(start); age > bound {
		t.Errorf("snapshot lived %v", age)
	}
}

// TestSnapshotDroppedAfterFailedFetch: a refused fresh fetch drops every
// snapshot of the group; any other failure drops the item it replaces.
func TestSnapshotDroppedAfterFailedFetch(t *testing.T) {
	s, _ := newTestSnapshots(t, time.Hour)
	ok := func(context.Context) (*built, error) { return &built{etag: `"a"`}, nil }
	for _, k := range []string{"full", "minimal", "pxe"} {
		if _, err := s.fetch(context.Background(), "g", k, ok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.fetch(context.Background(), "other", "full", ok); err != nil {
		t.Fatal(err)
	}
	// Any failure (here: a plan that cannot be built) drops that item only.
	if _, err := s.fetch(context.Background(), "g", "full", func(context.Context) (*built, error) {
		return nil, customize.ErrTooLarge
	}); err == nil {
		t.Fatal("failing fetch succeeded")
	}
	if s.cached("g", "full") != nil {
		t.Error("the snapshot a failed fresh fetch would replace is still served")
	}
	if s.cached("g", "minimal") == nil {
		t.Error("a failure of one item dropped another")
	}
	// A refusal drops the whole group, never another group.
	if _, err := s.fetch(context.Background(), "g", "pxe", func(context.Context) (*built, error) {
		return nil, &upstream.StatusError{Op: "ignition", Code: 401}
	}); err == nil {
		t.Fatal("refused fetch succeeded")
	}
	for _, k := range []string{"full", "minimal", "pxe"} {
		if s.cached("g", k) != nil {
			t.Errorf("%s still served after the credential was refused", k)
		}
	}
	if s.cached("other", "full") == nil {
		t.Error("a refusal dropped another credential's snapshot")
	}
}

// waitCond polls cond until it holds or timeout passes.
func waitCond(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSnapshotReuse checks through the handlers that a download's Range
// requests reuse its first request's upstream answers, and that a new
// download, another credential or another route asks again.
func TestSnapshotReuse(t *testing.T) {
	h := newHarness(t, harnessOpts{config: func(c *config.Config) { c.IgnitionCacheTTL = time.Minute }})
	ignitions := func() int {
		n := 0
		for _, c := range h.src.Calls() {
			if c.op == "ignition" {
				n++
			}
		}
		return n
	}
	iso := "/byid/" + testID + "/4.18/x86_64/full.iso"
	steps := []struct {
		name      string
		path      string
		hdr       map[string]string
		code      int
		wantCalls int // ignition calls so far
	}{
		{"first download", iso, nil, 200, 1},
		{"continuing range", iso, map[string]string{"Range": "bytes=100-199"}, 206, 1},
		{"suffix range", iso, map[string]string{"Range": "bytes=-10"}, 206, 1},
		{"range from 0 starts a new download", iso, map[string]string{"Range": "bytes=0-9"}, 206, 2},
		{"other credential", iso, map[string]string{"Range": "bytes=100-", "Authorization": "Bearer other"}, 206, 3},
		{"same other credential", iso, map[string]string{"Range": "bytes=200-", "Authorization": "Bearer other"}, 206, 3},
		{"other image type", "/byid/" + testID + "/4.18/x86_64/minimal.iso", map[string]string{"Range": "bytes=100-"}, 206, 4},
		{"pxe-initrd", "/images/" + testID + "/pxe-initrd?version=4.18", nil, 200, 5},
		{"pxe-initrd continuing", "/images/" + testID + "/pxe-initrd?version=4.18", map[string]string{"Range": "bytes=10-"}, 206, 5},
		{"addrsize continuing shares the initrd snapshot", "/images/" + testID + "/s390x-initrd-addrsize?version=4.18", map[string]string{"Range": "bytes=8-"}, 206, 5},
	}
	for _, st := range steps {
		r := h.do(http.MethodGet, st.path, st.hdr)
		if r.code != st.code {
			t.Errorf("%s: status %d, want %d", st.name, r.code, st.code)
		}
		if got := ignitions(); got != st.wantCalls {
			t.Errorf("%s: %d ignition calls so far, want %d", st.name, got, st.wantCalls)
		}
	}
	// A continuing Range request gets the same ETag as the download it
	// continues, so If-Range keeps working.
	first := h.get(iso)
	cont := h.do(http.MethodGet, iso, map[string]string{"Range": "bytes=5-9", "If-Range": first.header.Get("ETag")})
	if cont.code != 206 || cont.header.Get("ETag") != first.header.Get("ETag") {
		t.Errorf("continuing with If-Range: %d, ETag %q vs %q", cont.code, cont.header.Get("ETag"), first.header.Get("ETag"))
	}
}

// TestSnapshotNoTTL: with IGNITION_CACHE_TTL=0 every request asks again,
// like the original.
func TestSnapshotNoTTL(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	iso := "/byid/" + testID + "/4.18/x86_64/full.iso"
	for i := range 3 {
		h.do(http.MethodGet, iso, map[string]string{"Range": fmt.Sprintf("bytes=%d-", 100*(i+1))})
	}
	n := 0
	for _, c := range h.src.Calls() {
		if c.op == "ignition" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d ignition calls for 3 requests without a cache", n)
	}
}
