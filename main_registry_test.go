package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
	"github.com/isoedge/isoedge/internal/registrytest"
)

// TestRegistrySource pulls base images from a real registry (Debian's
// docker-registry, TLS and htpasswd auth) the way a disconnected site holds
// them: the release payload's machine-os-images image with
// /coreos/coreos-<arch>.iso and its .sha256. A good pull is served with
// the ignition exact; wrong credentials and a wrong .sha256 leave their
// image unready with a reason, the process alive and no credential logged.
func TestRegistrySource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{})
	isoBytes, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(isoBytes)
	reg := registrytest.Start(t)
	good := reg.PushISO(t, "openshift/machine-os-images", map[string][]byte{
		"/coreos/coreos-x86_64.iso":        isoBytes,
		"/coreos/coreos-x86_64.iso.sha256": []byte(hex.EncodeToString(sum[:]) + "\n"),
	}, "amd64")
	bad := reg.PushISO(t, "openshift/machine-os-images-bad", map[string][]byte{
		"/coreos/coreos-x86_64.iso":        isoBytes,
		"/coreos/coreos-x86_64.iso.sha256": []byte(strings.Repeat("ab", 32)),
	}, "amd64")
	wrongAuth := reg.WriteAuthFile(t, reg.User, "not-the-password-SECRETPW")

	as := newFakeAS(t)
	id := "0a0b0c0d-0000-4000-8000-0000000000c1"
	ign := ignitionFor("registry")
	as.set(id, &infraEnv{ignition: ign})
	start := func(authFile string, images ...config.OSImage) *instance {
		env := baseEnv(t.TempDir())
		env["ASSISTED_SERVICE_HOST"] = as.hostPort()
		env["OS_IMAGES"] = osImagesJSON(t, images...)
		env["REGISTRY_AUTH_FILE"] = authFile
		env["OS_IMAGE_DOWNLOAD_TRUSTED_CA_FILE"] = reg.CAFile
		return startInstance(t, env)
	}
	img := func(ocp, rhcos, url string) config.OSImage {
		return config.OSImage{OpenshiftVersion: ocp, CPUArchitecture: "x86_64", URL: url, Version: rhcos}
	}

	in := start(reg.AuthFile, img("4.18", "418.1", good), img("4.19", "419.1", bad))
	in.waitReady(t, 120*time.Second)
	resp, body := in.get(t, "/byid/"+id+"/4.18/x86_64/full.iso", nil, http.StatusOK)
	if got := ignitionOf(t, body); !bytes.Equal(got, ign) {
		t.Errorf("full.iso from the registry carries %d bytes of ignition, want the InfraEnv's %d", len(got), len(ign))
	}
	if int64(len(body)) != int64(len(isoBytes)) || resp.Header.Get("Content-Length") == "" {
		t.Errorf("full.iso is %d bytes, the pushed ISO %d", len(body), len(isoBytes))
	}
	// The image whose .sha256 does not match is never served.
	waitHealth(t, in, "419.1", func(s imageHealth) bool { return s.Failing && strings.Contains(s.Error, "sha256") })
	if r, _ := in.do(t, http.MethodGet, "/boot-artifacts/kernel?version=4.19&arch=x86_64", nil); r.StatusCode == http.StatusOK {
		t.Error("the image with a wrong .sha256 was served")
	}

	// Wrong credentials: unready with a reason; the process lives and the
	// password is never logged.
	in2 := start(wrongAuth, img("4.18", "418.1", good))
	waitHealth(t, in2, "418.1", func(s imageHealth) bool { return s.Failing && strings.Contains(s.Error, "401") })
	if r, _ := in2.do(t, http.MethodGet, "/health", nil); r.StatusCode == http.StatusOK {
		t.Error("ready although the only image cannot be pulled")
	}
	for _, logs := range []string{in.logs.String(), in2.logs.String()} {
		for _, secret := range []string{reg.Password, "SECRETPW"} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log holds a registry credential %q", secret)
			}
		}
	}
}

type imageHealth struct {
	Version string `json:"version"`
	State   string `json:"state"`
	Failing bool   `json:"failing"`
	Error   string `json:"error"`
}

// waitHealth polls /health until the image with version satisfies cond.
func waitHealth(t *testing.T, in *instance, version string, cond func(imageHealth) bool) imageHealth {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		_, body := in.do(t, http.MethodGet, "/health", nil)
		var h struct{ Images []imageHealth }
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatalf("/health: %v", err)
		}
		for _, s := range h.Images {
			if s.Version == version && cond(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s never reached the condition: %s", version, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
