package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/isoedge/isoedge/upstream"
)

// rawRequest sends b as is on a new connection and returns what the
// server answers before closing or going quiet.
func (h *harness) rawRequest(t *testing.T, b string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := h.dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, b); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(bufio.NewReader(c))
	return string(out)
}

// TestMalformedRequestsLogNoSecrets: requests fasthttp cannot parse carry
// credentials in the query, headers and path; at debug level not one log
// line may hold them.
func TestMalformedRequestsLogNoSecrets(t *testing.T) {
	h := newHarness(t, harnessOpts{tcp: true})
	tok := testJWT("SECRETSIG4")
	reqs := []string{
		"GET /images/" + testID + "?version=4.18&type=full-iso&api_key=SECRET1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRET2\r\nthis line has no colon\r\n\r\n",
		"GET /images/" + testID + "/pxe-initrd?version=4.18&image_token=SECRET3 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
		"GET /bytoken/" + tok + "/4.18/x86_64/full.iso?api_key=SECRET1\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /byid/" + testID + "/4.18/x86_64/full.iso?api_key=SECRET1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRET2\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n",
		"GET /byid/" + testID + "/4.18/x86_64/full.iso?api_key=SECRET1 HTTP/9.9 extra\r\nHost: x\r\n\r\n",
	}
	for _, r := range reqs {
		out := h.rawRequest(t, r)
		if strings.HasPrefix(out, "HTTP/1.1 200") || strings.HasPrefix(out, "HTTP/1.1 206") {
			t.Errorf("a malformed request was served: %.80q", out)
		}
	}
	logs := h.logText()
	for _, secret := range []string{"SECRET1", "SECRET2", "SECRET3", "SECRETSIG4", tok} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds %q:\n%s", secret, logs)
		}
	}
}

// TestJWTIDMustBeValid: the InfraEnv id taken from a token names the
// InfraEnv upstream and the download's file name: anything but a valid id
// is a 404 and never reaches Content-Disposition or assisted-service.
func TestJWTIDMustBeValid(t *testing.T) {
	h := newHarness(t, harnessOpts{tcp: true})
	for _, sub := range []string{`\u0000`, `x; filename=evil.exe; a=`, `../../etc`, strings.ToUpper(testID)} {
		payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"` + sub + `"}`))
		tok := jwtHeader + "." + payload + ".sig"
		for _, route := range []string{"/bytoken/", "/byapikey/"} {
			r := h.get(route + tok + "/4.18/x86_64/full.iso")
			if r.code != http.StatusNotFound || r.header.Get("Content-Disposition") != "" {
				t.Errorf("sub %q on %s: %d, Content-Disposition %q", sub, route, r.code, r.header.Get("Content-Disposition"))
			}
		}
	}
	if n := len(h.src.Calls()); n != 0 {
		t.Errorf("%d calls reached assisted-service", n)
	}
}

// TestUnexpectedUpstreamStatusIs502: an answer from assisted-service that
// is neither a success nor an error status becomes 502 with a reason.
func TestUnexpectedUpstreamStatusIs502(t *testing.T) {
	h := newHarness(t, harnessOpts{tcp: true, src: func(s *fakeSource) {
		s.ignErr = &upstream.GatewayError{Op: "ignition", Code: 302}
	}})
	r := h.get("/byid/" + testID + "/4.18/x86_64/full.iso")
	if r.code != http.StatusBadGateway || !strings.Contains(string(r.body), "302") {
		t.Errorf("status %d, body %q; want 502 naming the status", r.code, r.body)
	}
}
