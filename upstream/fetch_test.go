package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const isoBody = "0123456789abcdefghijklmnopqrstuvwxyz"

// imageServer serves isoBody with Range support and records what it got.
type imageServer struct {
	mu     sync.Mutex
	got    []*http.Request
	handle func(w http.ResponseWriter, r *http.Request)
}

func newImageServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *imageServer) {
	t.Helper()
	s := &imageServer{handle: handle}
	if s.handle == nil {
		modTime := time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
		s.handle = func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "x.iso", modTime, strings.NewReader(isoBody))
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got = append(s.got, r.Clone(r.Context()))
		s.mu.Unlock()
		s.handle(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

func (s *imageServer) last() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[len(s.got)-1]
}

func TestFetcherHTTP(t *testing.T) {
	srv, rec := newImageServer(t, nil)
	f, err := NewFetcher(FetcherConfig{
		Headers: map[string]string{"X-Mirror-Auth": "h-secret", "User-Agent": "isoedge-test"},
		Query:   map[string]string{"token": "q-secret", "b": "2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var calls [][2]int64
	var buf bytes.Buffer
	n, err := f.Fetch(t.Context(), srv.URL+"/rhcos.iso?z=1&a=0", 0, &buf, func(done, total int64) {
		calls = append(calls, [2]int64{done, total})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(isoBody)) || buf.String() != isoBody {
		t.Errorf("got %d bytes %q", n, buf.String())
	}
	r := rec.last()
	if got, want := r.URL.RawQuery, "a=0&b=2&token=q-secret&z=1"; got != want {
		t.Errorf("query = %q, want %q (added then re-encoded sorted)", got, want)
	}
	if r.Header.Get("X-Mirror-Auth") != "h-secret" || r.Header.Get("User-Agent") != "isoedge-test" {
		t.Errorf("headers = %v", r.Header)
	}
	if r.Header.Get("Range") != "" {
		t.Error("Range sent for a fresh download")
	}
	total := int64(len(isoBody))
	if len(calls) == 0 || calls[len(calls)-1] != [2]int64{total, total} {
		t.Errorf("progress calls = %v, want last (%d, %d)", calls, total, total)
	}
}

func TestFetcherLeavesQueryAloneWithoutParams(t *testing.T) {
	srv, rec := newImageServer(t, nil)
	f, _ := NewFetcher(FetcherConfig{})
	// A signed URL must reach the server byte for byte.
	if _, err := f.Fetch(t.Context(), srv.URL+"/x.iso?z=1&a=%2f", 0, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if got := rec.last().URL.RawQuery; got != "z=1&a=%2f" {
		t.Errorf("query = %q", got)
	}
}

func TestFetcherFile(t *testing.T) {
	p := writeFile(t, t.TempDir(), "local.iso", isoBody)
	f, _ := NewFetcher(FetcherConfig{Query: map[string]string{"ignored": "1"}})
	tests := []struct {
		name   string
		offset int64
		want   string
		err    error
	}{
		{"whole", 0, isoBody, nil},
		{"resume", 10, isoBody[10:], nil},
		{"resume at end", int64(len(isoBody)), "", nil},
		{"beyond end", int64(len(isoBody)) + 1, "", ErrNoResume},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var last [2]int64
			n, err := f.Fetch(t.Context(), "file://"+p, tt.offset, &buf, func(d, tot int64) { last = [2]int64{d, tot} })
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if buf.String() != tt.want || n != int64(len(tt.want)) {
				t.Errorf("got %d %q, want %q", n, buf.String(), tt.want)
			}
			if total := int64(len(isoBody)); last != [2]int64{total, total} {
				t.Errorf("last progress = %v", last)
			}
		})
	}
	if _, err := f.Fetch(t.Context(), "file://"+filepath.Join(t.TempDir(), "missing.iso"), 0, io.Discard, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestFetcherHTTPErrors(t *testing.T) {
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
		offset int64
		err    error // nil: any error
	}{
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, 0, nil},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, 0, nil},
		{"short body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte(isoBody))
		}, 0, io.ErrUnexpectedEOF},
		{"resume answered 200", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(isoBody))
		}, 5, ErrNoResume},
		{"resume answered wrong range", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(isoBody)-1, len(isoBody)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write([]byte(isoBody))
		}, 5, ErrNoResume},
		{"resume answered 416", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		}, 500, ErrNoResume},
		{"unrequested 206", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 0-3/36")
			w.WriteHeader(http.StatusPartialContent)
			w.Write([]byte(isoBody[:4]))
		}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newImageServer(t, tt.handle)
			f, _ := NewFetcher(FetcherConfig{Query: map[string]string{"token": testSecret}})
			_, err := f.Fetch(t.Context(), srv.URL+"/dir/x.iso?sig=abc", tt.offset, io.Discard, nil)
			if err == nil {
				t.Fatal("Fetch succeeded")
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			for _, bad := range []string{testSecret, "sig=", "?"} {
				if strings.Contains(err.Error(), bad) {
					t.Errorf("error %q contains %q", err, bad)
				}
			}
		})
	}
}

