package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/upstream"
)

const testSource = "https://mirror.example/rhcos-418.iso"

// fakePeerBases adds the catalog's peer side to fakeBases: it records the
// harness's base image (4.18 x86_64 full-iso from testSource) and nothing
// else.
type fakePeerBases struct {
	*fakeBases
	rec    cache.BaseRecord
	served atomic.Int32
}

func (f *fakePeerBases) InstanceID() string { return "instance-a" }

func (f *fakePeerBases) PeerBase(imageType, version, arch, sourceHash string) (cache.BaseRecord, bool) {
	k := cache.BaseKey{Type: imageType, Version: version, Arch: arch}
	if k == f.rec.Key && sourceHash == upstream.SourceHash(f.rec.URL) {
		return f.rec, true
	}
	return cache.BaseRecord{}, false
}

func (f *fakePeerBases) PeerBlob(d cache.Digest) (cache.BaseRecord, bool) {
	return f.rec, d == f.rec.Digest
}

func (f *fakePeerBases) PeerFillServed() { f.served.Add(1) }

func newPeerHarness(t *testing.T, plainHTTP bool) (*harness, *fakePeerBases) {
	var pb *fakePeerBases
	h := newHarness(t, harnessOpts{plainHTTP: plainHTTP, server: func(s *Server) {
		fb := s.bases.(*fakeBases)
		pb = &fakePeerBases{fakeBases: fb}
		s.bases = pb
	}})
	pb.rec = cache.BaseRecord{
		Key:    cache.BaseKey{Type: "full-iso", Version: "418.94.202401010000-0", Arch: "x86_64"},
		Digest: h.digest, Size: int64(len(h.base)), URL: testSource, FetchedAt: testBaseModTime,
	}
	return h, pb
}

func TestPeerRoutes(t *testing.T) {
	h, pb := newPeerHarness(t, false)
	lookup := upstream.PeerBasesPath + "full-iso/418.94.202401010000-0/x86_64?source=" + upstream.SourceHash(testSource)
	blob := upstream.PeerBlobsPath + h.digest.String()

	r := h.get(lookup)
	var b upstream.PeerBlob
	if r.code != 200 || json.Unmarshal(r.body, &b) != nil || b.Digest != h.digest.String() || b.Size != int64(len(h.base)) {
		t.Fatalf("lookup: %d %q", r.code, r.body)
	}
	if r.header.Get(upstream.PeerInstanceHeader) != "instance-a" {
		t.Errorf("lookup: instance header %q", r.header.Get(upstream.PeerInstanceHeader))
	}
	for _, p := range []string{
		upstream.PeerBasesPath + "full-iso/418.94.202401010000-0/x86_64?source=" + upstream.SourceHash("https://other.example/x.iso"),
		upstream.PeerBasesPath + "full-iso/418.94.202401010000-0/x86_64",
		upstream.PeerBasesPath + "minimal-iso/418.94.202401010000-0/x86_64?source=" + upstream.SourceHash(testSource),
		upstream.PeerBasesPath + "full-iso/418.94.202401010000-0/s390x?source=" + upstream.SourceHash(testSource),
		upstream.PeerBlobsPath + cache.DigestOf([]byte("a derived image")).String(),
		upstream.PeerBlobsPath + "sha256:" + strings.Repeat("0", 64),
		upstream.PeerBlobsPath + "sha256:..%2F..%2Fetc",
		upstream.PeerBlobsPath + h.digest.String() + "/x",
	} {
		if r := h.get(p); r.code != 404 || bytes.Contains(r.body, h.base[:64]) {
			t.Errorf("GET %s: %d, want 404", p, r.code)
		}
	}

	// The whole blob: 200, counted as a fill served once sent.
	r = h.get(blob)
	etag := `"` + h.digest.String() + `"`
	if r.code != 200 || !bytes.Equal(r.body, h.base) || r.header.Get("ETag") != etag || r.header.Get(upstream.PeerInstanceHeader) != "instance-a" {
		t.Fatalf("blob: %d, %d bytes, ETag %q", r.code, len(r.body), r.header.Get("ETag"))
	}
	waitFor(t, "the fill counted", func() bool { return pb.served.Load() == 1 })

	// Range and If-Range on the digest: not whole fills.
	r = h.do("GET", blob, map[string]string{"Range": "bytes=100-4195", "If-Range": etag})
	if r.code != 206 || !bytes.Equal(r.body, h.base[100:4196]) || r.header.Get("Content-Range") != fmt.Sprintf("bytes 100-4195/%d", len(h.base)) {
		t.Errorf("range: %d, %d bytes, %q", r.code, len(r.body), r.header.Get("Content-Range"))
	}
	r = h.do("GET", blob, map[string]string{"Range": "bytes=100-", "If-Range": `"sha256:other"`})
	if r.code != 200 || !bytes.Equal(r.body, h.base) {
		t.Errorf("If-Range with another tag: %d, %d bytes; want the whole blob", r.code, len(r.body))
	}
	r = h.do("HEAD", blob, nil)
	if r.code != 200 || r.header.Get("Content-Length") != fmt.Sprint(len(h.base)) {
		t.Errorf("HEAD: %d, Content-Length %q", r.code, r.header.Get("Content-Length"))
	}
	waitFor(t, "every stream ended", func() bool { return !h.bases.inUse() && h.srv.limit.inUse() == 0 })
	if n := pb.served.Load(); n != 2 {
		t.Errorf("%d fills counted, want 2 (the two whole GETs)", n)
	}

	// The routes are on the plain-HTTP listener's allowlist, and the
	// client side of the protocol reads them.
	hp, _ := newPeerHarness(t, true)
	base := "http://" + hp.plainAddr
	peers := upstream.NewPeers(upstream.PeerConfig{URLs: []string{base}, Instance: "instance-b"})
	q := upstream.PeerQuery{Type: "full-iso", Version: "418.94.202401010000-0", Arch: "x86_64", SourceURL: testSource}
	got, err := peers.Lookup(context.Background(), base, q)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := peers.Fetch(context.Background(), base, got, &out, nil); err != nil || !bytes.Equal(out.Bytes(), hp.base) {
		t.Fatalf("Fetch over the plain-HTTP listener: %v, %d bytes", err, out.Len())
	}
	// A client with the serving process's id recognises itself.
	self := upstream.NewPeers(upstream.PeerConfig{URLs: []string{base}, Instance: "instance-a"})
	if _, err := self.Lookup(context.Background(), base, q); err == nil || !strings.Contains(err.Error(), "this process") {
		t.Errorf("Lookup of itself: %v", err)
	}
}

// TestPeerRoutesNeedCatalog: a Bases without the peer side answers 404.
func TestPeerRoutesNeedCatalog(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, p := range []string{
		upstream.PeerBlobsPath + h.digest.String(),
		upstream.PeerBasesPath + "full-iso/418.94.202401010000-0/x86_64?source=" + upstream.SourceHash(testSource),
	} {
		if r := h.get(p); r.code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.code)
		}
	}
}
