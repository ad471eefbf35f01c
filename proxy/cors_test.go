package proxy

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/config"
)

// corsDo sends a request with repeatable headers over the harness client.
func corsDo(t *testing.T, h *harness, method, path string, hdr http.Header) result {
	t.Helper()
	req, err := http.NewRequest(method, "http://isoedge.test"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, body}
}

// TestCORSAsRSCors runs the CORS cases where rs/cors v1.11.1, as the
// original configures it, differs from a naive implementation, over a
// loopback TCP listener.
func TestCORSAsRSCors(t *testing.T) {
	kernel := "/boot-artifacts/kernel?version=4.18"
	iso := "/byid/" + testID + "/4.18/x86_64/full.iso"
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = append(h[kv[i]], kv[i+1])
		}
		return h
	}
	type want struct {
		code   int
		acao   string   // "" means absent
		acah   []string // Access-Control-Allow-Headers lines
		acam   string
		vary   []string // exact Vary lines
		maxAge string
	}
	tests := []struct {
		name    string
		domains []string
		method  string
		path    string
		hdr     http.Header
		want    want
	}{
		// Origins compare case-insensitively; the request's origin is echoed.
		{"upper-case config, lower-case origin", []string{"https://A.Example"}, "GET", kernel, hdr("Origin", "https://a.example"),
			want{code: 200, acao: "https://a.example", vary: []string{"Origin"}}},
		{"upper-case origin echoed as sent", []string{"https://a.example"}, "GET", iso, hdr("Origin", "HTTPS://A.EXAMPLE"),
			want{code: 200, acao: "HTTPS://A.EXAMPLE", vary: []string{"Origin"}}},
		{"wildcard, mixed case", []string{"https://*.B.example"}, "HEAD", kernel, hdr("Origin", "https://X.b.EXAMPLE"),
			want{code: 200, acao: "https://X.b.EXAMPLE", vary: []string{"Origin"}}},
		{"wildcard needs its prefix and suffix", []string{"https://*.b.example"}, "GET", kernel, hdr("Origin", "https://b.example"),
			want{code: 200, vary: []string{"Origin"}}},

		// "*" answers "*".
		{"star", []string{"*"}, "GET", kernel, hdr("Origin", "https://anything.example"),
			want{code: 200, acao: "*", vary: []string{"Origin"}}},
		{"star among others", []string{"https://a.example", "*"}, "GET", iso, hdr("Origin", "https://a.example"),
			want{code: 200, acao: "*", vary: []string{"Origin"}}},
		{"star without Origin", []string{"*"}, "GET", kernel, hdr(),
			want{code: 200, vary: []string{"Origin"}}},
		{"star preflight", []string{"*"}, "OPTIONS", iso, hdr("Origin", "https://z.example", "Access-Control-Request-Method", "GET"),
			want{code: 204, acao: "*", acam: "GET", maxAge: "600", vary: []string{corsPreflightVary}}},

		// A plain OPTIONS is an actual request: rs/cors allows OPTIONS
		// and adds its headers, then the route answers (405 here).
		{"plain OPTIONS keeps CORS headers", []string{"https://a.example"}, "OPTIONS", iso, hdr("Origin", "https://a.example"),
			want{code: 405, acao: "https://a.example", vary: []string{"Origin"}}},
		{"plain OPTIONS on a boot artifact", []string{"https://a.example"}, "OPTIONS", kernel, hdr("Origin", "https://a.example"),
			want{code: 405, acao: "https://a.example", vary: []string{"Origin"}}},
		{"plain OPTIONS, other origin", []string{"https://a.example"}, "OPTIONS", iso, hdr("Origin", "https://evil.example"),
			want{code: 405, vary: []string{"Origin"}}},
		{"POST gets no CORS grant", []string{"https://a.example"}, "POST", iso, hdr("Origin", "https://a.example"),
			want{code: 405, vary: []string{"Origin"}}},

		// Preflights.
		{"preflight for OPTIONS", []string{"https://a.example"}, "OPTIONS", iso, hdr("Origin", "https://a.example", "Access-Control-Request-Method", "OPTIONS"),
			want{code: 204, acao: "https://a.example", acam: "OPTIONS", maxAge: "600", vary: []string{corsPreflightVary}}},
		{"preflight method is case-sensitive", []string{"https://a.example"}, "OPTIONS", iso, hdr("Origin", "https://a.example", "Access-Control-Request-Method", "get"),
			want{code: 204, vary: []string{corsPreflightVary}}},
		{"preflight without Origin", []string{"*"}, "OPTIONS", iso, hdr("Access-Control-Request-Method", "GET"),
			want{code: 204, vary: []string{corsPreflightVary}}},
		{"headers as browsers send them", []string{"https://a.example"}, "OPTIONS", iso,
			hdr("Origin", "https://a.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization,content-type"),
			want{code: 204, acao: "https://a.example", acam: "GET", acah: []string{"authorization,content-type"}, maxAge: "600", vary: []string{corsPreflightVary}}},
		{"one space around a name", []string{"https://a.example"}, "OPTIONS", iso,
			hdr("Origin", "https://a.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization, content-type"),
			want{code: 204, acao: "https://a.example", acam: "GET", acah: []string{"authorization, content-type"}, maxAge: "600", vary: []string{corsPreflightVary}}},
		{"headers split over two lines", []string{"https://a.example"}, "OPTIONS", iso,
			hdr("Origin", "https://a.example", "Access-Control-Request-Method", "HEAD", "Access-Control-Request-Headers", "authorization", "Access-Control-Request-Headers", "content-type"),
			want{code: 204, acao: "https://a.example", acam: "HEAD", acah: []string{"authorization", "content-type"}, maxAge: "600", vary: []string{corsPreflightVary}}},
		{"empty request headers", []string{"https://a.example"}, "OPTIONS", iso,
			hdr("Origin", "https://a.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", ""),
			want{code: 204, acao: "https://a.example", acam: "GET", maxAge: "600", vary: []string{corsPreflightVary}}},
		{"headers out of order", []string{"https://a.example"}, "OPTIONS", iso,
			hdr("Origin", "https://a.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "content-type,authorization"),
			want{code: 204, vary: []string{corsPreflightVary}}},
		{"header not lower case", []string{"https://a.example"}, "OPTIONS", iso,
			hdr("Origin", "https://a.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "Authorization"),
			want{code: 204, vary: []string{corsPreflightVary}}},
		{"header repeated", []string{"https://a.example"}, "OPTIONS", iso,
			hdr("Origin", "https://a.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization,authorization"),
			want{code: 204, vary: []string{corsPreflightVary}}},
		{"header not allowed", []string{"https://a.example"}, "OPTIONS", iso,
			hdr("Origin", "https://a.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization,x-secret"),
			want{code: 204, vary: []string{corsPreflightVary}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{tcp: true, config: func(c *config.Config) { c.AllowedDomains = tt.domains }})
			r := corsDo(t, h, tt.method, tt.path, tt.hdr)
			w := tt.want
			if r.code != w.code {
				t.Errorf("status %d, want %d", r.code, w.code)
			}
			if got := r.header.Values("Access-Control-Allow-Origin"); !slices.Equal(got, nonEmpty(w.acao)) {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, w.acao)
			}
			if got := r.header.Values("Access-Control-Allow-Methods"); !slices.Equal(got, nonEmpty(w.acam)) {
				t.Errorf("Access-Control-Allow-Methods %q, want %q", got, w.acam)
			}
			if got := r.header.Values("Access-Control-Allow-Headers"); !slices.Equal(got, w.acah) {
				t.Errorf("Access-Control-Allow-Headers %q, want %q", got, w.acah)
			}
			if got := r.header.Values("Access-Control-Max-Age"); !slices.Equal(got, nonEmpty(w.maxAge)) {
				t.Errorf("Access-Control-Max-Age %q, want %q", got, w.maxAge)
			}
			if got := r.header.Values("Vary"); !slices.Equal(got, w.vary) {
				t.Errorf("Vary %q, want %q", got, w.vary)
			}
			if r.header.Get("Access-Control-Allow-Credentials") != "" || r.header.Get("Access-Control-Expose-Headers") != "" {
				t.Errorf("credentials or exposed headers: %v", r.header)
			}
		})
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func TestCORSHeadersAllowed(t *testing.T) {
	tests := []struct {
		values []string
		want   bool
	}{
		{nil, true},
		{[]string{""}, true},
		{[]string{"authorization"}, true},
		{[]string{"content-type"}, true},
		{[]string{"authorization,content-type"}, true},
		{[]string{"authorization", "content-type"}, true},
		{[]string{" authorization ,\tcontent-type "}, true},
		{[]string{"authorization,,content-type,"}, true},
		{[]string{"  "}, true}, // rs/cors lets one more blank go when that empties the element
		{[]string{"   "}, false},
		{[]string{"  authorization"}, false},
		{[]string{"authorization  "}, false},
		{[]string{"content-type", "authorization"}, false},
		{[]string{"Content-Type"}, false},
		{[]string{"content-type,content-type"}, false},
		{[]string{"origin"}, false},
		{[]string{"authorization" + strings.Repeat(",", 16)}, true},
		{[]string{"authorization" + strings.Repeat(",", 17)}, false},
	}
	for _, tt := range tests {
		var vs [][]byte
		for _, v := range tt.values {
			vs = append(vs, []byte(v))
		}
		if got := corsHeadersAllowed(vs); got != tt.want {
			t.Errorf("corsHeadersAllowed(%q) = %v, want %v", tt.values, got, tt.want)
		}
	}
}
