package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testStall is the stall timeout of tests that expect one; the other
// timeouts are set far away so that only the one under test can fire.
const testStall = 300 * time.Millisecond

// failsafe bounds a test that would otherwise hang if the timeout under
// test did not work; it is far longer than any timeout under test.
func failsafe(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// blockUntilDone parks a handler until the client goes away or the test ends.
func blockUntilDone(t *testing.T, r *http.Request) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	select {
	case <-r.Context().Done():
	case <-done:
	}
}

func TestFetcherStallAfterHeaders(t *testing.T) {
	for _, sent := range []int{0, 10} {
		t.Run(fmt.Sprintf("%d bytes then silence", sent), func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000")
				w.Header().Set("ETag", `"v1"`)
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, isoBody[:sent])
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}))
			defer srv.Close()
			defer close(release)
			f, _ := NewFetcher(FetcherConfig{StallTimeout: testStall, HeaderTimeout: time.Hour})
			ctx := failsafe(t)
			var buf bytes.Buffer
			res, err := f.Fetch(ctx, FetchRequest{URL: srv.URL + "/x.iso"}, &buf)
			if !errors.Is(err, ErrStalled) || ctx.Err() != nil {
				t.Fatalf("err = %v (failsafe: %v), want ErrStalled", err, ctx.Err())
			}
			if !strings.Contains(err.Error(), "no data for 300ms") {
				t.Errorf("error %q does not say how long it waited", err)
			}
			if res.N != int64(sent) || buf.String() != isoBody[:sent] || res.Validator != `v1 1000 etag "v1"` {
				t.Errorf("result %+v, wrote %q; want the %d bytes sent kept and the validator", res, buf.String(), sent)
			}
		})
	}
}

// slowWriter takes longer than the stall timeout over its first write.
type slowWriter struct {
	delay time.Duration
	buf   bytes.Buffer
	once  sync.Once
}

func (s *slowWriter) Write(p []byte) (int, error) {
	s.once.Do(func() { <-time.After(s.delay) })
	return s.buf.Write(p)
}

// A slow disk is not a stalled mirror: only time spent waiting for the
// body counts.
func TestFetcherStallIgnoresWriterTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "36")
		io.WriteString(w, isoBody[:10])
		w.(http.Flusher).Flush()
		io.WriteString(w, isoBody[10:])
	}))
	defer srv.Close()
	f, _ := NewFetcher(FetcherConfig{StallTimeout: testStall})
	w := &slowWriter{delay: 3 * testStall}
	if _, err := f.Fetch(failsafe(t), FetchRequest{URL: srv.URL + "/x.iso"}, w); err != nil || w.buf.String() != isoBody {
		t.Fatalf("err = %v, got %q", err, w.buf.String())
	}
}

func TestFetcherHeaderTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		blockUntilDone(t, r)
	}))
	defer srv.Close()
	f, _ := NewFetcher(FetcherConfig{HeaderTimeout: testStall, StallTimeout: time.Hour})
	ctx := failsafe(t)
	_, err := f.Fetch(ctx, FetchRequest{URL: srv.URL + "/x.iso"}, io.Discard)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || ctx.Err() != nil || errors.Is(err, ErrStalled) {
		t.Fatalf("err = %v (failsafe: %v), want a header timeout", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Errorf("error %q does not say what timed out", err)
	}
}

// rawServer answers every request with head followed by what body writes
// on the hijacked connection, until body returns.
func rawServer(t *testing.T, head string, body func(w *bufio.Writer, stop <-chan struct{})) *httptest.Server {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		buf.WriteString(head)
		body(buf.Writer, stop)
		buf.Flush()
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv
}

