package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// versionedServer serves one version of an image with http.ServeContent,
// which honours Range and If-Range, and can be switched to another version.
type versionedServer struct {
	mu      sync.Mutex
	body    string
	etag    string // "" sends none
	modTime time.Time
}

func (v *versionedServer) set(body, etag string, modTime time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.body, v.etag, v.modTime = body, etag, modTime
}

func (v *versionedServer) serve(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	body, etag, modTime := v.body, v.etag, v.modTime
	v.mu.Unlock()
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	http.ServeContent(w, r, "x.iso", modTime, strings.NewReader(body))
}

var (
	mod1 = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	mod2 = mod1.Add(time.Hour)
)

// fetchFresh downloads url from 0 and returns the validator reported.
func fetchFresh(t *testing.T, f *Fetcher, url string) string {
	t.Helper()
	var buf bytes.Buffer
	res, err := f.Fetch(t.Context(), FetchRequest{URL: url}, &buf)
	if err != nil || buf.String() != isoBody {
		t.Fatalf("fresh fetch: %v, %q", err, buf.String())
	}
	return res.Validator
}

func TestFetcherResumeWithValidator(t *testing.T) {
	tests := []struct {
		name, etag    string
		wantValidator string
		wantIfRange   string
	}{
		{"strong ETag", `"v1"`, `v1 36 etag "v1"`, `"v1"`},
		{"Last-Modified", "", "v1 36 date Tue, 01 Sep 2026 10:00:00 GMT", "Tue, 01 Sep 2026 10:00:00 GMT"},
		{"weak ETag falls back to Last-Modified", `W/"v1"`, "v1 36 date Tue, 01 Sep 2026 10:00:00 GMT", "Tue, 01 Sep 2026 10:00:00 GMT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &versionedServer{}
			v.set(isoBody, tt.etag, mod1)
			srv, rec := newImageServer(t, v.serve)
			f, _ := NewFetcher(FetcherConfig{})
			validator := fetchFresh(t, f, srv.URL+"/x.iso")
			if validator != tt.wantValidator {
				t.Fatalf("validator %q, want %q", validator, tt.wantValidator)
			}
			var buf bytes.Buffer
			var last [2]int64
			res, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso", Offset: 20, Validator: validator,
				Progress: func(d, tot int64) { last = [2]int64{d, tot} }}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if buf.String() != isoBody[20:] || res.N != 16 || res.Total != 36 || res.Validator != validator {
				t.Errorf("got %+v, %q", res, buf.String())
			}
			r := rec.last()
			if r.Header.Get("Range") != "bytes=20-" || r.Header.Get("If-Range") != tt.wantIfRange {
				t.Errorf("Range %q, If-Range %q; want bytes=20-, %q", r.Header.Get("Range"), r.Header.Get("If-Range"), tt.wantIfRange)
			}
			if last != [2]int64{36, 36} {
				t.Errorf("last progress = %v", last)
			}
		})
	}
}

// The mirror replaced the image with another of the same size: the resume
// must not splice the two.
func TestFetcherResumeAfterImageChanged(t *testing.T) {
	other := strings.ToUpper(isoBody)
	tests := []struct {
		name     string
		etag     string
		next     func(v *versionedServer)
		wantReqs int // requests for the resume
	}{
		{"ETag changed", `"v1"`, func(v *versionedServer) { v.set(other, `"v2"`, mod1) }, 1},
		{"Last-Modified changed", "", func(v *versionedServer) { v.set(other, "", mod2) }, 1},
		{"ETag became weak", `"v1"`, func(v *versionedServer) { v.set(other, `W/"v1"`, mod1) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &versionedServer{}
			v.set(isoBody, tt.etag, mod1)
			srv, rec := newImageServer(t, v.serve)
			f, _ := NewFetcher(FetcherConfig{})
			validator := fetchFresh(t, f, srv.URL+"/x.iso")
			tt.next(v)
			var buf bytes.Buffer
			called := false
			res, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso", Offset: 20, Validator: validator,
				OnResponse: func(string, int64) error { called = true; return nil }}, &buf)
			if !errors.Is(err, ErrNoResume) {
				t.Fatalf("err = %v, want ErrNoResume", err)
			}
			if buf.Len() != 0 || res.N != 0 || called {
				t.Errorf("wrote %d bytes (N %d), OnResponse called %v; want nothing", buf.Len(), res.N, called)
			}
			if n := rec.count(); n != 1+tt.wantReqs {
				t.Errorf("%d requests, want %d", n, 1+tt.wantReqs)
			}
		})
	}
}

