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

func (s *imageServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
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
	res, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/rhcos.iso?z=1&a=0", Progress: func(done, total int64) {
		calls = append(calls, [2]int64{done, total})
	}}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(len(isoBody))
	if res.N != total || res.Total != total || buf.String() != isoBody {
		t.Errorf("got %+v, %q", res, buf.String())
	}
	if want := "v1 36 date Tue, 01 Sep 2026 10:00:00 GMT"; res.Validator != want {
		t.Errorf("validator %q, want %q (Last-Modified, no ETag)", res.Validator, want)
	}
	r := rec.last()
	if got, want := r.URL.RawQuery, "a=0&b=2&token=q-secret&z=1"; got != want {
		t.Errorf("query = %q, want %q (added then re-encoded sorted)", got, want)
	}
	if r.Header.Get("X-Mirror-Auth") != "h-secret" || r.Header.Get("User-Agent") != "isoedge-test" {
		t.Errorf("headers = %v", r.Header)
	}
	if r.Header.Get("Range") != "" || r.Header.Get("If-Range") != "" {
		t.Error("Range or If-Range sent for a fresh download")
	}
	if v := r.Header.Get("Accept-Encoding"); v != "" {
		t.Errorf("Accept-Encoding %q: a compressed body would not match Content-Length or resume offsets", v)
	}
	if len(calls) == 0 || calls[len(calls)-1] != [2]int64{total, total} {
		t.Errorf("progress calls = %v, want last (%d, %d)", calls, total, total)
	}
}

func TestFetcherLeavesQueryAloneWithoutParams(t *testing.T) {
	srv, rec := newImageServer(t, nil)
	f, _ := NewFetcher(FetcherConfig{})
	// A signed URL must reach the server byte for byte.
	if _, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso?z=1&a=%2f"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := rec.last().URL.RawQuery; got != "z=1&a=%2f" {
		t.Errorf("query = %q", got)
	}
}

func TestFetcherFile(t *testing.T) {
	p := writeFile(t, t.TempDir(), "local.iso", isoBody)
	f, _ := NewFetcher(FetcherConfig{Query: map[string]string{"ignored": "1"}})
	var first bytes.Buffer
	res, err := f.Fetch(t.Context(), FetchRequest{URL: "file://" + p}, &first)
	if err != nil || first.String() != isoBody {
		t.Fatalf("fresh fetch: %+v, %q, %v", res, first.String(), err)
	}
	info, _ := os.Stat(p)
	if want := fmt.Sprintf("v1 36 file %d", info.ModTime().UnixNano()); res.Validator != want || res.Total != 36 {
		t.Fatalf("result %+v, want validator %q", res, want)
	}
	v := res.Validator
	tests := []struct {
		name      string
		offset    int64
		validator string
		want      string
		err       error
	}{
		{"whole", 0, "", isoBody, nil},
		{"resume", 10, v, isoBody[10:], nil},
		{"resume at end", int64(len(isoBody)), v, "", nil},
		{"beyond end", int64(len(isoBody)) + 1, v, "", ErrNoResume},
		{"resume without validator", 10, "", "", ErrNoResume},
		{"resume with an HTTP validator", 10, `v1 36 etag "x"`, "", ErrNoResume},
		{"resume with another size", 10, strings.Replace(v, "v1 36", "v1 37", 1), "", ErrNoResume},
		{"resume with another mtime", 10, v + "1", "", ErrNoResume},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var last [2]int64
			res, err := f.Fetch(t.Context(), FetchRequest{URL: "file://" + p, Offset: tt.offset, Validator: tt.validator,
				Progress: func(d, tot int64) { last = [2]int64{d, tot} }}, &buf)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				if buf.Len() != 0 || res.N != 0 {
					t.Errorf("wrote %d bytes before refusing", buf.Len())
				}
				return
			}
			if buf.String() != tt.want || res.N != int64(len(tt.want)) {
				t.Errorf("got %d %q, want %q", res.N, buf.String(), tt.want)
			}
			if total := int64(len(isoBody)); last != [2]int64{total, total} {
				t.Errorf("last progress = %v", last)
			}
		})
	}
	t.Run("replaced by a file of the same size", func(t *testing.T) {
		later := info.ModTime().Add(time.Second)
		writeFile(t, filepath.Dir(p), "local.iso", strings.ToUpper(isoBody))
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := f.Fetch(t.Context(), FetchRequest{URL: "file://" + p, Offset: 10, Validator: v}, &buf); !errors.Is(err, ErrNoResume) || buf.Len() != 0 {
			t.Errorf("err = %v after writing %d bytes, want ErrNoResume and nothing written", err, buf.Len())
		}
	})
	if _, err := f.Fetch(t.Context(), FetchRequest{URL: "file://" + filepath.Join(t.TempDir(), "missing.iso")}, io.Discard); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := f.Fetch(t.Context(), FetchRequest{URL: "file://" + t.TempDir()}, io.Discard); err == nil {
		t.Error("a directory was fetched")
	}
}

