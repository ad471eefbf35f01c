package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
)

// TestTakesOverOriginalDataDir starts isoedge on a DATA_DIR that
// assisted-image-service used: the ISO it kept there is ingested (checked
// like a download) instead of downloaded again, then removed.
func TestTakesOverOriginalDataDir(t *testing.T) {
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{})
	data, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	env := baseEnv(dir)
	dataDir := env["DATA_DIR"]
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	original := filepath.Join(dataDir, "rhcos-full-iso-419.96.1-x86_64.iso")
	if err := os.WriteFile(original, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A file of another image the original kept but that is not configured
	// stays as it is.
	other := filepath.Join(dataDir, "rhcos-full-iso-418.94.1-x86_64.iso")
	if err := os.WriteFile(other, []byte("not configured"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mirrorHits atomic.Int32
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mirrorHits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer mirror.Close()
	as := newFakeAS(t)
	id := "0a0b0c0d-0000-4000-8000-000000000009"
	as.set(id, &infraEnv{ignition: ignitionFor("migrated")})
	env["ASSISTED_SERVICE_HOST"] = as.hostPort()
	env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{OpenshiftVersion: "4.19", CPUArchitecture: "x86_64", URL: mirror.URL + "/rhcos.iso", Version: "419.96.1"})
	in := startInstance(t, env)
	in.waitReady(t, 120*time.Second)

	if n := mirrorHits.Load(); n != 0 {
		t.Fatalf("the mirror was asked %d times; the image on disk should have been used", n)
	}
	sum := sha256.Sum256(data)
	blob := filepath.Join(dataDir, "blobs", "sha256", hex.EncodeToString(sum[:1]), hex.EncodeToString(sum[:]))
	if _, err := os.Stat(blob); err != nil {
		t.Fatalf("no blob for the ingested image: %v", err)
	}
	if _, err := os.Stat(original); !os.IsNotExist(err) {
		t.Fatalf("the ingested original file is still there: %v", err)
	}
	if b, err := os.ReadFile(other); err != nil || !bytes.Equal(b, []byte("not configured")) {
		t.Fatalf("an unconfigured file was touched: %v", err)
	}
	_, kernel := in.get(t, "/boot-artifacts/kernel?version=4.19", nil, http.StatusOK)
	if want := fixture.ExtractFile(t, iso, "/images/pxeboot/vmlinuz"); !bytes.Equal(kernel, want) {
		t.Fatal("kernel of the migrated image differs")
	}
}
