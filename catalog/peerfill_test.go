package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/upstream"
)

// claimPeer answers every lookup with claim and serves body as the blob
// of claim's digest, counting blob requests.
func claimPeer(t *testing.T, claim upstream.PeerBlob, body []byte) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var blobGets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(upstream.PeerInstanceHeader, "peer")
		switch {
		case strings.HasPrefix(r.URL.Path, upstream.PeerBasesPath):
			fmt.Fprintf(w, `{"digest":%q,"size":%d}`, claim.Digest, claim.Size)
		case r.URL.Path == upstream.PeerBlobsPath+claim.Digest:
			blobGets.Add(1)
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &blobGets
}

func claimOf(b []byte) upstream.PeerBlob {
	return upstream.PeerBlob{Digest: cache.DigestOf(b).String(), Size: int64(len(b))}
}

// TestPeerAnswersAreHints: what a peer says is checked before its bytes
// are kept. A digest other than the entry's sha256, or a size over the
// image bound, is refused before any blob is asked for; bytes the ingest
// checks reject are not committed. Each costs one fallback to the source,
// which fills the image.
func TestPeerAnswersAreHints(t *testing.T) {
	good := popBlob(1, 256<<10)
	other := popBlob(2, 256<<10)
	for _, tc := range []struct {
		name       string
		claim      upstream.PeerBlob
		body       []byte
		sha256     bool  // the entry pins good's sha256
		maxBytes   int64 // OS_IMAGE_MAX_BYTES
		rejectPeer bool  // the ingest check rejects other
		blobGets   int32
	}{
		{name: "digest other than the entry's sha256", claim: claimOf(other), body: other, sha256: true},
		{name: "over the image bound", claim: upstream.PeerBlob{Digest: claimOf(good).Digest, Size: 1 << 30}, body: good, maxBytes: 1 << 20},
		{name: "ingest check fails", claim: claimOf(other), body: other, rejectPeer: true, blobGets: 1},
		{name: "bytes other than claimed", claim: claimOf(good), body: other, blobGets: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newPopEnv(t)
			mirror := newPopServer(t, good, nil)
			peer, gets := claimPeer(t, tc.claim, tc.body)
			img := popImage("4.19", "419.1", "x86_64", mirror.url("rhcos.iso"))
			if tc.sha256 {
				img.SHA256 = cache.DigestOf(good).Hex()
			}
			cfg := env.config(t, img)
			cfg.MaxImageBytes = tc.maxBytes
			cfg.Peers = upstream.NewPeers(upstream.PeerConfig{URLs: []string{peer.URL}})
			if tc.rejectPeer {
				cfg.Inspect = func(path string) ([]byte, error) {
					b, err := os.ReadFile(path)
					if err == nil && bytes.Equal(b, other) {
						return nil, errors.New("not an RHCOS live ISO")
					}
					return env.insp.inspect(path)
				}
			}
			c := mustNew(t, cfg)
			runPopulator(t, c)
			waitReady(t, c, 10*time.Second, img)
			rec, _, _ := c.Lookup(img.Version, "x86_64", config.TypeFullISO)
			if rec.Digest != cache.DigestOf(good) {
				t.Errorf("stored %s, want the mirror's %s", rec.Digest, cache.DigestOf(good))
			}
			env.checkBlob(t, rec.Digest, good)
			if mirror.requests() != 1 {
				t.Errorf("mirror asked %d times, want 1", mirror.requests())
			}
			if gets.Load() != tc.blobGets {
				t.Errorf("peer asked for its blob %d times, want %d", gets.Load(), tc.blobGets)
			}
			var h struct{ Sources SourcesStatus }
			if err := json.Unmarshal(c.Health(), &h); err != nil {
				t.Fatal(err)
			}
			if s := h.Sources; s.Peer.Fallbacks != 1 || s.HTTP.BytesFetched != uint64(len(good)) || s.Peer.BytesFetched != uint64(tc.blobGets)*uint64(len(tc.body)) {
				t.Errorf("sources %+v: want 1 fallback, %d http bytes", s, len(good))
			}
			if len(env.blobs(t)) != 1 || len(env.strays(t)) != 0 {
				t.Errorf("store holds blobs %v and strays %v; want only the image", env.blobs(t), env.strays(t))
			}
		})
	}
}

