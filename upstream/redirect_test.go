package upstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	headerSecret = "h-secret-7"
	querySecret  = "q-secret-9"
)

func redirectFetcher(t *testing.T, cfg FetcherConfig) *Fetcher {
	t.Helper()
	cfg.Headers = map[string]string{"X-Mirror-Auth": headerSecret}
	cfg.Query = map[string]string{"token": querySecret}
	f, err := NewFetcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// checkClean fails unless r carries none of the configured secrets and no
// Referer.
func checkClean(t *testing.T, r *http.Request) {
	t.Helper()
	if v := r.Header.Get("X-Mirror-Auth"); v != "" {
		t.Errorf("%s got the custom header %q", r.Host, v)
	}
	if strings.Contains(r.URL.RawQuery, querySecret) || r.URL.Query().Has("token") {
		t.Errorf("%s got the query secret: %q", r.Host, r.URL.RawQuery)
	}
	if v := r.Header.Get("Referer"); v != "" {
		t.Errorf("%s got Referer %q", r.Host, v)
	}
}

// A redirect to another host (by name: localhost, not 127.0.0.1) loses the
// configured headers and query secrets, even when the Location echoes
// them, and nobody gets a Referer; Range and If-Range still go along.
func TestFetcherCrossHostRedirect(t *testing.T) {
	v := &versionedServer{}
	v.set(isoBody, `"v1"`, mod1)
	cdn, cdnRec := newImageServer(t, v.serve)
	cdnURL := strings.Replace(cdn.URL, "127.0.0.1", "localhost", 1)
	mirror, mirrorRec := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
		// The Location echoes the secret under its name and under another.
		http.Redirect(w, r, cdnURL+"/pub/x.iso?sig=keep&token="+querySecret+"&copy="+querySecret, http.StatusFound)
	})
	f := redirectFetcher(t, FetcherConfig{})
	for _, resume := range []bool{false, true} {
		req := FetchRequest{URL: mirror.URL + "/x.iso?a=1"}
		want := isoBody
		if resume {
			req.Offset, req.Validator, want = 20, `v1 36 etag "v1"`, isoBody[20:]
		}
		var buf bytes.Buffer
		if _, err := f.Fetch(t.Context(), req, &buf); err != nil || buf.String() != want {
			t.Fatalf("resume=%v: %v, %q", resume, err, buf.String())
		}
		m, c := mirrorRec.last(), cdnRec.last()
		if m.Header.Get("X-Mirror-Auth") != headerSecret || m.URL.Query().Get("token") != querySecret {
			t.Errorf("the mirror itself did not get the configured header and query: %v %q", m.Header, m.URL.RawQuery)
		}
		checkClean(t, c)
		if c.URL.RawQuery != "sig=keep" {
			t.Errorf("CDN query %q, want only sig=keep", c.URL.RawQuery)
		}
		if resume && (c.Header.Get("Range") != "bytes=20-" || c.Header.Get("If-Range") != `"v1"`) {
			t.Errorf("CDN got Range %q If-Range %q", c.Header.Get("Range"), c.Header.Get("If-Range"))
		}
	}
}

// Same host name, other port: Go's rule for Authorization keeps the
// headers, and so does Fetcher. Still no Referer.
func TestFetcherSameHostRedirect(t *testing.T) {
	other, otherRec := newImageServer(t, nil)
	mirror, _ := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/x.iso?"+r.URL.RawQuery, http.StatusMovedPermanently)
	})
	f := redirectFetcher(t, FetcherConfig{})
	if _, err := f.Fetch(t.Context(), FetchRequest{URL: mirror.URL + "/x.iso"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	r := otherRec.last()
	if r.Header.Get("X-Mirror-Auth") != headerSecret || r.URL.Query().Get("token") != querySecret {
		t.Errorf("same-host redirect lost the header or the echoed query: %v %q", r.Header, r.URL.RawQuery)
	}
	if v := r.Header.Get("Referer"); v != "" {
		t.Errorf("Referer %q", v)
	}
}

// Once the chain has left the host, coming back does not restore the
// headers (Go's client does the same).
func TestFetcherRedirectDropIsSticky(t *testing.T) {
	var mirrorURL string
	away, awayRec := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, mirrorURL+"/back.iso", http.StatusFound)
	})
	mirror, mirrorRec := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/back.iso" {
			io.WriteString(w, isoBody)
			return
		}
		http.Redirect(w, r, strings.Replace(away.URL, "127.0.0.1", "localhost", 1)+"/x.iso", http.StatusFound)
	})
	mirrorURL = mirror.URL
	f := redirectFetcher(t, FetcherConfig{})
	if _, err := f.Fetch(t.Context(), FetchRequest{URL: mirror.URL + "/x.iso"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	checkClean(t, awayRec.last())
	checkClean(t, mirrorRec.last())
}

func TestFetcherRefusesHTTPSToHTTP(t *testing.T) {
	plain, plainRec := newImageServer(t, nil)
	secure, caFile := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/x.iso", http.StatusFound)
	}))
	f := redirectFetcher(t, FetcherConfig{CAFile: caFile})
	_, err := f.Fetch(t.Context(), FetchRequest{URL: secure.URL + "/x.iso"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "refusing redirect from https to http") {
		t.Fatalf("err = %v, want a refused downgrade", err)
	}
	if n := plainRec.count(); n != 0 {
		t.Errorf("the plain-HTTP server got %d requests", n)
	}
	checkFetchErrText(t, err)
}

