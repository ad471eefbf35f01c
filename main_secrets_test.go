package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
)

// TestNoSecretInLogsOrBodies runs every credential form through success and
// error paths at debug log level and checks that no credential appears in
// any log line, response body or response header.
func TestNoSecretInLogsOrBodies(t *testing.T) {
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{})
	as := newFakeAS(t)
	ok := "0a0b0c0d-0000-4000-8000-000000000006"
	denied := "0a0b0c0d-0000-4000-8000-000000000007"
	slow := "0a0b0c0d-0000-4000-8000-000000000008"
	as.set(ok, &infraEnv{ignition: ignitionFor("ok")})
	as.set(denied, &infraEnv{ignStatus: 401, ramStatus: 401, envStatus: 401})
	as.set(slow, &infraEnv{ignition: ignitionFor("slow"), delay: 3 * time.Second})
	env := baseEnv(dir) // LOG_LEVEL=debug
	env["ASSISTED_SERVICE_HOST"] = as.hostPort()
	env["ASSISTED_SERVICE_TIMEOUT"] = "1s"
	env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{OpenshiftVersion: "4.19", CPUArchitecture: "x86_64", URL: "file://" + iso, Version: "419.96.1"})
	in := startInstance(t, env)
	in.waitReady(t, 120*time.Second)

	const (
		apiKey     = "SECRET-apikey-4711"
		imageToken = "SECRET-imagetoken-0815"
		authz      = "Bearer SECRET-authorization-1234"
		jwtSig     = "SECRETSIGNATURE"
	)
	jwtFor := func(id string) string {
		tok := makeJWT(`{"sub":"` + id + `"}`)
		return tok[:strings.LastIndexByte(tok, '.')+1] + jwtSig
	}
	secrets := []string{apiKey, imageToken, "SECRET-authorization-1234", jwtSig}

	type req struct {
		path string
		hdr  map[string]string
	}
	var reqs []req
	for _, id := range []string{ok, denied, slow, "0a0b0c0d-0000-4000-8000-00000000dead"} {
		for _, suffix := range []string{
			"/byid/" + id + "/4.19/x86_64/full.iso?api_key=" + apiKey,
			"/images/" + id + "?version=4.19&type=full-iso&image_token=" + imageToken,
			"/images/" + id + "/pxe-initrd?version=4.19&api_key=" + apiKey,
			"/images/" + id + "/pxe-initrd?version=4.19&image_token=" + imageToken,
			"/bytoken/" + jwtFor(id) + "/4.19/x86_64/full.iso",
			"/byapikey/" + jwtFor(id) + "/4.19/x86_64/minimal.iso",
			"/bytoken/" + jwtFor(id) + "/4.19/x86_64/bogus.iso",
			"/bytoken/" + jwtFor(id) + "/9.99/x86_64/full.iso",
		} {
			reqs = append(reqs, req{path: suffix})
		}
		reqs = append(reqs,
			req{path: "/byid/" + id + "/4.19/x86_64/full.iso", hdr: map[string]string{"Authorization": authz}},
			req{path: "/images/" + id + "/pxe-initrd?version=4.19", hdr: map[string]string{"Authorization": authz, "Range": "bytes=10-"}},
			req{path: "/images/" + id + "/s390x-initrd-addrsize?version=4.19", hdr: map[string]string{"Authorization": authz}},
		)
	}
	reqs = append(reqs, req{path: "/bytoken/not." + jwtSig + ".jwt/4.19/x86_64/full.iso"})

	statuses := map[int]int{}
	for _, r := range reqs {
		resp, body := in.do(t, http.MethodGet, r.path, r.hdr)
		statuses[resp.StatusCode]++
		for _, s := range secrets {
			if strings.Contains(string(body), s) {
				t.Errorf("GET %s: body contains a credential: %.200q", r.path, body)
			}
			for k, vs := range resp.Header {
				for _, v := range vs {
					if strings.Contains(v, s) {
						t.Errorf("GET %s: header %s contains a credential", r.path, k)
					}
				}
			}
		}
	}
	// The run covered successes and the error paths that log.
	for _, code := range []int{200, 401, 404, 502} {
		if statuses[code] == 0 {
			t.Errorf("no request answered %d (statuses %v): the run does not cover that path", code, statuses)
		}
	}
	logs := in.logs.String()
	if !strings.Contains(logs, "request failed") && !strings.Contains(logs, "request refused") {
		t.Fatalf("no error was logged; the check below would prove nothing:\n%s", logs)
	}
	for _, s := range secrets {
		if i := strings.Index(logs, s); i >= 0 {
			t.Errorf("log contains credential %q: …%s…", s, logs[max(0, i-200):min(len(logs), i+100)])
		}
	}
	t.Logf("%d requests, statuses %v, %d bytes of logs checked", len(reqs), statuses, len(logs))
}
