//go:build abuse

package abuse

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/isoedge/isoedge/internal/fixture"
)

// Item 1. With HTTPS and HTTP_LISTEN_PORT, the plain port serves only
// pxe-initrd, boot artifacts, /health, /live and /metrics, whatever the
// spelling of the path.
func TestPlainHTTPPortServesNoISO(t *testing.T) {
	x86 := buildBase(t, fixture.Options{})
	s390 := buildBase(t, fixture.Options{Arch: "s390x"})
	m := newMirror(t, "127.0.0.1")
	m.put("/x86_64.iso", x86.data, `"x86"`)
	m.put("/s390x.iso", s390.data, `"s390x"`)
	imgX := image("4.17", m.url("/x86_64.iso"))
	imgS := image("4.17", m.url("/s390x.iso"))
	imgS.CPUArchitecture = "s390x"
	as := newAssisted(t)
	certPEM, keyPEM := selfSigned(t, "127.0.0.1")
	svc := newService(t, map[string]string{
		"HTTPS_CERT_FILE":       writeFile(t, "tls.crt", certPEM),
		"HTTPS_KEY_FILE":        writeFile(t, "tls.key", keyPEM),
		"HTTP_LISTEN_PORT":      freePort(t),
		"OS_IMAGES":             osImagesJSON(t, imgX, imgS),
		"ASSISTED_SERVICE_HOST": as.hostPort(),
	})
	svc.start()
	svc.waitReady(90*time.Second, imgX, imgS)
	plain := "127.0.0.1:" + svc.env["HTTP_LISTEN_PORT"]
	id := envID
	jwt := makeJWT(`{"sub":"`+id+`"}`, "signature")

	// Sanity: the legitimate spellings work on the HTTPS port.
	for _, p := range []string{
		"/byid/" + id + "/4.17/x86_64/full.iso",
		"/bytoken/" + jwt + "/4.17/x86_64/full.iso",
		"/byapikey/" + jwt + "/4.17/x86_64/full.iso",
		"/images/" + id + "?version=4.17&arch=x86_64&type=full-iso",
	} {
		r := svc.get(p, nil)
		if r.status != http.StatusOK || len(r.body) != len(x86.data) {
			t.Fatalf("HTTPS GET %s: %d with %d bytes, want 200 with the %d-byte ISO", p, r.status, len(r.body), len(x86.data))
		}
	}
	if r := svc.get("/images/"+id+"/s390x-initrd-addrsize?version=4.17", nil); r.status != http.StatusOK {
		t.Fatalf("HTTPS addrsize: %d %q", r.status, r.body)
	}
	// Sanity: what the plain port must serve, it serves.
	for _, p := range []string{
		"/health", "/live", "/metrics",
		"/images/" + id + "/pxe-initrd?version=4.17&arch=x86_64",
		"/boot-artifacts/kernel?version=4.17&arch=x86_64",
	} {
		r := rawExchange(plain, "GET "+p+" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", "GET", 64<<20, false)
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("plain GET %s: %d %v, want 200", p, r.status, r.err)
		}
	}

	enc := func(s string) string { return strings.NewReplacer("/", "%2F", ".", "%2E").Replace(s) }
	attacks := []string{
		"/bytoken/" + jwt + "%2F%2E%2E%2F%2E%2E/4.17/x86_64/full.iso?api_key=K",
		"/byapikey/" + jwt + "%2F%2E%2E%2F%2E%2E/4.17/x86_64/full.iso?api_key=K",
		"/bytoken/" + jwt + "%2f%2e%2e%2f%2e%2e/4.17/x86_64/full.iso",
		"/bytoken/" + jwt + "%2F%2E%2E%2F%2E%2E%2F%2E%2E/4.17/x86_64/full.iso",
		"/bytoken/" + jwt + "%2F..%2F..%2F..%2F..%2Fimages%2F" + id + "%2Fpxe-initrd/4.17/x86_64/full.iso",
		"/bytoken/" + jwt + "/4.17/x86_64/full.iso?api_key=K",
		"/byapikey/" + jwt + "/4.17/x86_64/full.iso",
		"/byid/" + id + "/4.17/x86_64/full.iso",
		"/byid/" + id + "/4.17/x86_64/minimal.iso",
		"//byid/" + id + "/4.17/x86_64/full.iso",
		"/byid//" + id + "/4.17/x86_64/full.iso",
		"/byid/" + id + "//4.17/x86_64/full.iso",
		"/byid/" + id + "/4.17/x86_64//full.iso",
		"/./byid/" + id + "/4.17/x86_64/full.iso",
		"/x/../byid/" + id + "/4.17/x86_64/full.iso",
		"/images/" + id + "/pxe-initrd/../../byid/" + id + "/4.17/x86_64/full.iso",
		"/images/" + id + "/pxe-initrd/%2E%2E/%2E%2E/byid/" + id + "/4.17/x86_64/full.iso",
		"/images/" + id + "/pxe-initrd" + enc("/../../byid/"+id+"/4.17/x86_64/full.iso"),
		"/byid" + enc("/"+id+"/4.17/x86_64/full.iso"),
		"/%62yid/" + id + "/4.17/x86_64/full.iso",
		"/byid/" + id + "/4.17/x86_64/full%2Eiso",
		"/byid/" + id + "/4.17/x86_64/full.iso#/pxe-initrd",
		"/byid/" + id + "/4.17/x86_64/full.iso;/pxe-initrd",
		"/BYID/" + id + "/4.17/x86_64/full.iso",
		"/ByToken/" + jwt + "/4.17/x86_64/full.iso",
		"/Images/" + id + "?version=4.17&type=full-iso",
		"/IMAGES/" + id + "/S390X-INITRD-ADDRSIZE?version=4.17",
		"/images/" + id + "?version=4.17&type=full-iso",
		"/images/" + id + "?version=4.17&arch=x86_64&type=full-iso&x=/pxe-initrd",
		"/images/" + id + "/?version=4.17&type=full-iso",
		"/images/" + id + "%2F?version=4.17&type=full-iso",
		"/images/pxe-initrd?version=4.17&type=full-iso",
		"/images/" + id + "/s390x-initrd-addrsize?version=4.17",
		"/images/" + id + "/s390x-initrd-addrsize?version=4.17&arch=s390x",
		"/images/" + id + "%2Fs390x-initrd-addrsize?version=4.17",
		"/images/" + id + "/pxe-initrd/../s390x-initrd-addrsize?version=4.17",
		"http://127.0.0.1/byid/" + id + "/4.17/x86_64/full.iso",
		"http://127.0.0.1/bytoken/" + jwt + "%2F%2E%2E%2F%2E%2E/4.17/x86_64/full.iso",
	}
	for _, p := range attacks {
		for _, method := range []string{"GET", "HEAD"} {
			r := rawExchange(plain, method+" "+p+" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", method, 1<<20, false)
			switch {
			case r.err != nil:
				t.Errorf("plain %s %s: %v", method, p, r.err)
			case r.status != http.StatusNotFound && r.status != http.StatusBadRequest:
				t.Errorf("plain %s %s: status %d (%d body bytes), want 404 or 400: the plain-HTTP port serves it", method, p, r.status, len(r.body))
			case len(r.body) >= 1024 || r.more || bytes.Contains(r.body, []byte("CD001")):
				t.Errorf("plain %s %s: %d with a body of %d bytes, want < 1 KiB and no ISO bytes", method, p, r.status, len(r.body))
			}
		}
	}
}