func TestFetcherFileTooLarge(t *testing.T) {
	p := writeFile(t, t.TempDir(), "local.iso", isoBody)
	f, _ := NewFetcher(FetcherConfig{MaxBytes: 35})
	var buf bytes.Buffer
	called := false
	_, err := f.Fetch(t.Context(), FetchRequest{URL: "file://" + p, OnResponse: func(string, int64) error { called = true; return nil }}, &buf)
	if !errors.Is(err, ErrTooLarge) || buf.Len() != 0 || called {
		t.Errorf("err = %v, %d bytes written, OnResponse called %v; want ErrTooLarge, nothing", err, buf.Len(), called)
	}
}

func TestFetcherHTTPErrors(t *testing.T) {
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
		err    error // nil: any error
	}{
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, nil},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, nil},
		{"204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, nil},
		{"short body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte(isoBody))
		}, io.ErrUnexpectedEOF},
		{"unrequested 206", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 0-3/36")
			w.WriteHeader(http.StatusPartialContent)
			w.Write([]byte(isoBody[:4]))
		}, nil},
		{"redirect without Location", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusFound) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newImageServer(t, tt.handle)
			f, _ := NewFetcher(FetcherConfig{Query: map[string]string{"token": testSecret}})
			_, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/dir/x.iso?sig=abc"}, io.Discard)
			if err == nil {
				t.Fatal("Fetch succeeded")
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			checkFetchErrText(t, err)
		})
	}
}

// checkFetchErrText fails when an error text could leak a query secret.
func checkFetchErrText(t *testing.T, err error) {
	t.Helper()
	for _, bad := range []string{testSecret, "sig=", "?"} {
		if strings.Contains(err.Error(), bad) {
			t.Errorf("error %q contains %q", err, bad)
		}
	}
}

func TestFetcherTransportErrorHidesQuery(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	f, _ := NewFetcher(FetcherConfig{Query: map[string]string{"token": testSecret}})
	_, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso?sig=abc"}, io.Discard)
	if err == nil {
		t.Fatal("Fetch from a closed server succeeded")
	}
	checkFetchErrText(t, err)
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
	res, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso", Progress: func(_, total int64) { lastTotal = total }}, &buf)
	if err != nil || res.N != int64(len(isoBody)) || buf.String() != isoBody {
		t.Fatalf("got %+v %q, %v", res, buf.String(), err)
	}
	if lastTotal != -1 || res.Total != -1 {
		t.Errorf("total = %d (result %d), want -1 when unknown", lastTotal, res.Total)
	}
	if res.Validator != "" {
		t.Errorf("validator %q from a server that offers none", res.Validator)
	}
}

func TestFetcherCancel(t *testing.T) {
	srv, _ := newImageServer(t, nil)
	f, _ := NewFetcher(FetcherConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.Fetch(ctx, FetchRequest{URL: srv.URL + "/x.iso"}, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestFetcherUnsupported(t *testing.T) {
	f, _ := NewFetcher(FetcherConfig{})
	for _, u := range []string{"ftp://h/x.iso", "x.iso", "http://[::1", "file://remote/x.iso"} {
		if _, err := f.Fetch(t.Context(), FetchRequest{URL: u}, io.Discard); err == nil {
			t.Errorf("Fetch(%q) succeeded", u)
		}
	}
	if _, err := f.Fetch(t.Context(), FetchRequest{URL: "file:///x", Offset: -1}, io.Discard); err == nil {
		t.Error("negative offset accepted")
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in               string
		start, end, size int64
		ok               bool
	}{
		{"bytes 5-35/36", 5, 35, 36, true},
		{"bytes 5-35/*", 5, 35, -1, true},
		{"bytes 0-0/1", 0, 0, 1, true},
		{"bytes 5-9/36", 5, 9, 36, true},
		{"bytes */36", 0, 0, 0, false},
		{"bytes 5-4/36", 0, 0, 0, false},
		{"bytes 5-35/5", 0, 0, 0, false},
		{"bytes 5-36/36", 0, 0, 0, false},
		{"items 5-35/36", 0, 0, 0, false},
		{"", 0, 0, 0, false},
		{"bytes -5-35/36", 0, 0, 0, false},
		{"bytes 5-35/-1", 0, 0, 0, false},
	}
	for _, tt := range tests {
		start, end, size, ok := parseContentRange(tt.in)
		if start != tt.start || end != tt.end || size != tt.size || ok != tt.ok {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v; want %d, %d, %d, %v", tt.in, start, end, size, ok, tt.start, tt.end, tt.size, tt.ok)
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
	res, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/big.iso", Progress: func(d, tot int64) {
		calls = append(calls, [2]int64{d, tot})
	}}, io.Discard)
	if err != nil || res.N != int64(size) {
		t.Fatalf("n = %d, err = %v", res.N, err)
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
