package proxy

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/isoedge/isoedge/upstream"
	"go.uber.org/zap/zapcore"
)

// TestAccessLogAndRequestID: every image and artifact request writes one
// info line with method, route, status, bytes, duration, client and
// request id; X-Request-Id round-trips when safe, else a new id is made;
// the id is on the request's other log lines too.
func TestAccessLogAndRequestID(t *testing.T) {
	h := newHarness(t, harnessOpts{tcp: true})
	iso := "/byid/" + testID + "/4.18/x86_64/full.iso"
	accessLines := func(id string) []map[string]any {
		var out []map[string]any
		for _, e := range h.logs.FilterMessage("request").All() {
			m := e.ContextMap()
			if m["request_id"] == id && e.Level == zapcore.InfoLevel {
				out = append(out, m)
			}
		}
		return out
	}

	r := h.do(http.MethodGet, iso, map[string]string{"X-Request-Id": "bmc-42.a_b"})
	if r.code != 200 || r.header.Get("X-Request-Id") != "bmc-42.a_b" {
		t.Fatalf("status %d, X-Request-Id %q", r.code, r.header.Get("X-Request-Id"))
	}
	// The line is written when the stream ends, after the client has
	// read the body.
	waitCond(t, 10*time.Second, "the access-log line", func() bool { return len(accessLines("bmc-42.a_b")) == 1 })
	m := accessLines("bmc-42.a_b")[0]
	if m["method"] != "GET" || m["route"] != routeByID || m["status"] != int64(200) || m["bytes"] != baseSize || m["client"] == "" || m["duration"] == nil {
		t.Errorf("access-log line %v", m)
	}
	if strings.Contains(h.logText(), testID+"/4.18") {
		t.Error("the access log holds the request path")
	}

	for _, bad := range []string{"has space", strings.Repeat("x", 65), "a;b", ""} {
		r := h.do(http.MethodGet, "/boot-artifacts/kernel?version=4.18", map[string]string{"X-Request-Id": bad})
		got := r.header.Get("X-Request-Id")
		if r.code != 200 || got == bad || !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(got) {
			t.Errorf("X-Request-Id %q: answered %q (status %d), want a new id", bad, got, r.code)
		}
		waitCond(t, 10*time.Second, "artifact access line", func() bool { return len(accessLines(got)) == 1 })
	}

	// An upstream error is logged with the request's id, and a 404 from
	// assisted-service shows at info in the access log.
	h.src.mu.Lock()
	h.src.ignErr = upstream.ErrUnavailable
	h.src.mu.Unlock()
	if r := h.do(http.MethodGet, iso, map[string]string{"X-Request-Id": "fails-1"}); r.code != 502 {
		t.Fatalf("status %d, want 502", r.code)
	}
	found := false
	for _, e := range h.logs.FilterMessage("request failed").All() {
		if e.ContextMap()["request_id"] == "fails-1" {
			found = true
		}
	}
	if !found {
		t.Error("the upstream error was not logged with the request id")
	}
	h.src.mu.Lock()
	h.src.ignErr = &upstream.StatusError{Op: "ignition", Code: 404}
	h.src.mu.Unlock()
	if r := h.do(http.MethodGet, iso, map[string]string{"X-Request-Id": "unknown-env"}); r.code != 404 {
		t.Fatalf("status %d, want 404", r.code)
	}
	if l := accessLines("unknown-env"); len(l) != 1 || l[0]["status"] != int64(404) {
		t.Errorf("404 for an unknown InfraEnv: access lines %v", l)
	}
}