// Item 2. A credential refused by assisted-service stops serving the
// download it started: a fresh refusal drops the snapshot at once, and a
// snapshot lives at most IGNITION_CACHE_TTL after it was fetched.
func TestRevokedCredential(t *testing.T) {
	const ttl = 3 * time.Second
	r := newRig(t, fixture.Options{}, map[string]string{"IGNITION_CACHE_TTL": "3s"}, nil)
	r.startReady(t)

	t.Run("fresh refusal drops the snapshot", func(t *testing.T) {
		p := isoPath("full.iso") + "?image_token=TOKEN-A"
		first, err := r.svc.do("GET", p, map[string]string{"Range": "bytes=0-1023"})
		if err != nil || first.status != http.StatusPartialContent {
			t.Fatalf("first Range request: %d %v, want 206", first.status, err)
		}
		r.as.revoke("TOKEN-A")
		fresh, err := r.svc.do("GET", p, nil)
		if err != nil || fresh.status != http.StatusUnauthorized {
			t.Fatalf("fresh request after revocation: %d %v, want 401", fresh.status, err)
		}
		cont, err := r.svc.do("GET", p, map[string]string{"Range": "bytes=1024-2047"})
		if err != nil || cont.status != http.StatusUnauthorized {
			t.Fatalf("continuing Range request right after a 401: %d %v, want 401 (the refusal must drop the snapshot)", cont.status, err)
		}
	})

	t.Run("snapshot lifetime is absolute", func(t *testing.T) {
		const cred = "Bearer TOKEN-B"
		hdr := map[string]string{"Authorization": cred, "Range": "bytes=0-1023"}
		first, err := r.svc.do("GET", isoPath("full.iso"), hdr)
		if err != nil || first.status != http.StatusPartialContent {
			t.Fatalf("first Range request: %d %v, want 206", first.status, err)
		}
		fetched := r.as.ignitionSentAt(cred)
		if fetched.IsZero() {
			t.Fatal("assisted-service never answered the ignition call for the credential")
		}
		r.as.revoke(cred)
		deadline := fetched.Add(ttl + time.Second)
		hdr["Range"] = "bytes=1024-2047"
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			sent := time.Now()
			c, err := r.svc.do("GET", isoPath("full.iso"), hdr)
			if err != nil {
				t.Fatal(err)
			}
			switch c.status {
			case http.StatusUnauthorized:
				again, err := r.svc.do("GET", isoPath("full.iso"), hdr)
				if err != nil || again.status != http.StatusUnauthorized {
					t.Fatalf("after the first 401 a continuing request got %d %v", again.status, err)
				}
				t.Logf("continuations refused %v after the fetch", sent.Sub(fetched).Round(time.Millisecond))
				return
			case http.StatusPartialContent:
				if sent.After(deadline) {
					t.Fatalf("a continuing Range request sent %v after the fetch (TTL %v + 1 s) was still served 206: the snapshot's lifetime slides with use", sent.Sub(fetched).Round(time.Millisecond), ttl)
				}
			default:
				t.Fatalf("continuing Range request: status %d %q", c.status, c.body)
			}
			<-tick.C
		}
	})
}

