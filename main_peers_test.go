package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
	"github.com/isoedge/isoedge/upstream"
)

// countingMirror serves one ISO over HTTP (Range, ETag) and counts the
// GETs of it.
type countingMirror struct {
	srv  *httptest.Server
	mu   sync.Mutex
	gets int
}

func newCountingMirror(t *testing.T, iso []byte) *countingMirror {
	t.Helper()
	m := &countingMirror{}
	sum := sha256.Sum256(iso)
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/rhcos-live.x86_64.iso" {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodGet {
			m.mu.Lock()
			m.gets++
			m.mu.Unlock()
		}
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(iso))
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *countingMirror) url() string { return m.srv.URL + "/rhcos-live.x86_64.iso" }

func (m *countingMirror) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

// peerHealth is the part of /health peer fill reports.
type peerHealth struct {
	Images []struct {
		Version string `json:"version"`
		State   string `json:"state"`
		Digest  string `json:"digest"`
		Source  string `json:"source"`
	} `json:"images"`
	Sources struct {
		HTTP struct {
			BytesFetched uint64 `json:"bytes_fetched"`
		} `json:"http"`
		Peer struct {
			Enabled      bool   `json:"enabled"`
			BytesFetched uint64 `json:"bytes_fetched"`
			FillsServed  uint64 `json:"fills_served"`
			Fallbacks    uint64 `json:"fallbacks"`
		} `json:"peer"`
	} `json:"sources"`
}

func (in *instance) peerHealth(t *testing.T) peerHealth {
	t.Helper()
	_, body := in.do(t, http.MethodGet, "/health", nil)
	var h peerHealth
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("/health: %v: %s", err, body)
	}
	if len(h.Images) != 1 {
		t.Fatalf("/health lists %d images: %s", len(h.Images), body)
	}
	return h
}

// fakePeer answers the peer protocol for the ISO with the real digest and
// size, but sends blob instead of the ISO's bytes; hang makes it accept
// requests and never answer.
func fakePeer(t *testing.T, iso, blob []byte, hang bool) (srv *httptest.Server, blobGets func() int) {
	t.Helper()
	sum := sha256.Sum256(iso)
	var mu sync.Mutex
	gets := 0
	done := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(upstream.PeerInstanceHeader, "fake-peer")
		if hang {
			select {
			case <-r.Context().Done():
			case <-done:
			}
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, upstream.PeerBasesPath):
			fmt.Fprintf(w, `{"digest":"sha256:%x","size":%d}`, sum, len(iso))
		case r.URL.Path == upstream.PeerBlobsPath+fmt.Sprintf("sha256:%x", sum):
			mu.Lock()
			gets++
			mu.Unlock()
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(blob))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv, func() int {
		mu.Lock()
		defer mu.Unlock()
		return gets
	}
}