func TestFetcherResumeRefused(t *testing.T) {
	partial := func(cr, etag string, body string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			if etag != "" {
				w.Header().Set("ETag", etag)
			}
			w.Header().Set("Content-Range", cr)
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, body)
		}
	}
	const good = `v1 36 etag "v1"`
	tests := []struct {
		name      string
		validator string
		handle    func(w http.ResponseWriter, r *http.Request)
		requests  int
	}{
		{"no validator", "", nil, 0},
		{"weak ETag token", `v1 36 etag W/"v1"`, nil, 0},
		{"garbage token", "v0 whatever", nil, 0},
		{"file token", "v1 36 file 123", nil, 0},
		{"offset past the image", `v1 10 etag "v1"`, nil, 0},
		{"200 to a resume", good, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			io.WriteString(w, isoBody)
		}, 1},
		{"416", good, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		}, 1},
		{"206 from elsewhere", good, partial("bytes 0-35/36", `"v1"`, isoBody), 1},
		{"206 with another total", good, partial("bytes 20-39/40", `"v1"`, isoBody[20:]+"more"), 1},
		{"206 with an unknown total", good, partial("bytes 20-35/*", `"v1"`, isoBody[20:]), 1},
		{"206 ignoring If-Range", good, partial("bytes 20-35/36", `"v2"`, isoBody[20:]), 1},
		{"206 without ETag", good, partial("bytes 20-35/36", "", isoBody[20:]), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := newImageServer(t, tt.handle)
			f, _ := NewFetcher(FetcherConfig{})
			var buf bytes.Buffer
			_, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso", Offset: 20, Validator: tt.validator}, &buf)
			if !errors.Is(err, ErrNoResume) {
				t.Fatalf("err = %v, want ErrNoResume", err)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes", buf.Len())
			}
			if n := rec.count(); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
		})
	}
}

func TestFetcherResumeOtherAnswers(t *testing.T) {
	const good = `v1 36 etag "v1"`
	t.Run("a complete copy is checked with its last byte", func(t *testing.T) {
		v := &versionedServer{}
		v.set(isoBody, `"v1"`, mod1)
		srv, rec := newImageServer(t, v.serve)
		f, _ := NewFetcher(FetcherConfig{})
		var buf bytes.Buffer
		res, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso", Offset: 36, Validator: good}, &buf)
		if err != nil || res.N != 0 || buf.Len() != 0 || res.Total != 36 {
			t.Fatalf("got %+v, %d bytes, %v", res, buf.Len(), err)
		}
		if r := rec.last(); r.Header.Get("Range") != "bytes=35-" {
			t.Errorf("Range %q, want bytes=35-", r.Header.Get("Range"))
		}
		v.set(strings.ToUpper(isoBody), `"v2"`, mod1)
		if _, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso", Offset: 36, Validator: good}, &buf); !errors.Is(err, ErrNoResume) {
			t.Errorf("complete copy of a replaced image: err = %v, want ErrNoResume", err)
		}
	})
	t.Run("206 for part of the rest", func(t *testing.T) {
		srv, _ := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Range", "bytes 20-29/36")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, isoBody[20:30])
		})
		f, _ := NewFetcher(FetcherConfig{})
		var buf bytes.Buffer
		res, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso", Offset: 20, Validator: good}, &buf)
		if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrNoResume) {
			t.Fatalf("err = %v, want io.ErrUnexpectedEOF (keep and resume)", err)
		}
		if buf.String() != isoBody[20:30] || res.N != 10 {
			t.Errorf("wrote %q (N %d), want the 10 bytes sent", buf.String(), res.N)
		}
	})
	t.Run("Content-Length disagrees with Content-Range", func(t *testing.T) {
		srv, _ := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Range", "bytes 20-35/36")
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, isoBody[20:25])
		})
		f, _ := NewFetcher(FetcherConfig{})
		var buf bytes.Buffer
		if _, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso", Offset: 20, Validator: good}, &buf); err == nil || buf.Len() != 0 {
			t.Errorf("err = %v after %d bytes, want a refusal before writing", err, buf.Len())
		}
	})
}

// orderWriter records whether OnResponse ran before the first Write.
type orderWriter struct {
	mu     sync.Mutex
	events []string
	buf    bytes.Buffer
}

func (o *orderWriter) event(e string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}

