package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
)

func TestPlainHTTPListener(t *testing.T) {
	h := newHarness(t, harnessOpts{plainHTTP: true})
	tests := []struct {
		path string
		code int
	}{
		{"/byid/" + testID + "/4.18/x86_64/full.iso", 404},
		{"/bytoken/" + testJWT("s") + "/4.18/x86_64/full.iso", 404},
		{"/byapikey/" + testJWT("s") + "/4.18/x86_64/full.iso", 404},
		{"/images/" + testID + "?version=4.18&type=full-iso", 404},
		{"/images/" + testID + "/s390x-initrd-addrsize?version=4.18", 404},
		{"/images/" + testID + "/pxe-initrd?version=4.18", 200},
		{"/images/" + testID + "/pxe-initrd?version=4.18&arch=no-such-arch", 400}, // passes the filter
		{"/boot-artifacts/kernel?version=4.18", 200},
		{"/boot-artifacts/rootfs?version=4.18", 200},
		{"/health", 200},
		{"/live", 200},
		{"/metrics", 200},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := h.get(tt.path)
			if r.code != tt.code {
				t.Fatalf("status %d, want %d (body %q)", r.code, tt.code, clip(r.body))
			}
			if tt.code == 404 && string(r.body) != "404 page not found\n" {
				t.Fatalf("body %q", r.body)
			}
		})
	}
	// Everything is served on the TLS listener's handler.
	h2 := newHarness(t, harnessOpts{})
	if r := h2.get("/byid/" + testID + "/4.18/x86_64/full.iso"); r.code != 200 {
		t.Fatalf("full ISO on the main listener: %d", r.code)
	}
}

