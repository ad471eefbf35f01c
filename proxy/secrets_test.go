package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/upstream"
)

// TestSecretsNotLeaked drives error paths with credentials in every inbound
// form and checks neither the credential nor the JWT reaches a log entry
// (at debug level) or a response.
func TestSecretsNotLeaked(t *testing.T) {
	const secret = "SECRET-123"
	tok := testJWT(secret)
	unauthorized := func(s *fakeSource) { s.ignErr = &upstream.StatusError{Op: "ignition", Code: 401} }
	unavailable := func(s *fakeSource) {
		s.ignErr = fmt.Errorf("%w: dial tcp 10.0.0.1:8090: connection refused", upstream.ErrUnavailable)
	}
	rdUnavailable := func(s *fakeSource) {
		s.ramErr = fmt.Errorf("%w: timeout", upstream.ErrUnavailable)
	}
	tests := []struct {
		name string
		path string
		hdr  map[string]string
		src  func(*fakeSource)
		code int
	}{
		{"long api_key 401", "/images/" + testID + "?version=4.18&type=full-iso&api_key=" + secret, nil, unauthorized, 401},
		{"long image_token 502", "/images/" + testID + "?version=4.18&type=minimal-iso&image_token=" + secret, nil, unavailable, 502},
		{"Authorization 401", "/byid/" + testID + "/4.18/x86_64/full.iso", map[string]string{"Authorization": "Bearer " + secret}, unauthorized, 401},
		{"Authorization 502", "/byid/" + testID + "/4.18/x86_64/full.iso", map[string]string{"Authorization": "Bearer " + secret}, unavailable, 502},
		{"bytoken 401", "/bytoken/" + tok + "/4.18/x86_64/full.iso", nil, unauthorized, 401},
		{"bytoken 502", "/bytoken/" + tok + "/4.18/x86_64/full.iso", nil, unavailable, 502},
		{"byapikey 401", "/byapikey/" + tok + "/4.18/x86_64/minimal.iso", nil, unauthorized, 401},
		{"bytoken bad filename", "/bytoken/" + tok + "/4.18/x86_64/" + "x.iso", nil, nil, 404},
		{"byapikey bad filename", "/byapikey/" + tok + "/4.18/x86_64/" + "x.iso", nil, nil, 404},
		{"bytoken not ready", "/bytoken/" + tok + "/4.19/x86_64/full.iso", nil, nil, 503},
		{"bytoken bad JWT", "/bytoken/" + secret + "/4.18/x86_64/full.iso", nil, nil, 404},
		{"pxe-initrd api_key 401", "/images/" + testID + "/pxe-initrd?version=4.18&api_key=" + secret, nil, unauthorized, 401},
		{"pxe-initrd image_token 502", "/images/" + testID + "/pxe-initrd?version=4.18&image_token=" + secret, nil, rdUnavailable, 502},
		{"addrsize Authorization 401", "/images/" + testID + "/s390x-initrd-addrsize?version=4.18", map[string]string{"Authorization": secret}, unauthorized, 401},
		{"tiny area with api_key", "/images/" + testID + "?version=tiny&type=full-iso&api_key=" + secret, nil, nil, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{src: tt.src})
			r := h.do(http.MethodGet, tt.path, tt.hdr)
			if r.code != tt.code {
				t.Errorf("status %d, want %d (body %q)", r.code, tt.code, clip(r.body))
			}
			var hdrs strings.Builder
			for k, v := range r.header {
				fmt.Fprintf(&hdrs, "%s: %s\n", k, v)
			}
			logs := h.logText()
			for _, s := range []string{secret, tok} {
				if strings.Contains(string(r.body), s) {
					t.Errorf("response body holds %q: %q", s, clip(r.body))
				}
				if strings.Contains(hdrs.String(), s) {
					t.Errorf("response headers hold %q:\n%s", s, hdrs.String())
				}
				if strings.Contains(logs, s) {
					t.Errorf("logs hold %q:\n%s", s, logs)
				}
			}
		})
	}
}