func (o *orderWriter) Write(p []byte) (int, error) {
	o.event("write")
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// The validator must reach the caller before any body byte does, so it can
// be stored before a crash could leave bytes without it.
func TestFetcherOnResponseBeforeBody(t *testing.T) {
	for _, resume := range []bool{false, true} {
		t.Run(fmt.Sprintf("resume=%v", resume), func(t *testing.T) {
			gate := make(chan struct{})
			srv, _ := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"v1"`)
				from := 0
				if r.Header.Get("Range") != "" {
					from = 20
					w.Header().Set("Content-Range", "bytes 20-35/36")
					w.Header().Set("Content-Length", "16")
					w.WriteHeader(http.StatusPartialContent)
				} else {
					w.Header().Set("Content-Length", "36")
					w.WriteHeader(http.StatusOK)
				}
				w.(http.Flusher).Flush()
				// No body until the caller has seen the headers.
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, isoBody[from:])
			})
			f, _ := NewFetcher(FetcherConfig{})
			w := &orderWriter{}
			req := FetchRequest{URL: srv.URL + "/x.iso", OnResponse: func(v string, total int64) error {
				w.event(fmt.Sprintf("response %s %d", v, total))
				close(gate)
				return nil
			}}
			if resume {
				req.Offset, req.Validator = 20, `v1 36 etag "v1"`
			}
			if _, err := f.Fetch(t.Context(), req, w); err != nil {
				t.Fatal(err)
			}
			if len(w.events) < 2 || w.events[0] != `response v1 36 etag "v1" 36` || w.events[1] != "write" {
				t.Errorf("events %q, want the response first, then writes", w.events)
			}
		})
	}
}

func TestFetcherOnResponseErrorAborts(t *testing.T) {
	srv, _ := newImageServer(t, nil)
	f, _ := NewFetcher(FetcherConfig{})
	errPersist := errors.New("cannot persist validator")
	var buf bytes.Buffer
	res, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso", OnResponse: func(string, int64) error { return errPersist }}, &buf)
	if !errors.Is(err, errPersist) || buf.Len() != 0 || res.N != 0 {
		t.Errorf("err = %v, %d bytes written; want the callback's error and nothing written", err, buf.Len())
	}
}

func TestParseValidator(t *testing.T) {
	tests := []struct {
		token string
		want  validator
		ok    bool
	}{
		{`v1 36 etag "abc"`, validator{kindETag, `"abc"`, 36}, true},
		{`v1 -1 etag "abc"`, validator{kindETag, `"abc"`, -1}, true},
		{"v1 36 date Tue, 01 Sep 2026 10:00:00 GMT", validator{kindDate, "Tue, 01 Sep 2026 10:00:00 GMT", 36}, true},
		{"v1 36 file 1788256800000000000", validator{kindFile, "1788256800000000000", 36}, true},
		{"", validator{}, false},
		{`v2 36 etag "abc"`, validator{}, false},
		{`v1 x etag "abc"`, validator{}, false},
		{`v1 -2 etag "abc"`, validator{}, false},
		{`v1 36 etag W/"abc"`, validator{}, false},
		{`v1 36 etag abc`, validator{}, false},
		{"v1 36 date yesterday", validator{}, false},
		{"v1 36 file soon", validator{}, false},
		{"v1 36 sha256 abc", validator{}, false},
		{"v1 36 etag", validator{}, false},
	}
	for _, tt := range tests {
		got, ok := parseValidator(tt.token)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseValidator(%q) = %+v, %v; want %+v, %v", tt.token, got, ok, tt.want, tt.ok)
		}
		if ok && got.String() != tt.token {
			t.Errorf("round trip of %q gives %q", tt.token, got.String())
		}
	}
}

func TestResponseValidator(t *testing.T) {
	const lm = "Tue, 01 Sep 2026 10:00:00 GMT"
	tests := []struct {
		name, etag, lastMod string
		want                string
	}{
		{"strong ETag wins", `"abc"`, lm, `v1 9 etag "abc"`},
		{"weak ETag: date", `W/"abc"`, lm, "v1 9 date " + lm},
		{"unquoted ETag: date", `abc`, lm, "v1 9 date " + lm},
		{"ETag with a space: date", `"a b"`, lm, "v1 9 date " + lm},
		{"oversized ETag: date", `"` + strings.Repeat("a", maxETagLen) + `"`, lm, "v1 9 date " + lm},
		{"bad date: none", "", "yesterday", ""},
		{"nothing", "", "", ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.etag != "" {
			h.Set("ETag", tt.etag)
		}
		if tt.lastMod != "" {
			h.Set("Last-Modified", tt.lastMod)
		}
		if got := responseValidator(h, 9).String(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