func TestFetcherTransportErrorHidesQuery(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	f, _ := NewFetcher(FetcherConfig{Query: map[string]string{"token": testSecret}})
	_, err := f.Fetch(t.Context(), srv.URL+"/x.iso?sig=abc", 0, io.Discard, nil)
	if err == nil || strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "?") {
		t.Errorf("err = %v", err)
	}
}

func TestFetcherNoContentLength(t *testing.T) {
	srv, _ := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(isoBody[:10]))
		w.(http.Flusher).Flush() // forces chunked encoding
		w.Write([]byte(isoBody[10:]))
	})
	f, _ := NewFetcher(FetcherConfig{})
	var buf bytes.Buffer
	var lastTotal int64
	n, err := f.Fetch(t.Context(), srv.URL+"/x.iso", 0, &buf, func(_, total int64) { lastTotal = total })
	if err != nil || n != int64(len(isoBody)) || buf.String() != isoBody {
		t.Fatalf("got %d %q, %v", n, buf.String(), err)
	}
	if lastTotal != -1 {
		t.Errorf("total = %d, want -1 when unknown", lastTotal)
	}
}

func TestFetcherResume(t *testing.T) {
	srv, rec := newImageServer(t, nil)
	f, _ := NewFetcher(FetcherConfig{})
	var buf bytes.Buffer
	var last [2]int64
	n, err := f.Fetch(t.Context(), srv.URL+"/x.iso", 20, &buf, func(d, tot int64) { last = [2]int64{d, tot} })
	if err != nil {
		t.Fatal(err)
	}
	if buf.String() != isoBody[20:] || n != int64(len(isoBody)-20) {
		t.Errorf("got %d %q", n, buf.String())
	}
	if got := rec.last().Header.Get("Range"); got != "bytes=20-" {
		t.Errorf("Range = %q", got)
	}
	if total := int64(len(isoBody)); last != [2]int64{total, total} {
		t.Errorf("last progress = %v", last)
	}
}

func TestFetcherCancel(t *testing.T) {
	srv, _ := newImageServer(t, nil)
	f, _ := NewFetcher(FetcherConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.Fetch(ctx, srv.URL+"/x.iso", 0, io.Discard, nil); err == nil {
		t.Error("Fetch with a cancelled context succeeded")
	}
}

func TestFetcherUnsupported(t *testing.T) {
	f, _ := NewFetcher(FetcherConfig{})
	for _, u := range []string{"ftp://h/x.iso", "x.iso", "http://[::1"} {
		if _, err := f.Fetch(t.Context(), u, 0, io.Discard, nil); err == nil {
			t.Errorf("Fetch(%q) succeeded", u)
		}
	}
	if _, err := f.Fetch(t.Context(), "file:///x", -1, io.Discard, nil); err == nil {
		t.Error("negative offset accepted")
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in          string
		start, size int64
		ok          bool
	}{
		{"bytes 5-35/36", 5, 36, true},
		{"bytes 5-35/*", 5, -1, true},
		{"bytes 0-0/1", 0, 1, true},
		{"bytes */36", 0, 0, false},
		{"bytes 5-4/36", 0, 0, false},
		{"bytes 5-35/5", 0, 0, false},
		{"items 5-35/36", 0, 0, false},
		{"", 0, 0, false},
		{"bytes -5-35/36", 0, 0, false},
	}
	for _, tt := range tests {
		start, size, ok := parseContentRange(tt.in)
		if start != tt.start || size != tt.size || ok != tt.ok {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, %v", tt.in, start, size, ok, tt.start, tt.size, tt.ok)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://mirror.example.com/pub/rhcos.iso?token=abc#frag", "https://mirror.example.com/pub/rhcos.iso"},
		{"https://user:pass@mirror.example.com:8443/a%20b.iso?x=1", "https://mirror.example.com:8443/a%20b.iso"},
		{"file:///var/lib/iso/rhcos.iso", "file:///var/lib/iso/rhcos.iso"},
		{"http://[::1/x?token=abc", "http://[::1/x"},
		{"http://user:pw@bad host/x?token=abc", "http://bad host/x"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Progress must be reported at most every 64 MiB: exercise the chunking
// with a body just over one step.
func TestFetcherProgressStep(t *testing.T) {
	size := progressStep + 1
	srv, _ := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		io.CopyN(w, zeroReader{}, int64(size))
	})
	f, _ := NewFetcher(FetcherConfig{})
	var calls [][2]int64
	n, err := f.Fetch(t.Context(), srv.URL+"/big.iso", 0, io.Discard, func(d, tot int64) {
		calls = append(calls, [2]int64{d, tot})
	})
	if err != nil || n != int64(size) {
		t.Fatalf("n = %d, err = %v", n, err)
	}
	want := [][2]int64{{progressStep, int64(size)}, {int64(size), int64(size)}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("progress calls = %v, want %v", calls, want)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