// TestPeerFill: a second replica started with PEERS naming the first gets
// the base image from it, not from the mirror (which sees one download in
// all), and serves the same exact ISO; a replica whose peer is down, slow
// or serves corrupted bytes falls back to the mirror and still serves the
// exact ISO. The peer route serves only base image blobs.
func TestPeerFill(t *testing.T) {
	dir := t.TempDir()
	isoPath, _ := fixture.Build(t, dir, fixture.Options{})
	iso, err := os.ReadFile(isoPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(iso)
	mirror := newCountingMirror(t, iso)
	as := newFakeAS(t)
	id := "0a0b0c0d-0000-4000-8000-0000000000e1"
	ign := ignitionFor("peers")
	as.set(id, &infraEnv{ignition: ign})
	img := config.OSImage{OpenshiftVersion: "4.19", CPUArchitecture: "x86_64", URL: mirror.url(), Version: "419.96.1"}
	start := func(peers string) *instance {
		env := baseEnv(t.TempDir())
		env["ASSISTED_SERVICE_HOST"] = as.hostPort()
		env["OS_IMAGES"] = osImagesJSON(t, img)
		env["OS_IMAGE_HEADER_TIMEOUT"] = "1s" // bounds the slow peer
		// A minimal ISO template is derived: a blob the peer route must refuse.
		env["IMAGE_SERVICE_BASE_URL"] = "https://isoedge.example.com"
		if peers != "" {
			env["PEERS"] = peers
		}
		return startInstance(t, env)
	}
	isoPathOf := "/byid/" + id + "/4.19/x86_64/full.iso"

	a := start("")
	a.waitReady(t, 60*time.Second)
	_, fromA := a.get(t, isoPathOf, nil, http.StatusOK)
	if got := ignitionOf(t, fromA); !bytes.Equal(got, ign) {
		t.Fatalf("replica A's ISO carries other ignition")
	}
	if n := mirror.count(); n != 1 {
		t.Fatalf("mirror saw %d downloads after replica A, want 1", n)
	}

	// B fills from A.
	b := start(a.url)
	b.waitReady(t, 60*time.Second)
	hb := b.peerHealth(t)
	if n := mirror.count(); n != 1 {
		t.Errorf("mirror saw %d downloads after replica B, want 1 (B fills from A)", n)
	}
	if im := hb.Images[0]; im.Source != "peer" || im.Digest != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("B's image: source %q digest %s, want peer and the ISO's sha256", im.Source, im.Digest)
	}
	if hb.Sources.Peer.BytesFetched != uint64(len(iso)) || hb.Sources.HTTP.BytesFetched != 0 || hb.Sources.Peer.Fallbacks != 0 || !hb.Sources.Peer.Enabled {
		t.Errorf("B's sources: %+v, want %d peer bytes, no http bytes, no fallback", hb.Sources, len(iso))
	}
	_, fromB := b.get(t, isoPathOf, nil, http.StatusOK)
	if !bytes.Equal(fromB, fromA) {
		t.Errorf("B's full.iso (%d bytes) differs from A's (%d bytes)", len(fromB), len(fromA))
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("A counting the fill it served", func() bool { return a.peerHealth(t).Sources.Peer.FillsServed == 1 })
	_, metricsA := a.get(t, "/metrics", nil, http.StatusOK)
	for _, want := range []string{
		"isoedge_peer_fills_served_total 1\n",
		fmt.Sprintf("isoedge_image_fetch_bytes_total{source=\"http\"} %d\n", len(iso)),
		"isoedge_image_fetch_bytes_total{source=\"peer\"} 0\n",
	} {
		if !bytes.Contains(metricsA, []byte(want)) {
			t.Errorf("A's /metrics lacks %q", want)
		}
	}

	// The peer route sends base image blobs only: not the minimal ISO
	// template A derived, nor anything else in its store.
	blobs, _ := blobDigests(t, a.dataDir)
	if len(blobs) < 2 {
		t.Fatalf("A stores %d blobs; want the base and its minimal template", len(blobs))
	}
	for _, d := range blobs {
		want := http.StatusNotFound
		if d == hex.EncodeToString(sum[:]) {
			want = http.StatusOK
		}
		resp, body := a.do(t, http.MethodGet, upstream.PeerBlobsPath+"sha256:"+d, map[string]string{"Range": "bytes=0-15"})
		if want == http.StatusOK && (resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, iso[:16])) {
			t.Errorf("peer blob of the base: status %d, %d bytes; want 206 with its first 16 bytes", resp.StatusCode, len(body))
		}
		if want == http.StatusNotFound && resp.StatusCode != want {
			t.Errorf("peer blob %s (not a base image): status %d, want 404", d, resp.StatusCode)
		}
		if resp.Header.Get(upstream.PeerInstanceHeader) == "" {
			t.Errorf("peer blob %s: no %s header", d, upstream.PeerInstanceHeader)
		}
	}

	// Peers that are down, slow, or send corrupted bytes: a fallback to
	// the mirror each, and the exact ISO.
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + down.Addr().String()
	down.Close()
	corrupt := bytes.Clone(iso)
	corrupt[len(corrupt)/2] ^= 0xff
	bad, badGets := fakePeer(t, iso, corrupt, false)
	slow, _ := fakePeer(t, iso, iso, true)
	for _, tc := range []struct{ name, peers string }{
		{"down", downURL},
		{"slow", slow.URL},
		{"corrupted", bad.URL},
	} {
		before := mirror.count()
		c := start(tc.peers)
		c.waitReady(t, 60*time.Second)
		hc := c.peerHealth(t)
		if n := mirror.count() - before; n != 1 {
			t.Errorf("%s peer: the mirror saw %d downloads, want 1", tc.name, n)
		}
		if im := hc.Images[0]; im.Source != "http" || im.Digest != "sha256:"+hex.EncodeToString(sum[:]) {
			t.Errorf("%s peer: image source %q digest %s, want http and the ISO's sha256", tc.name, im.Source, im.Digest)
		}
		if hc.Sources.Peer.Fallbacks != 1 {
			t.Errorf("%s peer: %d fallbacks, want 1", tc.name, hc.Sources.Peer.Fallbacks)
		}
		_, fromC := c.get(t, isoPathOf, nil, http.StatusOK)
		if !bytes.Equal(fromC, fromA) {
			t.Errorf("%s peer: full.iso differs from A's", tc.name)
		}
		c.stop(t)
	}
	if n := badGets(); n != 1 {
		t.Errorf("the corrupting peer was asked for its blob %d times, want 1", n)
	}
}
