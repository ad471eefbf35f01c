package upstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// peerBlobFor is the lookup answer for b.
func peerBlobFor(b []byte) PeerBlob {
	return PeerBlob{Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(b)), Size: int64(len(b))}
}

// testPeer serves the peer protocol for one blob; handle, when set,
// answers instead.
func testPeer(t *testing.T, blob []byte, handle http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	pb := peerBlobFor(blob)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if handle != nil {
			handle(w, r)
			return
		}
		w.Header().Set(PeerInstanceHeader, "the-peer")
		switch {
		case strings.HasPrefix(r.URL.Path, PeerBasesPath):
			fmt.Fprintf(w, `{"digest":%q,"size":%d}`, pb.Digest, pb.Size)
		case r.URL.Path == PeerBlobsPath+pb.Digest:
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(blob))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

var testQuery = PeerQuery{Type: "full-iso", Version: "419.96.1", Arch: "x86_64", SourceURL: "https://mirror.example/rhcos.iso?token=SECRET"}

func TestPeersLookupAndFetch(t *testing.T) {
	blob := bytes.Repeat([]byte("rhcos"), 100_000)
	var gotPath, gotQuery, gotInstance atomic.Value
	srv, _ := testPeer(t, blob, nil)
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath.Store(r.URL.EscapedPath())
		gotQuery.Store(r.URL.RawQuery)
		gotInstance.Store(r.Header.Get(PeerInstanceHeader))
		r2, _ := http.NewRequest(r.Method, srv.URL+r.URL.RequestURI(), nil)
		resp, err := http.DefaultClient.Do(r2)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer spy.Close()

	p := NewPeers(PeerConfig{URLs: []string{spy.URL}, Instance: "me"})
	b, err := p.Lookup(context.Background(), spy.URL, testQuery)
	if err != nil {
		t.Fatal(err)
	}
	if b != peerBlobFor(blob) {
		t.Errorf("Lookup = %+v, want %+v", b, peerBlobFor(blob))
	}
	if got := gotPath.Load(); got != "/peer/v1/bases/full-iso/419.96.1/x86_64" {
		t.Errorf("lookup path %q", got)
	}
	if q := gotQuery.Load().(string); q != "source="+SourceHash(testQuery.SourceURL) || strings.Contains(q, "SECRET") {
		t.Errorf("lookup query %q: want only the source URL's SHA-256", q)
	}
	if gotInstance.Load() != "me" {
		t.Errorf("request carried instance %q, want me", gotInstance.Load())
	}
	var out bytes.Buffer
	var last int64
	n, err := p.Fetch(context.Background(), spy.URL, b, &out, func(done, _ int64) { last = done })
	if err != nil || n != int64(len(blob)) || !bytes.Equal(out.Bytes(), blob) || last != n {
		t.Fatalf("Fetch: %d bytes, %v, progress %d; want the %d-byte blob", n, err, last, len(blob))
	}
}

func TestPeersLookupRefuses(t *testing.T) {
	huge := strings.Repeat(" ", maxPeerLookupBytes) + `{"digest":"sha256:` + strings.Repeat("a", 64) + `","size":1}`
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   error
		part   string
	}{
		{"not found", 404, "", ErrPeerMiss, ""},
		{"server error", 500, "", nil, "status 500"},
		{"redirect", 302, "", nil, "status 302"},
		{"huge", 200, huge, nil, "over"},
		{"not json", 200, "<html>", nil, "not JSON"},
		{"no digest", 200, `{"size":10}`, nil, "digest"},
		{"upper-case digest", 200, `{"digest":"sha256:` + strings.Repeat("A", 64) + `","size":10}`, nil, "digest"},
		{"md5", 200, `{"digest":"md5:` + strings.Repeat("a", 32) + `","size":10}`, nil, "digest"},
		{"empty", 200, `{"digest":"sha256:` + strings.Repeat("a", 64) + `","size":0}`, ErrTooLarge, ""},
		{"too large", 200, `{"digest":"sha256:` + strings.Repeat("a", 64) + `","size":1001}`, ErrTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var redirected atomic.Int32
			target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { redirected.Add(1) }))
			defer target.Close()
			srv, _ := testPeer(t, nil, func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 302 {
					http.Redirect(w, r, target.URL, 302)
					return
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			p := NewPeers(PeerConfig{MaxBytes: 1000})
			_, err := p.Lookup(context.Background(), srv.URL, testQuery)
			switch {
			case err == nil:
				t.Fatal("Lookup accepted the answer")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Lookup: %v, want %v", err, tc.want)
			case !strings.Contains(err.Error(), tc.part):
				t.Fatalf("Lookup: %v, want it to mention %q", err, tc.part)
			}
			if redirected.Load() != 0 {
				t.Error("the redirect was followed")
			}
		})
	}
}