// Item 3. Malformed requests carrying credentials leave no credential in
// any log line, even at LOG_LEVEL=debug.
func TestNoSecretsInLogs(t *testing.T) {
	r := newRig(t, fixture.Options{}, nil, nil)
	r.startReady(t)
	jwt := makeJWT(`{"sub":"`+envID+`"}`, "SECRET4 signature of the image token")
	sig := jwt[strings.LastIndexByte(jwt, '.')+1:]
	secrets := map[string]string{"SECRET1": "SECRET1", "SECRET2": "SECRET2", "SECRET3": "SECRET3", "JWT": jwt, "JWT signature": sig}
	for _, c := range []string{"SECRET1", "Bearer SECRET2", "SECRET3", jwt} {
		r.as.revoke(c) // well-formed requests are refused (logged at debug)
	}

	q := "?api_key=SECRET1&image_token=SECRET3"
	iso := isoPath("full.iso")
	tok := "/bytoken/" + jwt + "/4.17/x86_64/full.iso"
	key := "/byapikey/" + jwt + "/4.17/x86_64/full.iso"
	auth := "Authorization: Bearer SECRET2\r\n"
	pad := strings.Repeat("p", 64<<10)
	requests := []struct{ name, req string }{
		{"header line without a colon", "GET " + iso + q + " HTTP/1.1\r\nHost: x\r\n" + auth + "NoColonHere SECRET2\r\n\r\n"},
		{"Content-Length abc", "GET " + iso + q + " HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: abc\r\n\r\n"},
		{"NUL in the request line", "GET " + iso + q + "\x00 HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"},
		{"NUL inside the query", "GET " + iso + "?api_key=SECRET1\x00&image_token=SECRET3 HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"},
		{"overlong header", "GET " + iso + q + " HTTP/1.1\r\nHost: x\r\n" + auth + "X-Pad: " + pad + "\r\n\r\n"},
		{"overlong request line", "GET " + iso + q + "&pad=" + pad + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"},
		{"overlong Authorization", "GET " + iso + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRET2" + pad + "\r\n\r\n"},
		{"bad HTTP version", "GET " + iso + q + " HTTP/9.Z\r\nHost: x\r\n" + auth + "\r\n"},
		{"no HTTP version", "GET " + tok + q + "\r\n" + auth + "\r\n"},
		{"token path, header without a colon", "GET " + tok + " HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"},
		{"token path, NUL", "GET " + tok + "\x00 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"token path, bad percent escape", "GET /bytoken/" + jwt + "%zz/4.17/x86_64/full.iso" + q + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"},
		{"api key path, Content-Length abc", "POST " + key + q + " HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: abc\r\n\r\n"},
		{"api key path, overlong header", "GET " + key + " HTTP/1.1\r\nHost: x\r\nX-Pad: " + pad + "\r\n\r\n"},
		{"secrets in a header name", "GET " + iso + " HTTP/1.1\r\nHost: x\r\nSECRET2" + jwt + ": v\r\n\r\n"},
		{"chunked with a bad size", "POST " + iso + q + " HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\nzz\r\nSECRET2\r\n"},
		{"refused api_key", "GET " + iso + "?api_key=SECRET1 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"refused image_token", "GET " + iso + "?image_token=SECRET3 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"refused Authorization", "GET " + iso + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"},
		{"refused token path", "GET " + tok + " HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"refused pxe-initrd", "GET /images/" + envID + "/pxe-initrd?version=4.17" + "&api_key=SECRET1 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"unknown route with secrets", "GET /nothing/" + jwt + q + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"},
		{"unknown version with secrets", "GET /bytoken/" + jwt + "/9.99/x86_64/full.iso" + q + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"},
	}
	for _, rq := range requests {
		res := rawExchange(r.svc.addr(), rq.req, "GET", 1<<20, true)
		t.Logf("%s: status %d err %v", rq.name, res.status, res.err)
	}
	// The process must have logged everything it will log about them.
	r.svc.finish()
	if r.svc.logs.truncated() {
		t.Fatal("log output over 256 MiB: cannot check all of it")
	}
	leaks := 0
	for _, line := range strings.Split(r.svc.logs.String(), "\n") {
		for name, s := range secrets {
			if strings.Contains(line, s) {
				leaks++
				if leaks <= 20 {
					t.Errorf("log line leaks %s: %.400q", name, line)
				}
			}
		}
	}
	if leaks > 20 {
		t.Errorf("%d leaking log lines in all", leaks)
	}
}

// Item 4. An InfraEnv id from a JWT that holds a NUL or would inject a
// Content-Disposition parameter is refused with 404 before any header is
// built from it.
func TestHostileInfraEnvIDInToken(t *testing.T) {
	r := newRig(t, fixture.Options{}, nil, nil)
	r.startReady(t)
	for _, claims := range []string{
		`{"sub":"\u0000"}`,
		`{"sub":"x; filename=evil.exe; a="}`,
		`{"infra_env_id":"\u0000"}`,
		`{"infra_env_id":"x; filename=evil.exe; a="}`,
	} {
		for _, route := range []string{"bytoken", "byapikey"} {
			jwt := makeJWT(claims, "sig")
			p := "/" + route + "/" + jwt + "/4.17/x86_64/full.iso"
			res, err := r.svc.do("GET", p, nil)
			switch {
			case err != nil:
				t.Errorf("%s %s: %v", route, claims, err)
			case res.status != http.StatusNotFound:
				t.Errorf("%s with claims %s: status %d (Content-Disposition %q), want 404", route, claims, res.status, res.header.Get("Content-Disposition"))
			case res.header.Get("Content-Disposition") != "":
				t.Errorf("%s with claims %s: 404 but Content-Disposition %q", route, claims, res.header.Get("Content-Disposition"))
			}
		}
	}
}

// Item 5. assisted-service answering the ignition call with a redirect
// without Location, 204 or 202 is a bad gateway; its refusals and errors
// pass through with their own code.
func TestIgnitionAnswerStatuses(t *testing.T) {
	r := newRig(t, fixture.Options{}, nil, nil)
	r.startReady(t)
	cases := []struct{ upstream, want int }{
		{301, 502}, {302, 502}, {307, 502}, {204, 502}, {202, 502},
		{401, 401}, {403, 403}, {404, 404}, {500, 500},
	}
	for i, c := range cases {
		id := infraEnvID(0x500 + i)
		r.as.set(id, &envBehaviour{ignStatus: c.upstream})
		t.Run(fmt.Sprint(c.upstream), func(t *testing.T) {
			res, err := r.svc.do("GET", "/byid/"+id+"/4.17/x86_64/full.iso", nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.status != c.want {
				t.Fatalf("assisted-service answered %d: client got %d (%d body bytes), want %d", c.upstream, res.status, len(res.body), c.want)
			}
			if c.want == http.StatusBadGateway {
				if len(bytes.TrimSpace(res.body)) == 0 || !utf8.Valid(res.body) || bytes.IndexByte(res.body, 0) >= 0 {
					t.Fatalf("502 body %q, want a non-empty text", res.body)
				}
			}
		})
	}
}

// Item 6. An OS image download redirected to another host carries none of
// the configured request headers or query secrets there, and no Referer;
// an https → http redirect is refused.
func TestOSImageRedirects(t *testing.T) {
	t.Run("to another host", func(t *testing.T) {
		base := buildBase(t, fixture.Options{})
		a := newMirror(t, "127.0.0.1")
		b := newMirror(t, "127.0.0.2")
		b.put("/elsewhere/rhcos.iso", base.data, `"b"`)
		a.redirect("/rhcos.iso", b.url("/elsewhere/rhcos.iso"))
		img := image("4.17", a.url("/rhcos.iso"))
		svc := newService(t, map[string]string{
			"OS_IMAGES":                      osImagesJSON(t, img),
			"ASSISTED_SERVICE_HOST":          newAssisted(t).hostPort(),
			"OS_IMAGES_REQUEST_HEADERS":      `{"X-Mirror-Token":"HSECRET-6","Authorization":"Bearer ASECRET-6"}`,
			"OS_IMAGES_REQUEST_QUERY_PARAMS": `{"mirror_key":"QSECRET-6"}`,
		})
		svc.start()
		state := waitTerminal(t, svc, img)
		ra := a.requests()
		if len(ra) == 0 || ra[0].Header.Get("X-Mirror-Token") != "HSECRET-6" || !strings.Contains(ra[0].URI, "QSECRET-6") {
			t.Fatalf("setup: the first mirror did not get the configured header and query: %+v", ra)
		}
		for _, q := range b.requests() {
			if strings.Contains(q.URI, "QSECRET-6") {
				t.Errorf("the other host got the query secret in its URL: %s", q.URI)
			}
			if ref := q.Header.Get("Referer"); ref != "" {
				t.Errorf("the other host got a Referer: %q", ref)
			}
			for name, vals := range q.Header {
				for _, v := range vals {
					if strings.Contains(v, "HSECRET-6") || strings.Contains(v, "ASECRET-6") || strings.Contains(v, "QSECRET-6") {
						t.Errorf("the other host got a configured secret in header %s: %q", name, v)
					}
				}
			}
		}
		t.Logf("image %s after the redirect; %d request(s) reached the other host", state, len(b.requests()))
	})

	t.Run("https to http", func(t *testing.T) {
		base := buildBase(t, fixture.Options{})
		a := newTLSMirror(t, "127.0.0.1")
		b := newMirror(t, "127.0.0.1")
		b.put("/rhcos.iso", base.data, `"b"`)
		a.redirect("/rhcos.iso", b.url("/rhcos.iso"))
		img := image("4.17", a.url("/rhcos.iso"))
		svc := newService(t, map[string]string{
			"OS_IMAGES":                         osImagesJSON(t, img),
			"ASSISTED_SERVICE_HOST":             newAssisted(t).hostPort(),
			"OS_IMAGE_DOWNLOAD_TRUSTED_CA_FILE": writeFile(t, "mirror-ca.pem", a.cert),
		})
		svc.start()
		state := waitTerminal(t, svc, img)
		if a.count() == 0 {
			t.Fatal("setup: the https mirror got no request (TLS trust?)")
		}
		if state != "failed" {
			t.Errorf("image %s after an https → http redirect, want failed", state)
		}
		if n := b.count(); n != 0 {
			t.Errorf("the http mirror got %d request(s): the downgrade was followed", n)
		}
	})
}

// waitTerminal waits until /health shows img ready or failed, and returns which.
func waitTerminal(t testing.TB, svc *service, img osImage) string {
	t.Helper()
	var state string
	svc.waitFor(90*time.Second, fmt.Sprintf("image %s ready or failed", img.Version), func() (bool, string) {
		_, h, raw, err := svc.health()
		if err != nil {
			return false, err.Error()
		}
		state = h.state(img.Version, img.CPUArchitecture)
		return state == "ready" || state == "failed", raw
	})
	return state
}