// endless writes chunks until the peer goes away, the test ends or 1 GiB
// has been written.
func endless(w *bufio.Writer, stop <-chan struct{}) {
	chunk := bytes.Repeat([]byte("X"), 32<<10)
	for i := 0; i < (1<<30)/len(chunk); i++ {
		select {
		case <-stop:
			return
		default:
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// A mirror that goes on after its Content-Length must not fill the disk.
func TestFetcherStopsAtContentLength(t *testing.T) {
	srv := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 36\r\n\r\n"+isoBody, endless)
	f, _ := NewFetcher(FetcherConfig{StallTimeout: time.Hour})
	var buf bytes.Buffer
	res, err := f.Fetch(failsafe(t), FetchRequest{URL: srv.URL + "/x.iso"}, &buf)
	if err != nil || res.N != 36 || buf.String() != isoBody {
		t.Fatalf("got %+v, %d bytes, %v; want exactly the 36 declared", res, buf.Len(), err)
	}
}

func TestFetcherMaxBytes(t *testing.T) {
	const max = 1 << 20
	declared := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(max+1))
		w.Write(bytes.Repeat([]byte("X"), max+1))
	}
	undeclared := func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("X"), 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush() // chunked: no Content-Length
		}
	}
	exact := func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("X"), max)) // chunked, exactly at the bound
		w.(http.Flusher).Flush()
	}
	tests := []struct {
		name        string
		handle      http.HandlerFunc
		cfgMax      int64
		reqMax      int64
		wantWritten int
		err         error
	}{
		{"declared, request bound", declared, 0, max, 0, ErrTooLarge},
		{"declared, config bound", declared, max, 0, 0, ErrTooLarge},
		{"declared, request cannot raise the config bound", declared, max, 4 * max, 0, ErrTooLarge},
		{"endless undeclared", undeclared, 0, max, max, ErrTooLarge},
		{"undeclared, exactly the bound", exact, 0, max, max, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handle)
			defer srv.Close()
			f, _ := NewFetcher(FetcherConfig{MaxBytes: tt.cfgMax})
			var buf bytes.Buffer
			called := false
			res, err := f.Fetch(failsafe(t), FetchRequest{URL: srv.URL + "/x.iso", MaxBytes: tt.reqMax,
				OnResponse: func(string, int64) error { called = true; return nil }}, &buf)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if buf.Len() != tt.wantWritten || res.N != int64(tt.wantWritten) {
				t.Errorf("wrote %d bytes (N %d), want %d", buf.Len(), res.N, tt.wantWritten)
			}
			if called != (tt.wantWritten > 0) {
				t.Errorf("OnResponse called %v; a declared oversize is refused before it", called)
			}
		})
	}
}

func TestFetcherMaxBytesOnResume(t *testing.T) {
	v := &versionedServer{}
	v.set(isoBody, `"v1"`, mod1)
	srv, rec := newImageServer(t, v.serve)
	f, _ := NewFetcher(FetcherConfig{})
	var buf bytes.Buffer
	_, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso", Offset: 20, Validator: `v1 -1 etag "v1"`, MaxBytes: 30}, &buf)
	if !errors.Is(err, ErrTooLarge) || buf.Len() != 0 {
		t.Errorf("Content-Range total over the bound: err = %v, %d bytes written", err, buf.Len())
	}
	// A partial copy already over the bound is refused without a request.
	_, err = f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso", Offset: 31, Validator: `v1 36 etag "v1"`, MaxBytes: 30}, &buf)
	if !errors.Is(err, ErrTooLarge) || rec.count() != 1 {
		t.Errorf("offset over the bound: err = %v after %d requests", err, rec.count())
	}
}

// A body that keeps coming, if slowly, is not stalled even when the whole
// download takes many stall timeouts.
func TestFetcherSlowButSteadyBody(t *testing.T) {
	const stall = time.Second // 12 chunks 100ms apart: longer in all than one stall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "36")
		tick := time.NewTicker(stall / 10)
		defer tick.Stop()
		for i := 0; i < 36; i += 3 {
			io.WriteString(w, isoBody[i:i+3])
			w.(http.Flusher).Flush()
			<-tick.C
		}
	}))
	defer srv.Close()
	f, _ := NewFetcher(FetcherConfig{StallTimeout: stall})
	var buf bytes.Buffer
	if _, err := f.Fetch(failsafe(t), FetchRequest{URL: srv.URL + "/x.iso"}, &buf); err != nil || buf.String() != isoBody {
		t.Fatalf("err = %v, got %q", err, buf.String())
	}
}