func TestPeersFetchRefuses(t *testing.T) {
	blob := bytes.Repeat([]byte{7}, 64<<10)
	pb := peerBlobFor(blob)
	for _, tc := range []struct {
		name   string
		handle http.HandlerFunc
		want   error
		part   string
	}{
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, ErrPeerMiss, ""},
		{"partial", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-9/%d", len(blob)))
			w.WriteHeader(206)
			w.Write(blob[:10])
		}, nil, "status 206"},
		{"undeclared length", func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush() // chunked: no Content-Length
			w.Write(blob)
		}, nil, "Content-Length -1"},
		{"other length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			w.Write(blob[:10])
		}, nil, "Content-Length 10"},
		{"short body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
			w.Write(blob[:1000])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, io.ErrUnexpectedEOF, ""},
		{"stall", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
			w.Write(blob[:1000])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, ErrStalled, ""},
		{"trickle", func(w http.ResponseWriter, r *http.Request) {
			// Never stalls, but far below PeerMinBytesPerSecond.
			w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
			for i := 0; i < len(blob); i += 100 {
				if _, err := w.Write(blob[i : i+100]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-time.After(50 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
		}, context.DeadlineExceeded, ""},
		{"slow headers", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, nil, "timeout awaiting response headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := testPeer(t, nil, tc.handle)
			p := NewPeers(PeerConfig{StallTimeout: 200 * time.Millisecond, HeaderTimeout: 200 * time.Millisecond})
			var out bytes.Buffer
			t0 := time.Now()
			_, err := p.Fetch(context.Background(), srv.URL, pb, &out, nil)
			switch {
			case err == nil:
				t.Fatal("Fetch accepted the answer")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Fetch: %v, want %v", err, tc.want)
			case !strings.Contains(err.Error(), tc.part):
				t.Fatalf("Fetch: %v, want it to mention %q", err, tc.part)
			}
			if d := time.Since(t0); d > 10*time.Second {
				t.Errorf("Fetch took %v", d)
			}
			if int64(out.Len()) >= pb.Size {
				t.Errorf("wrote %d bytes", out.Len())
			}
		})
	}
	// A blob description beyond the bound is refused before any request.
	srv, hits := testPeer(t, blob, nil)
	p := NewPeers(PeerConfig{MaxBytes: int64(len(blob)) - 1})
	if _, err := p.Fetch(context.Background(), srv.URL, pb, io.Discard, nil); err == nil || hits.Load() != 0 {
		t.Errorf("Fetch of a blob over MaxBytes: %v after %d requests", err, hits.Load())
	}
	// A peer that is down fails at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	if _, err := NewPeers(PeerConfig{}).Lookup(context.Background(), down, testQuery); err == nil || errors.Is(err, ErrPeerMiss) {
		t.Errorf("Lookup of a peer that is down: %v", err)
	}
}

func TestPeersSkipSelf(t *testing.T) {
	blob := []byte("x")
	me, meHits := testPeer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(PeerInstanceHeader, "me")
		fmt.Fprintf(w, `{"digest":%q,"size":1}`, peerBlobFor(blob).Digest)
	})
	other, _ := testPeer(t, blob, nil)
	p := NewPeers(PeerConfig{URLs: []string{me.URL, other.URL}, Instance: "me"})
	if _, err := p.Lookup(context.Background(), me.URL, testQuery); !errors.Is(err, ErrPeerSelf) {
		t.Fatalf("Lookup of itself: %v, want ErrPeerSelf", err)
	}
	got, err := p.List(context.Background())
	if err != nil || !slices.Equal(got, []string{other.URL}) {
		t.Errorf("List after meeting itself = %q, %v; want only %s", got, err, other.URL)
	}
	if meHits.Load() != 1 {
		t.Errorf("itself asked %d times, want 1", meHits.Load())
	}
}

func TestPeersDNS(t *testing.T) {
	resolved := []netip.Addr{
		netip.MustParseAddr("10.1.2.3"),
		netip.MustParseAddr("10.1.2.9"), // this host
		netip.MustParseAddr("::ffff:10.1.2.4"),
		netip.MustParseAddr("10.1.2.3"),
		netip.MustParseAddr("fd00::5"),
		netip.MustParseAddr("0.0.0.0"),
	}
	var asked atomic.Value
	p := NewPeers(PeerConfig{
		URLs: []string{"http://static:8080"}, DNSName: "isoedge-peers", Scheme: "http", Port: "8081",
		Resolve: func(_ context.Context, host string) ([]netip.Addr, error) {
			asked.Store(host)
			return resolved, nil
		},
		LocalAddrs: func() ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.9")}, nil
		},
	})
	got, err := p.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"http://10.1.2.3:8081", "http://10.1.2.4:8081", "http://[fd00::5]:8081", "http://static:8080"}
	if !slices.Equal(got, want) || asked.Load() != "isoedge-peers" {
		t.Errorf("List = %q (asked %v), want %q", got, asked.Load(), want)
	}

	// Resolution failing: the static peers, and the error.
	p = NewPeers(PeerConfig{
		URLs: []string{"http://static:8080"}, DNSName: "isoedge-peers", Port: "8080",
		Resolve: func(context.Context, string) ([]netip.Addr, error) { return nil, errors.New("no such host") },
	})
	got, err = p.List(context.Background())
	if err == nil || !slices.Equal(got, []string{"http://static:8080"}) {
		t.Errorf("List with DNS failing = %q, %v; want the static peer and an error", got, err)
	}
	if NewPeers(PeerConfig{}).Enabled() || (*Peers)(nil).Enabled() || !p.Enabled() {
		t.Error("Enabled is wrong")
	}
}

// TestInterfaceAddrs: the real list holds the loopback address, so a
// replica resolving to 127.0.0.1 skips it.
func TestInterfaceAddrs(t *testing.T) {
	addrs, err := interfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(addrs, netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("interface addresses %v lack 127.0.0.1", addrs)
	}
}