func TestCORS(t *testing.T) {
	h := newHarness(t, harnessOpts{config: func(c *config.Config) {
		c.AllowedDomains = []string{"https://a.example", "https://*.b.example"}
	}})
	kernel := "/boot-artifacts/kernel?version=4.18"
	iso := "/byid/" + testID + "/4.18/x86_64/full.iso"
	tests := []struct {
		name     string
		method   string
		path     string
		hdr      map[string]string
		code     int
		acao     string // "" means absent
		vary     []string
		noVary   bool
		extraHdr map[string]string
	}{
		{name: "allowed origin", path: kernel, hdr: map[string]string{"Origin": "https://a.example"}, code: 200, acao: "https://a.example", vary: []string{"Origin"}},
		{name: "wildcard origin", path: iso, hdr: map[string]string{"Origin": "https://x.b.example"}, code: 200, acao: "https://x.b.example", vary: []string{"Origin"}},
		{name: "wildcard does not match the bare domain", path: kernel, hdr: map[string]string{"Origin": "https://b.example"}, code: 200, vary: []string{"Origin"}},
		{name: "disallowed origin still served", path: kernel, hdr: map[string]string{"Origin": "https://evil.example"}, code: 200, vary: []string{"Origin"}},
		{name: "no origin", path: kernel, code: 200, vary: []string{"Origin"}},
		{name: "HEAD allowed origin", method: "HEAD", path: kernel, hdr: map[string]string{"Origin": "https://a.example"}, code: 200, acao: "https://a.example", vary: []string{"Origin"}},
		{name: "error answer keeps CORS headers", path: "/byid/" + testID + "/4.18/x86_64/nope.iso", hdr: map[string]string{"Origin": "https://a.example"}, code: 404, acao: "https://a.example", vary: []string{"Origin"}},
		{
			name: "preflight", method: "OPTIONS", path: iso,
			hdr:  map[string]string{"Origin": "https://a.example", "Access-Control-Request-Method": "GET"},
			code: 204, acao: "https://a.example", vary: []string{"Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"},
			extraHdr: map[string]string{"Access-Control-Allow-Methods": "GET", "Access-Control-Max-Age": "600"},
		},
		{
			name: "preflight with allowed headers", method: "OPTIONS", path: kernel,
			hdr:  map[string]string{"Origin": "https://y.b.example", "Access-Control-Request-Method": "HEAD", "Access-Control-Request-Headers": "authorization"},
			code: 204, acao: "https://y.b.example", vary: []string{"Origin"},
			extraHdr: map[string]string{"Access-Control-Allow-Methods": "HEAD", "Access-Control-Allow-Headers": "authorization", "Access-Control-Max-Age": "600"},
		},
		{
			name: "preflight disallowed origin", method: "OPTIONS", path: iso,
			hdr:  map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
			code: 204, vary: []string{"Origin"},
		},
		{
			name: "preflight disallowed method", method: "OPTIONS", path: iso,
			hdr:  map[string]string{"Origin": "https://a.example", "Access-Control-Request-Method": "DELETE"},
			code: 204, vary: []string{"Origin"},
		},
		{
			name: "preflight disallowed header", method: "OPTIONS", path: iso,
			hdr:  map[string]string{"Origin": "https://a.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-Secret"},
			code: 204, vary: []string{"Origin"},
		},
		{name: "health not affected", path: "/health", hdr: map[string]string{"Origin": "https://a.example"}, code: 200, noVary: true},
		{name: "health preflight not answered", method: "OPTIONS", path: "/health", hdr: map[string]string{"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}, code: 200, noVary: true},
		{name: "metrics not affected", path: "/metrics", hdr: map[string]string{"Origin": "https://a.example"}, code: 200, noVary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.method
			if m == "" {
				m = http.MethodGet
			}
			r := h.do(m, tt.path, tt.hdr)
			if r.code != tt.code {
				t.Errorf("status %d, want %d", r.code, tt.code)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != tt.acao {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.acao)
			}
			vary := strings.Join(r.header.Values("Vary"), ", ")
			for _, v := range tt.vary {
				if !strings.Contains(vary, v) {
					t.Errorf("Vary %q lacks %q", vary, v)
				}
			}
			if tt.noVary && vary != "" {
				t.Errorf("Vary = %q on a route without CORS", vary)
			}
			for k, v := range tt.extraHdr {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.acao == "" {
				for _, k := range []string{"Access-Control-Allow-Methods", "Access-Control-Max-Age", "Access-Control-Allow-Headers"} {
					if r.header.Get(k) != "" {
						t.Errorf("%s = %q without an allowed origin", k, r.header.Get(k))
					}
				}
			}
		})
	}
}

// TestCORSPreflightBeforeReadiness: the preflight is answered by the CORS
// layer even while images are not ready (§B.9).
func TestCORSPreflightNotReady(t *testing.T) {
	h := newHarness(t, harnessOpts{config: func(c *config.Config) { c.AllowedDomains = []string{"https://a.example"} }})
	h.bases.ready.Store(false)
	r := h.do("OPTIONS", "/byid/"+testID+"/4.19/x86_64/full.iso", map[string]string{"Origin": "https://a.example", "Access-Control-Request-Method": "GET"})
	if r.code != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://a.example" {
		t.Fatalf("preflight while not ready: %d, ACAO %q", r.code, r.header.Get("Access-Control-Allow-Origin"))
	}
}

// TestLimiterIntegration holds the only slot with an ignition fetch that
// blocks, and checks that another image request is refused after the wait.
// TestLimiterIntegration: requests waiting on assisted-service hold an
// upstream slot, never a stream slot, so boot artifacts (no upstream call)
// are served while assisted-service hangs; over the upstream bound a
// request is refused at once with 503 + Retry-After; stream slots are taken
// only to stream.
func TestLimiterIntegration(t *testing.T) {
	block := make(chan struct{})
	h := newHarness(t, harnessOpts{
		// The next image request may come before the first one's stream
		// has given its slot back: it waits for it.
		config: func(c *config.Config) { c.MaxConcurrentRequests, c.RequestWait = 1, 10*time.Second },
		src:    func(s *fakeSource) { s.block = block },
		server: func(s *Server) { s.snaps.slots = newLimiter(1, 0) },
	})
	iso := "/byid/" + testID + "/4.18/x86_64/full.iso"
	first := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://isoedge.test"+iso, nil)
		resp, err := h.client.Do(req)
		if err != nil {
			first <- result{code: -1}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		first <- result{code: resp.StatusCode, body: b}
	}()
	waitFor(t, "the first request to reach assisted-service", func() bool { return len(h.src.Calls()) > 0 })

	// The one upstream slot is held: requests needing another call to
	// assisted-service (another credential) are refused at once.
	for _, p := range []string{iso, "/images/" + testID + "/pxe-initrd?version=4.18", "/images/" + testID + "/s390x-initrd-addrsize?version=4.18"} {
		r := h.do(http.MethodGet, p, map[string]string{"Authorization": "Bearer other"})
		if r.code != 503 {
			t.Errorf("%s while assisted-service hangs: %d, want 503", p, r.code)
		}
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After (headers %v)", p, r.header)
		}
	}
	// The stream slot is free: boot artifacts and health are served.
	if r := h.get("/boot-artifacts/kernel?version=4.18"); r.code != 200 {
		t.Errorf("boot artifact while assisted-service hangs: %d, want 200", r.code)
	}
	if r := h.get("/health"); r.code != 200 {
		t.Errorf("/health while assisted-service hangs: %d", r.code)
	}
	if !limiterIdle(h) {
		t.Error("a request waiting on assisted-service holds a stream slot")
	}

	close(block)
	r := <-first
	if r.code != 200 || int64(len(r.body)) != baseSize {
		t.Fatalf("first request: status %d, %d bytes", r.code, len(r.body))
	}
	if r := h.get(iso); r.code != 200 {
		t.Fatalf("request after the first finished: %d", r.code)
	}
	waitFor(t, "the slot to be released", func() bool { return limiterIdle(h) })
}

