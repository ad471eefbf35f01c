package proxy

import (
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

func TestSnapshotKey(t *testing.T) {
	d := cache.DigestOf([]byte("base"))
	a := upstream.Credential{Kind: upstream.CredAPIKey, Value: "SECRET-123"}
	keys := map[string]string{
		"base":        snapshotKey("full-iso", testID, d, a),
		"type":        snapshotKey("minimal-iso", testID, d, a),
		"image":       snapshotKey("full-iso", "other", d, a),
		"digest":      snapshotKey("full-iso", testID, cache.DigestOf([]byte("other")), a),
		"cred value":  snapshotKey("full-iso", testID, d, upstream.Credential{Kind: upstream.CredAPIKey, Value: "SECRET-124"}),
		"cred kind":   snapshotKey("full-iso", testID, d, upstream.Credential{Kind: upstream.CredImageToken, Value: "SECRET-123"}),
		"no cred":     snapshotKey("full-iso", testID, d, upstream.Credential{}),
		"auth header": snapshotKey("full-iso", testID, d, upstream.Credential{Kind: upstream.CredAuthorization, Value: "SECRET-123"}),
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

func TestSnapshotsCoalesceAndNoErrorCaching(t *testing.T) {
	s, err := newSnapshots(time.Minute, metrics.NewSet())
	if err != nil {
		t.Fatal(err)
	}
	var builds atomic.Int32
	gate := make(chan struct{})
	build := func() (*built, error) {
		builds.Add(1)
		<-gate
		return &built{etag: `"x"`}, nil
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b, err := s.get("k", false, build); err != nil || b.etag != `"x"` {
				t.Errorf("get = %v, %v", b, err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Errorf("10 concurrent gets built %d times, want 1", n)
	}

	boom := errors.New("boom")
	fails := 0
	failing := func() (*built, error) { fails++; return nil, boom }
	for range 2 {
		if _, err := s.get("e", true, failing); !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
	}
	if fails != 2 {
		t.Errorf("a failure was cached: %d builds for 2 gets", fails)
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