func TestFetcherRedirectLimit(t *testing.T) {
	srv, rec := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(r.URL.Path, "/r/%d", &n)
		http.Redirect(w, r, fmt.Sprintf("/r/%d", n+1), http.StatusTemporaryRedirect)
	})
	f := redirectFetcher(t, FetcherConfig{})
	_, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/r/0"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
		t.Fatalf("err = %v", err)
	}
	if n := rec.count(); n != 10 {
		t.Errorf("%d requests, want 10", n)
	}
}

func TestFetcherRedirectToOtherScheme(t *testing.T) {
	srv, _ := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "file:///etc/passwd")
		w.WriteHeader(http.StatusFound)
	})
	f := redirectFetcher(t, FetcherConfig{})
	if _, err := f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso"}, io.Discard); err == nil || !strings.Contains(err.Error(), `scheme "file"`) {
		t.Errorf("err = %v, want a refused scheme", err)
	}
}

// Host names that loopback cannot tell apart are told apart by a transport
// that dials every name to one local server, which reports the Host.
func TestFetcherRedirectSubdomains(t *testing.T) {
	type seenReq struct {
		host  string
		auth  string
		query string
	}
	seen := make(chan seenReq, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, "http://"+to+"/x.iso?token="+querySecret, http.StatusFound)
			return
		}
		seen <- seenReq{r.Host, r.Header.Get("X-Mirror-Auth"), r.URL.RawQuery}
		io.WriteString(w, isoBody)
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	f := redirectFetcher(t, FetcherConfig{Transport: tr})
	tests := []struct {
		to   string
		keep bool
	}{
		{"mirror.example.com", true},
		{"MIRROR.example.com:8080", true},
		{"cdn.mirror.example.com", true},
		{"example.com", false},
		{"evilmirror.example.com", false},
		{"mirror.example.com.evil.net", false},
	}
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			if _, err := f.Fetch(t.Context(), FetchRequest{URL: "http://mirror.example.com/x.iso?to=" + url.QueryEscape(tt.to)}, io.Discard); err != nil {
				t.Fatal(err)
			}
			got := <-seen
			kept := got.auth == headerSecret && strings.Contains(got.query, querySecret)
			dropped := got.auth == "" && !strings.Contains(got.query, querySecret)
			if (tt.keep && !kept) || (!tt.keep && !dropped) {
				t.Errorf("at %s: header %q query %q; want kept=%v", got.host, got.auth, got.query, tt.keep)
			}
		})
	}
}

func TestSameSite(t *testing.T) {
	tests := []struct {
		first, dest string
		want        bool
	}{
		{"http://example.com/a", "https://example.com:8443/b", true},
		{"http://Example.COM/a", "http://example.com/b", true},
		{"http://example.com/a", "http://sub.example.com/b", true},
		{"http://sub.example.com/a", "http://example.com/b", false},
		{"http://example.com/a", "http://badexample.com/b", false},
		{"http://127.0.0.1:1/a", "http://127.0.0.1:2/b", true},
		{"http://127.0.0.1/a", "http://localhost/b", false},
		{"http://[::1]:1/a", "http://[::1]:2/b", true},
		{"http://1/a", "http://[::1]/b", false},
	}
	for _, tt := range tests {
		first, _ := url.Parse(tt.first)
		dest, _ := url.Parse(tt.dest)
		if got := sameSite(first, dest); got != tt.want {
			t.Errorf("sameSite(%s, %s) = %v, want %v", tt.first, tt.dest, got, tt.want)
		}
	}
}

func TestStripKeys(t *testing.T) {
	secrets := map[string]string{"token": "s3cret", "empty": ""}
	tests := []struct{ in, want string }{
		{"a=1&token=s3cret", "a=1"},
		{"a=1&copy=s3cret&b=%2f", "a=1&b=%2F"},
		{"token=other", ""},
		{"z=1&a=%2f", "z=1&a=%2f"}, // nothing removed: byte for byte
		{"", ""},
	}
	for _, tt := range tests {
		u := &url.URL{Scheme: "http", Host: "h", Path: "/x", RawQuery: tt.in}
		stripKeys(u, secrets)
		if u.RawQuery != tt.want {
			t.Errorf("stripKeys(%q) = %q, want %q", tt.in, u.RawQuery, tt.want)
		}
	}
}

// A redirect whose body never ends must not hold the fetch: it is closed,
// not drained.
func TestFetcherRedirectBodyNotDrained(t *testing.T) {
	target, _ := newImageServer(t, nil)
	mirror, _ := newImageServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", target.URL+"/x.iso")
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusFound)
		io.WriteString(w, "moved")
		w.(http.Flusher).Flush()
		blockUntilDone(t, r)
	})
	f, _ := NewFetcher(FetcherConfig{StallTimeout: time.Hour})
	var buf bytes.Buffer
	if _, err := f.Fetch(failsafe(t), FetchRequest{URL: mirror.URL + "/x.iso"}, &buf); err != nil || buf.String() != isoBody {
		t.Fatalf("err = %v, got %q", err, buf.String())
	}
}