func limiterIdle(h *harness) bool {
	r := h.get("/metrics")
	return strings.Contains(string(r.body), "isoedge_image_streams_active 0\n")
}

// TestLimiterReleasedOnEveryPath makes requests that fail at each step
// after the slot is taken, with a single slot: each must give it back.
func TestLimiterReleasedOnEveryPath(t *testing.T) {
	// Each request may come before the previous stream has given its slot
	// back and waits for it; a leaked slot is never given back, and the
	// request is refused after the wait.
	h := newHarness(t, harnessOpts{config: func(c *config.Config) { c.MaxConcurrentRequests, c.RequestWait = 1, 10*time.Second }})
	paths := []struct {
		path string
		hdr  map[string]string
	}{
		{"/byid/" + testID + "/4.18/x86_64/full.iso", nil},
		{"/byid/" + testID + "/4.18/x86_64/full.iso", map[string]string{"Range": "bytes=0-0"}},
		{"/byid/" + testID + "/4.18/x86_64/full.iso", map[string]string{"Range": "bytes=999999-"}},
		{"/byid/" + testID + "/4.18/x86_64/full.iso", map[string]string{"If-Match": `"x"`}},
		{"/byid/" + testID + "/tiny/x86_64/full.iso", nil},
		{"/images/" + testID + "/pxe-initrd?version=4.18", nil},
		{"/images/" + testID + "/s390x-initrd-addrsize?version=4.18", nil},
		{"/boot-artifacts/kernel?version=4.18", nil},
	}
	for i := 0; i < 2; i++ {
		for _, p := range paths {
			for _, m := range []string{http.MethodGet, http.MethodHead} {
				if r := h.do(m, p.path, p.hdr); r.code == 503 {
					t.Fatalf("%s %s %v: 503, a slot leaked", m, p.path, p.hdr)
				}
			}
		}
	}
	waitFor(t, "all slots released", func() bool { return limiterIdle(h) })
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tok := testJWT("sig")
	reqs := []string{
		"/byid/" + testID + "/4.18/x86_64/full.iso",
		"/bytoken/" + tok + "/4.18/x86_64/full.iso",
		"/byapikey/" + tok + "/4.18/x86_64/nope.iso",
		"/images/" + testID + "?version=4.18&type=full-iso",
		"/images/" + testID + "/pxe-initrd?version=4.18",
		"/images/" + testID + "/s390x-initrd-addrsize?version=4.18",
		"/boot-artifacts/kernel?version=4.18",
		"/boot-artifacts/rootfs",
		"/boot-artifacts/garbage-one?version=4.18",
		"/boot-artifacts/garbage/two?version=4.18",
		"/boot-artifacts/ins-file?version=4.18",
	}
	for _, p := range reqs {
		h.get(p)
	}
	wantLines := []string{
		`assisted_image_service_http_request_duration_seconds_bucket{service="",handler="/byid/:token",method="GET",code="200",le="0.1"} `,
		`assisted_image_service_http_request_duration_seconds_bucket{service="",handler="/byid/:token",method="GET",code="200",le="600"} `,
		`assisted_image_service_http_request_duration_seconds_bucket{service="",handler="/byid/:token",method="GET",code="200",le="+Inf"} `,
		`assisted_image_service_http_request_duration_seconds_count{service="",handler="/bytoken/:token",method="GET",code="200"} 1`,
		`assisted_image_service_http_request_duration_seconds_count{service="",handler="/byapikey/:token",method="GET",code="404"} 1`,
		`assisted_image_service_http_request_duration_seconds_count{service="",handler="/images/:imageID",method="GET",code="200"} 1`,
		`assisted_image_service_http_request_duration_seconds_count{service="",handler="/images/:imageID/pxe-initrd",method="GET",code="200"} 1`,
		`assisted_image_service_http_request_duration_seconds_count{service="",handler="/images/:imageID/s390x-initrd-addrsize",method="GET",code="200"} 1`,
		`assisted_image_service_http_request_duration_seconds_count{service="",handler="/boot-artifacts/kernel",method="GET",code="200"} 1`,
		`assisted_image_service_http_request_duration_seconds_count{service="",handler="/boot-artifacts/rootfs",method="GET",code="400"} 1`,
		`assisted_image_service_http_request_duration_seconds_count{service="",handler="/boot-artifacts/ins-file",method="GET",code="404"} 1`,
		fmt.Sprintf(`assisted_image_service_http_response_size_bytes_bucket{service="",handler="/byid/:token",method="GET",code="200",le="1e+06"} 1`),
		fmt.Sprintf(`assisted_image_service_http_response_size_bytes_sum{service="",handler="/byid/:token",method="GET",code="200"} %d`, baseSize),
		`assisted_image_service_http_response_size_bytes_sum{service="",handler="/images/:imageID/s390x-initrd-addrsize",method="GET",code="200"} 16`,
		`assisted_image_service_http_requests_inflight{service="",handler="/byid/:token"} 0`,
		`assisted_image_service_http_requests_inflight{service="",handler="/boot-artifacts/kernel"} 0`,
	}
	var text string
	waitFor(t, "stream metrics", func() bool {
		text = string(h.get("/metrics").body)
		return strings.Contains(text, `assisted_image_service_http_request_duration_seconds_count{service="",handler="/byid/:token",method="GET",code="200"} 1`) &&
			strings.Contains(text, `assisted_image_service_http_request_duration_seconds_count{service="",handler="/boot-artifacts/kernel",method="GET",code="200"} 1`)
	})
	for _, w := range wantLines {
		if !strings.Contains(text, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
	// Garbage artifact paths share one label, and no label holds a path
	// segment, token or image id.
	var garbageLabels = map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		for _, bad := range []string{"garbage", tok, testID, "nope.iso"} {
			if strings.Contains(line, bad) {
				t.Errorf("metric line holds %q: %s", bad, line)
			}
		}
		if i := strings.Index(line, `handler="/boot-artifacts/`); i >= 0 {
			rest := line[i+len(`handler="`):]
			garbageLabels[rest[:strings.IndexByte(rest, '"')]] = true
		}
		if strings.HasPrefix(line, "assisted_image_service_http_request_duration_seconds_bucket{") && !strings.Contains(line, `le="`) {
			t.Errorf("bucket without le: %s", line)
		}
		if strings.HasPrefix(line, "assisted_image_service_http_") && !strings.Contains(line, `{service="",handler="`) {
			t.Errorf("label set does not start with service, handler: %s", line)
		}
	}
	want := map[string]bool{"/boot-artifacts/kernel": true, "/boot-artifacts/rootfs": true, "/boot-artifacts/ins-file": true}
	other := 0
	for l := range garbageLabels {
		if !want[l] {
			other++
		}
	}
	if other != 1 {
		t.Errorf("boot-artifact handler labels %v: want the three routes plus exactly one for garbage", garbageLabels)
	}
}
