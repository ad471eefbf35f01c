package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
)

// TestReadyMeansServable: the moment /health first answers 200, every
// configured image type answers with content (the minimal ISO template is
// built before readiness, not after).
func TestReadyMeansServable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{})
	as := newFakeAS(t)
	id := "0a0b0c0d-0000-4000-8000-0000000000a1"
	as.set(id, &infraEnv{ignition: ignitionFor("ready")})
	env := baseEnv(t.TempDir())
	env["ASSISTED_SERVICE_HOST"] = as.hostPort()
	env["IMAGE_SERVICE_BASE_URL"] = "https://images.example.com"
	env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{OpenshiftVersion: "4.18", CPUArchitecture: "x86_64", URL: "file://" + iso, Version: "418.94.1"})
	in := startInstance(t, env)

	// Poll as a readiness probe does, without delay, and act on the first 200.
	deadline := time.Now().Add(120 * time.Second)
	for {
		resp, _ := in.do(t, http.MethodGet, "/health", nil)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/health never answered 200")
		}
	}
	rng := map[string]string{"Range": "bytes=0-1023"}
	for _, p := range []string{
		"/byid/" + id + "/4.18/x86_64/full.iso",
		"/byid/" + id + "/4.18/x86_64/minimal.iso",
		"/images/" + id + "/pxe-initrd?version=4.18&arch=x86_64",
		"/boot-artifacts/rootfs?version=4.18&arch=x86_64",
		"/boot-artifacts/kernel?version=4.18&arch=x86_64",
	} {
		resp, body := in.do(t, http.MethodGet, p, rng)
		want := fmt.Sprintf("bytes 0-%d/", len(body)-1)
		if resp.StatusCode != http.StatusPartialContent || len(body) == 0 || !strings.HasPrefix(resp.Header.Get("Content-Range"), want) {
			t.Errorf("%s right after ready: %d, %d bytes, Content-Range %q; want 206 with content", p, resp.StatusCode, len(body), resp.Header.Get("Content-Range"))
		}
	}
}