// TestPeerMissIsNoFallback: peers that do not have the image (the first
// replica's case) are not a failure; a peer that has it fills it.
func TestPeerMissIsNoFallback(t *testing.T) {
	good := popBlob(3, 128<<10)
	empty := httptest.NewServer(http.NotFoundHandler())
	defer empty.Close()
	env := newPopEnv(t)
	mirror := newPopServer(t, good, nil)
	img := popImage("4.19", "419.1", "x86_64", mirror.url("rhcos.iso"))
	cfg := env.config(t, img)
	cfg.Peers = upstream.NewPeers(upstream.PeerConfig{URLs: []string{empty.URL}})
	a := mustNew(t, cfg)
	runPopulator(t, a)
	waitReady(t, a, 10*time.Second, img)
	var h struct{ Sources SourcesStatus }
	if err := json.Unmarshal(a.Health(), &h); err != nil {
		t.Fatal(err)
	}
	if h.Sources.Peer.Fallbacks != 0 || !h.Sources.Peer.Enabled {
		t.Errorf("sources %+v: a peer without the image is no fallback", h.Sources)
	}

	// What a's peer side answers.
	rec, _, _ := a.Lookup(img.Version, "x86_64", config.TypeFullISO)
	if got, ok := a.PeerBase("full-iso", "419.1", "x86_64", upstream.SourceHash(img.URL)); !ok || got.Digest != rec.Digest {
		t.Errorf("PeerBase = %v, %v", got, ok)
	}
	for _, q := range [][4]string{
		{"full-iso", "419.1", "x86_64", upstream.SourceHash(img.URL + "?other")},
		{"full-iso", "419.1", "x86_64", strings.ToUpper(upstream.SourceHash(img.URL))},
		{"full-iso", "419.1", "x86_64", ""},
		{"minimal-iso", "419.1", "x86_64", upstream.SourceHash(img.URL)},
		{"full-iso", "4.19", "x86_64", upstream.SourceHash(img.URL)},
	} {
		if _, ok := a.PeerBase(q[0], q[1], q[2], q[3]); ok {
			t.Errorf("PeerBase%q answered", q)
		}
	}
	if _, ok := a.PeerBlob(rec.Digest); !ok {
		t.Error("PeerBlob refuses the base image")
	}
	if _, ok := a.PeerBlob(cache.DigestOf([]byte("derived"))); ok {
		t.Error("PeerBlob answers for a blob that is no base image")
	}
	if a.InstanceID() != cfg.Peers.Instance() || len(a.InstanceID()) != 32 {
		t.Errorf("InstanceID %q, want the peers' %q", a.InstanceID(), cfg.Peers.Instance())
	}
}

// TestPeerNeverForLocalImages: file:// images are neither filled from nor
// served to peers.
func TestPeerNeverForLocalImages(t *testing.T) {
	good := popBlob(4, 64<<10)
	path := t.TempDir() + "/rhcos.iso"
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	peer, gets := claimPeer(t, claimOf(good), good)
	env := newPopEnv(t)
	img := popImage("4.19", "419.1", "x86_64", "file://"+path)
	cfg := env.config(t, img)
	cfg.Peers = upstream.NewPeers(upstream.PeerConfig{URLs: []string{peer.URL}})
	c := mustNew(t, cfg)
	runPopulator(t, c)
	waitReady(t, c, 10*time.Second, img)
	if gets.Load() != 0 {
		t.Errorf("a file:// image was asked of a peer")
	}
	if _, ok := c.PeerBase("full-iso", "419.1", "x86_64", upstream.SourceHash(img.URL)); ok {
		t.Errorf("a file:// image is offered to peers")
	}
}

// TestPeerFillAndPartialDownload: a download from the source that an
// earlier process left half done is dropped once a peer fills the image,
// and kept when the process stops during a peer fill.
func TestPeerFillAndPartialDownload(t *testing.T) {
	good := popBlob(5, 512<<10)
	mirror := newPopServer(t, good, nil)
	img := popImage("4.19", "419.1", "x86_64", mirror.url("rhcos.iso"))
	leavePartial := func(t *testing.T, env *popEnv) {
		t.Helper()
		w, err := env.store.Resume(partialKey(&imageEntry{img: img, key: baseKey(img)}))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.SetValidator(popETag(good)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(good[:1000]); err != nil {
			t.Fatal(err)
		}
		if err := w.Suspend(); err != nil {
			t.Fatal(err)
		}
		if len(env.strays(t)) == 0 {
			t.Fatal("no partial download on disk")
		}
	}

	t.Run("filled", func(t *testing.T) {
		env := newPopEnv(t)
		leavePartial(t, env)
		peer, gets := claimPeer(t, claimOf(good), good)
		cfg := env.config(t, img)
		cfg.Peers = upstream.NewPeers(upstream.PeerConfig{URLs: []string{peer.URL}})
		c := mustNew(t, cfg)
		runPopulator(t, c)
		waitReady(t, c, 10*time.Second, img)
		if gets.Load() != 1 || mirror.requests() != 0 {
			t.Errorf("peer blob asked %d times, mirror %d; want 1 and 0", gets.Load(), mirror.requests())
		}
		// The fill's writer is cancelled just after the image is ready.
		waitFor(t, 5*time.Second, "the partial download removed", func() bool { return len(env.strays(t)) == 0 })
	})

	t.Run("stopped", func(t *testing.T) {
		env := newPopEnv(t)
		leavePartial(t, env)
		var asked atomic.Int32
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(upstream.PeerInstanceHeader, "peer")
			if strings.HasPrefix(r.URL.Path, upstream.PeerBasesPath) {
				fmt.Fprintf(w, `{"digest":%q,"size":%d}`, claimOf(good).Digest, len(good))
				return
			}
			asked.Add(1)
			w.Header().Set("Content-Length", fmt.Sprint(len(good)))
			w.Write(good[:100])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}))
		defer hang.Close()
		cfg := env.config(t, img)
		cfg.Peers = upstream.NewPeers(upstream.PeerConfig{URLs: []string{hang.URL}})
		c := mustNew(t, cfg)
		stop := runPopulator(t, c)
		waitFor(t, 10*time.Second, "the peer fill to start", func() bool { return asked.Load() == 1 })
		stop()
		w, err := env.store.Resume(partialKey(&imageEntry{img: img, key: baseKey(img)}))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Cancel()
		if w.Size() != 1000 || w.Validator() != popETag(good) {
			t.Errorf("after a stop during the peer fill the partial download holds %d bytes, validator %q; want 1000 and %q", w.Size(), w.Validator(), popETag(good))
		}
	})
}
