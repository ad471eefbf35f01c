package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
)

// TestStatusTable has one row per line of §B.14 that applies to isoedge.
func TestStatusTable(t *testing.T) {
	const (
		iso     = "/byid/" + testID + "/4.18/x86_64/full.iso"
		long    = "/images/" + testID
		initrd  = "/images/" + testID + "/pxe-initrd"
		addr    = "/images/" + testID + "/s390x-initrd-addrsize"
		kernel  = "/boot-artifacts/kernel"
		notFnd  = "404 page not found\n"
		anyBody = "\x00any"
	)
	upper := strings.ToUpper(testID)
	tests := []struct {
		name     string
		method   string
		path     string
		hdr      map[string]string
		src      func(*fakeSource)
		notReady bool
		code     int
		body     string // exact; anyBody skips the check
		contains string
		header   map[string]string // exact values; "" means present, any value
	}{
		// Not ready.
		{name: "ISO not ready", path: "/byid/" + testID + "/4.19/x86_64/full.iso", notReady: true, code: 503, body: anyBody, header: map[string]string{"Retry-After": ""}},
		{name: "long ISO not ready", path: long + "?version=4.19&type=minimal-iso", notReady: true, code: 503, body: anyBody, header: map[string]string{"Retry-After": ""}},
		{name: "pxe-initrd not ready", path: initrd + "?version=4.19", notReady: true, code: 503, body: anyBody, header: map[string]string{"Retry-After": ""}},
		{name: "addrsize not ready", path: addr + "?version=4.19", notReady: true, code: 503, body: anyBody, header: map[string]string{"Retry-After": ""}},
		{name: "boot artifact not ready", path: kernel + "?version=4.19", notReady: true, code: 503, body: anyBody, header: map[string]string{"Retry-After": ""}},
		{name: "health not ready", path: "/health", notReady: true, code: 503, body: anyBody, header: map[string]string{"Retry-After": ""}},
		{name: "health ready", path: "/health", code: 200, body: `{"images":[]}`},
		{name: "live", path: "/live", notReady: true, code: 200, body: ""},

		// Unknown paths, bad image ids, missing segments.
		{name: "unknown path", path: "/nope", code: 404, body: notFnd},
		{name: "root", path: "/", code: 404, body: notFnd},
		{name: "top-level addrsize is dead", path: "/s390x-initrd-addrsize", code: 404, body: notFnd},
		{name: "byid missing segments", path: "/byid/" + testID + "/4.18/x86_64", code: 404, body: notFnd},
		{name: "byid extra segment", path: iso + "/x", code: 404, body: notFnd},
		{name: "images uppercase uuid", path: "/images/" + upper + "?version=4.18&type=full-iso", code: 404, body: notFnd},
		{name: "images not a uuid", path: "/images/abc?version=4.18&type=full-iso", code: 404, body: notFnd},
		{name: "byid uppercase uuid", path: "/byid/" + upper + "/4.18/x86_64/full.iso", code: 404, body: notFnd},
		{name: "pxe-initrd uppercase uuid", path: "/images/" + upper + "/pxe-initrd?version=4.18", code: 404, body: notFnd},
		{name: "addrsize short uuid", path: "/images/" + testID[:35] + "/s390x-initrd-addrsize?version=4.18", code: 404, body: notFnd},

		// Long URL parameters (checked before the version lookup).
		{name: "long no version", path: long + "?type=full-iso", code: 400, body: "'version' parameter required\n"},
		{name: "long no type", path: long + "?version=4.18", code: 400, body: "'type' parameter required\n"},
		{name: "long no type, unknown version", path: long + "?version=9.9", code: 400, body: "'type' parameter required\n"},
		{name: "long invalid type", path: long + "?version=4.18&type=foo", code: 400, body: "invalid value 'foo' for parameter 'type'\n"},

		// Short URLs.
		{name: "short bad filename", path: "/byid/" + testID + "/4.18/x86_64/foo.iso", code: 404, body: "unrecognized file name foo.iso\n"},
		{name: "bytoken bad JWT", path: "/bytoken/not-a-jwt/4.18/x86_64/full.iso", code: 404, body: "failed to parse JWT from URL\n"},
		{name: "byapikey foo.bar.baz", path: "/byapikey/foo.bar.baz/4.18/x86_64/full.iso", code: 404, body: anyBody},
		{name: "bytoken no id claim", path: "/bytoken/" + makeJWT(`{"exp":1}`, base64.RawStdEncoding) + "/4.18/x86_64/full.iso", code: 404, body: "InfraEnv ID not found in token\n"},
		{name: "bytoken JWT checked before filename", path: "/bytoken/x/4.18/x86_64/foo.iso", code: 404, body: "failed to parse JWT from URL\n"},

		// ISO version/arch not configured.
		{name: "ISO unknown version", path: "/byid/" + testID + "/9.9/x86_64/full.iso", code: 404, body: notFnd},
		{name: "ISO unknown arch", path: "/byid/" + testID + "/4.18/ppc64le/full.iso", code: 404, body: notFnd},
		{name: "long ISO unknown version", path: long + "?version=9.9&type=full-iso", code: 404, body: notFnd},
		{name: "ISO type not configured", path: "/byid/" + testID + "/4.18/s390x/minimal.iso", code: 404, body: notFnd},

		// pxe-initrd / addrsize / boot-artifacts: 400s.
		{name: "pxe-initrd no version", path: initrd, code: 400, body: "'version' parameter required for initrd download\n"},
		{name: "pxe-initrd unknown version", path: initrd + "?version=9.9", code: 400, body: "version for 9.9 x86_64, not found \n"},
		{name: "pxe-initrd unknown arch", path: initrd + "?version=4.18&arch=aarch64", code: 400, body: "version for 4.18 aarch64, not found \n"},
		{name: "addrsize no version", path: addr, code: 400, body: "'version' parameter required for initrd download\n"},
		{name: "addrsize unknown version", path: addr + "?version=9.9&arch=x86_64", code: 400, body: "version for 9.9 s390x, not found \n"},
		{name: "boot artifact no version", path: kernel, code: 400, body: "Failed to parse query parameters: 'version' parameter required\n"},
		{name: "boot artifacts root no version", path: "/boot-artifacts/", code: 400, body: "Failed to parse query parameters: 'version' parameter required\n"},
		{name: "boot artifact unknown version", path: kernel + "?version=9.9", code: 400, body: "Failed to parse query parameters: version for 9.9 x86_64, not found\n"},

		// boot-artifacts: 404s.
		{name: "boot artifact unknown", path: "/boot-artifacts/foo?version=4.18", code: 404, body: "Failed to parse artifact: malformed download path: /boot-artifacts/foo\n"},
		{name: "boot artifact nested", path: "/boot-artifacts/rootfs/x?version=4.18", code: 404, body: "Failed to parse artifact: malformed download path: /boot-artifacts/rootfs/x\n"},
		{name: "ins-file on x86_64", path: "/boot-artifacts/ins-file?version=4.18", code: 404, body: "Failed to parse artifact: malformed download path: /boot-artifacts/ins-file\n"},

		// Methods.
		{name: "boot artifact POST", method: "POST", path: kernel + "?version=4.18", code: 405, body: anyBody, header: map[string]string{"Allow": ""}},
		{name: "boot artifact PUT", method: "PUT", path: kernel + "?version=4.18", code: 405, body: anyBody, header: map[string]string{"Allow": ""}},
		{name: "ISO POST", method: "POST", path: iso, code: 405, body: anyBody, header: map[string]string{"Allow": ""}},
		{name: "pxe-initrd DELETE", method: "DELETE", path: initrd + "?version=4.18", code: 405, body: anyBody, header: map[string]string{"Allow": ""}},

		// assisted-service statuses passed through (ISOs: empty body).
		{name: "ISO ignition 401", path: iso, src: func(s *fakeSource) { s.ignErr = &upstream.StatusError{Op: "ignition", Code: 401} }, code: 401, body: ""},
		{name: "ISO ignition 403", path: iso, src: func(s *fakeSource) { s.ignErr = &upstream.StatusError{Op: "ignition", Code: 403} }, code: 403, body: ""},
		{name: "ISO ignition 404", path: iso, src: func(s *fakeSource) { s.ignErr = &upstream.StatusError{Op: "ignition", Code: 404} }, code: 404, body: ""},
		{name: "ISO infra-env 503", path: iso, src: func(s *fakeSource) { s.kargErr = &upstream.StatusError{Op: "infra-env", Code: 503} }, code: 503, body: ""},
		{name: "minimal ISO ramdisk 403", path: "/byid/" + testID + "/4.18/x86_64/minimal.iso", src: func(s *fakeSource) { s.ramErr = &upstream.StatusError{Op: "minimal-initrd", Code: 403} }, code: 403, body: ""},
		{name: "pxe-initrd ignition 401", path: initrd + "?version=4.18", src: func(s *fakeSource) { s.ignErr = &upstream.StatusError{Op: "ignition", Code: 401} }, code: 401, contains: "error retrieving ignition content"},
		{name: "pxe-initrd ramdisk 503", path: initrd + "?version=4.18", src: func(s *fakeSource) { s.ramErr = &upstream.StatusError{Op: "minimal-initrd", Code: 503} }, code: 503, body: anyBody},
		{name: "addrsize ignition 404", path: addr + "?version=4.18", src: func(s *fakeSource) { s.ignErr = &upstream.StatusError{Op: "ignition", Code: 404} }, code: 404, contains: "error retrieving ignition content"},

		// assisted-service unreachable, bad answers, build errors.
		{name: "ISO unavailable", path: iso, src: func(s *fakeSource) { s.ignErr = fmt.Errorf("%w: x", upstream.ErrUnavailable) }, code: 502, body: "assisted-service is unavailable\n"},
		{name: "pxe-initrd unavailable", path: initrd + "?version=4.18", src: func(s *fakeSource) { s.ramErr = fmt.Errorf("%w: x", upstream.ErrUnavailable) }, code: 502, body: "assisted-service is unavailable\n"},
		{name: "ISO bad kargs", path: iso, src: func(s *fakeSource) { s.kargErr = fmt.Errorf("%w: operation replace", upstream.ErrBadResponse) }, code: 500, body: "unexpected response from assisted-service\n"},
		{name: "ISO unexpected error", path: iso, src: func(s *fakeSource) { s.ignErr = errors.New("boom") }, code: 500, body: "internal error\n"},
		{name: "ignition archive larger than the area", path: "/byid/" + testID + "/tiny/x86_64/full.iso", code: 500, contains: "images/ignition.img"},
		{name: "ramdisk larger than its area", path: "/byid/" + testID + "/4.18/x86_64/minimal.iso", src: func(s *fakeSource) { s.ramdisk = make([]byte, extRamdisk.Len+1) }, code: 500, contains: customize.PathCustomRamdisk},

		// s390x kernel arguments.
		{name: "kargs on s390x", path: "/byid/" + testID + "/4.18/s390x/full.iso", src: func(s *fakeSource) { s.kargs = []string{"rd.neednet=1"} }, code: 400, body: "kargs cannot be modified in s390x architecture ISOs\n"},
		{name: "kargs on s390x long URL", path: long + "?version=4.18&arch=s390x&type=disconnected-iso", src: func(s *fakeSource) { s.kargs = []string{"a"} }, code: 400, body: "kargs cannot be modified in s390x architecture ISOs\n"},
		{name: "no kargs on s390x", path: "/byid/" + testID + "/4.18/s390x/full.iso", code: 200, body: anyBody},
		{name: "karg that would change the boot config", path: iso, src: func(s *fakeSource) { s.kargs = []string{"ok=1", "x=1;linux /evil"} }, code: 400, body: `customize: invalid kernel argument "x=1;linux /evil": ';' is not allowed (only ASCII letters, digits and -_.,:/=+@%~)` + "\n"},

		// Ranges and conditionals.
		{name: "range", path: kernel + "?version=4.18", hdr: map[string]string{"Range": "bytes=0-9"}, code: 206, body: anyBody, header: map[string]string{"Content-Range": fmt.Sprintf("bytes 0-9/%d", extVmlinuz.Len), "Content-Length": "10"}},
		{name: "range not satisfiable", path: kernel + "?version=4.18", hdr: map[string]string{"Range": "bytes=5000-"}, code: 416, body: anyBody, header: map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", extVmlinuz.Len)}},
		{name: "malformed range ignored", path: kernel + "?version=4.18", hdr: map[string]string{"Range": "bytes=9-2"}, code: 200, body: anyBody},
		{name: "if-modified-since", path: kernel + "?version=4.18", hdr: map[string]string{"If-Modified-Since": testBaseModTime.Format(http.TimeFormat)}, code: 304, body: ""},
		{name: "if-unmodified-since", path: kernel + "?version=4.18", hdr: map[string]string{"If-Unmodified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}, code: 412, body: anyBody},
		{name: "if-match", path: iso, hdr: map[string]string{"If-Match": `"nope"`}, code: 412, body: anyBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{src: tt.src})
			if tt.notReady {
				h.bases.ready.Store(false)
			}
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			r := h.do(method, tt.path, tt.hdr)
			if r.code != tt.code {
				t.Errorf("%s %s: status %d, want %d (body %q)", method, tt.path, r.code, tt.code, clip(r.body))
			}
			if tt.body != anyBody && tt.contains == "" && string(r.body) != tt.body {
				t.Errorf("%s %s: body %q, want %q", method, tt.path, clip(r.body), tt.body)
			}
			if tt.contains != "" && !bytes.Contains(r.body, []byte(tt.contains)) {
				t.Errorf("%s %s: body %q does not contain %q", method, tt.path, clip(r.body), tt.contains)
			}
			for k, v := range tt.header {
				got, ok := r.header[http.CanonicalHeaderKey(k)]
				switch {
				case !ok:
					t.Errorf("%s %s: no %s header (headers %v)", method, tt.path, k, r.header)
				case v != "" && got[0] != v:
					t.Errorf("%s %s: %s = %q, want %q", method, tt.path, k, got[0], v)
				}
			}
		})
	}
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// TestISOContent checks the bytes, headers and upstream calls of the ISO
// routes.
func TestISOContent(t *testing.T) {
	tok := testJWT("sig")
	tests := []struct {
		name        string
		path        string
		hdr         map[string]string
		kargs       []string
		ramdisk     []byte
		isoType     string
		filename    string
		cred        upstream.Credential
		wantRamdisk bool
	}{
		{name: "byid full", path: "/byid/" + testID + "/4.18/x86_64/full.iso", isoType: "full-iso", filename: testID + "-discovery.iso"},
		{name: "byid full with kargs", path: "/byid/" + testID + "/4.18/x86_64/full.iso", kargs: []string{"a=b", "c"}, isoType: "full-iso", filename: testID + "-discovery.iso"},
		{name: "minimal with ramdisk", path: "/byid/" + testID + "/4.18/x86_64/minimal.iso", ramdisk: []byte("static network ramdisk"), isoType: "minimal-iso", filename: testID + "-discovery.iso", wantRamdisk: true},
		{name: "disconnected", path: "/byid/" + testID + "/4.18/x86_64/disconnected.iso", isoType: "disconnected-iso", filename: "agent-ove.x86_64.iso"},
		{name: "disconnected s390x", path: "/byid/" + testID + "/4.18/s390x/disconnected.iso", isoType: "disconnected-iso", filename: "agent-ove.s390x.iso"},
		{name: "long default arch", path: "/images/" + testID + "?version=4.18&type=full-iso&api_key=k1", isoType: "full-iso", filename: testID + "-discovery.iso", cred: upstream.Credential{Kind: upstream.CredAPIKey, Value: "k1"}},
		{name: "long disconnected", path: "/images/" + testID + "?version=4.18&type=disconnected-iso", isoType: "disconnected-iso", filename: "agent-ove.x86_64.iso"},
		{name: "byapikey", path: "/byapikey/" + tok + "/4.18/x86_64/full.iso", isoType: "full-iso", filename: testID + "-discovery.iso", cred: upstream.Credential{Kind: upstream.CredAPIKey, Value: tok}},
		{name: "bytoken", path: "/bytoken/" + tok + "/4.18/x86_64/full.iso", isoType: "full-iso", filename: testID + "-discovery.iso", cred: upstream.Credential{Kind: upstream.CredImageToken, Value: tok}},
		{name: "bytoken with api_key query", path: "/bytoken/" + tok + "/4.18/x86_64/full.iso?api_key=q", isoType: "full-iso", filename: testID + "-discovery.iso", cred: upstream.Credential{Kind: upstream.CredAPIKey, Value: "q"}},
		{name: "byid with Authorization", path: "/byid/" + testID + "/4.18/x86_64/full.iso", hdr: map[string]string{"Authorization": "Bearer xyz"}, isoType: "full-iso", filename: testID + "-discovery.iso", cred: upstream.Credential{Kind: upstream.CredAuthorization, Value: "Bearer xyz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{src: func(s *fakeSource) { s.kargs, s.ramdisk = tt.kargs, tt.ramdisk }})
			r := h.do(http.MethodGet, tt.path, tt.hdr)
			if r.code != 200 {
				t.Fatalf("status %d, body %q", r.code, clip(r.body))
			}
			want := wantISO(t, h.base, testIgnition, tt.kargs, tt.ramdisk)
			if !bytes.Equal(r.body, want) {
				t.Errorf("body differs from the expected ISO (%d vs %d bytes)", len(r.body), len(want))
			}
			if got, w := r.header.Get("Content-Disposition"), "attachment; filename="+tt.filename; got != w {
				t.Errorf("Content-Disposition = %q, want %q", got, w)
			}
			if got := r.header.Get("Last-Modified"); got != testUpstream {
				t.Errorf("Last-Modified = %q, want %q", got, testUpstream)
			}
			if r.header.Get("ETag") == "" || r.header.Get("Accept-Ranges") != "bytes" {
				t.Errorf("ETag %q, Accept-Ranges %q", r.header.Get("ETag"), r.header.Get("Accept-Ranges"))
			}
			ops := map[string]bool{}
			for _, c := range h.src.Calls() {
				ops[c.op] = true
				if c.imageID != testID {
					t.Errorf("%s called for %q, want %q", c.op, c.imageID, testID)
				}
				if c.cred != tt.cred {
					t.Errorf("%s called with credential %v %q, want %v %q", c.op, c.cred.Kind, c.cred.Value, tt.cred.Kind, tt.cred.Value)
				}
				if c.op == "ignition" && c.isoType != tt.isoType {
					t.Errorf("ignition called with type %q, want %q", c.isoType, tt.isoType)
				}
			}
			if !ops["ignition"] || !ops["infra-env"] || ops["minimal-initrd"] != tt.wantRamdisk {
				t.Errorf("upstream calls %v", ops)
			}

			// HEAD: same headers, no body, and the upstream calls again.
			hr := h.do(http.MethodHead, tt.path, tt.hdr)
			if hr.code != 200 || len(hr.body) != 0 || hr.header.Get("Content-Length") != fmt.Sprint(baseSize) {
				t.Errorf("HEAD: status %d, %d body bytes, Content-Length %q", hr.code, len(hr.body), hr.header.Get("Content-Length"))
			}
			if hr.header.Get("ETag") != r.header.Get("ETag") {
				t.Errorf("HEAD ETag %q differs from GET %q", hr.header.Get("ETag"), r.header.Get("ETag"))
			}

			// A range of the customized ISO, across the start of the ignition area.
			rr := h.do(http.MethodGet, tt.path, mergeHdr(tt.hdr, "Range", fmt.Sprintf("bytes=%d-%d", extIgnImg.Off-10, extIgnImg.Off+9)))
			if rr.code != 206 || !bytes.Equal(rr.body, want[extIgnImg.Off-10:extIgnImg.Off+10]) {
				t.Errorf("range: status %d, body %x", rr.code, rr.body)
			}
		})
	}
}

func mergeHdr(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range h {
		out[a] = b
	}
	return out
}

func TestISOLastModifiedFallback(t *testing.T) {
	h := newHarness(t, harnessOpts{src: func(s *fakeSource) { s.lastMod = "not a date" }})
	r := h.get("/byid/" + testID + "/4.18/x86_64/full.iso")
	if r.code != 200 {
		t.Fatalf("status %d", r.code)
	}
	if _, err := http.ParseTime(r.header.Get("Last-Modified")); err != nil {
		t.Fatalf("Last-Modified %q: %v", r.header.Get("Last-Modified"), err)
	}
}

func TestPXEInitrd(t *testing.T) {
	for _, ramdisk := range [][]byte{nil, []byte("someinitrdcontent")} {
		t.Run(fmt.Sprintf("ramdisk=%d", len(ramdisk)), func(t *testing.T) {
			h := newHarness(t, harnessOpts{src: func(s *fakeSource) { s.ramdisk = ramdisk }})
			r := h.do(http.MethodGet, "/images/"+testID+"/pxe-initrd?version=4.18&image_token=tk", nil)
			if r.code != 200 {
				t.Fatalf("status %d, body %q", r.code, clip(r.body))
			}
			archive, _ := customize.IgnitionArchive([]byte(testIgnition))
			want := append(append(bytes.Clone(slice(h.base, extInitrd)), archive...), ramdisk...)
			if !bytes.Equal(r.body, want) {
				t.Errorf("body: %d bytes, want %d", len(r.body), len(want))
			}
			if got := r.header.Get("Content-Disposition"); got != "attachment; filename="+testID+"-initrd.img" {
				t.Errorf("Content-Disposition = %q", got)
			}
			for _, c := range h.src.Calls() {
				if c.op == "infra-env" {
					t.Errorf("kernel arguments fetched for a PXE initrd")
				}
				if c.op == "ignition" && c.isoType != "" {
					t.Errorf("ignition fetched with type %q for a PXE initrd", c.isoType)
				}
				if c.cred != (upstream.Credential{Kind: upstream.CredImageToken, Value: "tk"}) {
					t.Errorf("%s with credential %v", c.op, c.cred.Kind)
				}
			}
		})
	}
}

func TestAddrsize(t *testing.T) {
	for _, ramdisk := range [][]byte{nil, []byte("someinitrdcontent")} {
		t.Run(fmt.Sprintf("ramdisk=%d", len(ramdisk)), func(t *testing.T) {
			h := newHarness(t, harnessOpts{src: func(s *fakeSource) { s.ramdisk = ramdisk }})
			// arch is forced to s390x; the query's is ignored.
			r := h.get("/images/" + testID + "/s390x-initrd-addrsize?version=4.18&arch=x86_64")
			if r.code != 200 {
				t.Fatalf("status %d, body %q", r.code, clip(r.body))
			}
			archive, _ := customize.IgnitionArchive([]byte(testIgnition))
			n := uint64(extInitrd.Len) + uint64(len(archive)) + uint64(len(ramdisk))
			want := binary.BigEndian.AppendUint64([]byte{1, 2, 3, 4, 5, 6, 7, 8}, n)
			if !bytes.Equal(r.body, want) {
				t.Errorf("body %x, want %x", r.body, want)
			}
			if got := r.header.Get("Content-Disposition"); got != "attachment; filename="+testID+"-initrd.addrsize" {
				t.Errorf("Content-Disposition = %q", got)
			}
		})
	}
}

func TestBootArtifacts(t *testing.T) {
	tests := []struct {
		name, path, filename string
		want                 func(base []byte) []byte
	}{
		{"kernel", "/boot-artifacts/kernel?version=4.18", "vmlinuz", func(b []byte) []byte { return slice(b, extVmlinuz) }},
		{"rootfs", "/boot-artifacts/rootfs?version=4.18&arch=x86_64", "rootfs.img", func(b []byte) []byte { return slice(b, extRootfs) }},
		{"s390x kernel.img fallback", "/boot-artifacts/kernel?version=4.18&arch=s390x", "vmlinuz", func(b []byte) []byte { return slice(b, extKernel) }},
		{"s390x ins-file", "/boot-artifacts/ins-file?version=4.18&arch=s390x", "generic.ins", func(b []byte) []byte { return slice(b, extIns) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			r := h.get(tt.path)
			if r.code != 200 {
				t.Fatalf("status %d, body %q", r.code, clip(r.body))
			}
			if !bytes.Equal(r.body, tt.want(h.base)) {
				t.Errorf("body differs (%d bytes)", len(r.body))
			}
			if got := r.header.Get("Content-Disposition"); got != "attachment; filename="+tt.filename {
				t.Errorf("Content-Disposition = %q", got)
			}
			if got := r.header.Get("Last-Modified"); got != testBaseModTime.Format(http.TimeFormat) {
				t.Errorf("Last-Modified = %q", got)
			}
			if len(h.src.Calls()) != 0 {
				t.Errorf("boot artifacts called assisted-service: %v", h.src.Calls())
			}
		})
	}
}
