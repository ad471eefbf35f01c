package upstream

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestLocalDir(t *testing.T) {
	dir := t.TempDir()
	const (
		full    = "11111111-1111-1111-1111-111111111111" // ign, kargs, ramdisk
		bare    = "22222222-2222-2222-2222-222222222222" // ign only
		blank   = "33333333-3333-3333-3333-333333333333" // blank kargs, empty ramdisk
		orphan  = "44444444-4444-4444-4444-444444444444" // kargs without ign
		ignData = `{"ignition":{"version":"3.2.0"}}`
	)
	writeFile(t, dir, full+".ign", ignData)
	writeFile(t, dir, full+".kargs", " console=ttyS0\n\trd.debug  ip=dhcp\n")
	writeFile(t, dir, full+".ramdisk", "RAMDISK")
	writeFile(t, dir, bare+".ign", ignData)
	writeFile(t, dir, blank+".ign", ignData)
	writeFile(t, dir, blank+".kargs", " \n ")
	writeFile(t, dir, blank+".ramdisk", "")
	writeFile(t, dir, orphan+".kargs", "a")
	mtime := time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, full+".ign"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	// A file outside the directory that traversal would reach.
	writeFile(t, filepath.Dir(dir), "outside.ign", ignData)

	d := LocalDir{Dir: dir}
	cred := Credential{CredAPIKey, testSecret}

	t.Run("full", func(t *testing.T) {
		ign, err := d.Ignition(t.Context(), full, "full-iso", cred)
		if err != nil || string(ign.Data) != ignData || ign.LastModified != "Tue, 01 Sep 2026 10:00:00 GMT" {
			t.Fatalf("ignition = %+v, %v", ign, err)
		}
		kargs, err := d.KernelArgs(t.Context(), full, cred)
		if err != nil || !slices.Equal(kargs, []string{"console=ttyS0", "rd.debug", "ip=dhcp"}) {
			t.Errorf("kargs = %q, %v", kargs, err)
		}
		rd, err := d.MinimalInitrd(t.Context(), full, cred)
		if err != nil || string(rd.Bytes()) != "RAMDISK" || rd.Len() != 7 {
			t.Errorf("ramdisk = %q, %v", rd.Bytes(), err)
		}
	})
	t.Run("ignition only", func(t *testing.T) {
		kargs, err := d.KernelArgs(t.Context(), bare, cred)
		if err != nil || kargs != nil {
			t.Errorf("kargs = %#v, %v; want nil", kargs, err)
		}
		rd, err := d.MinimalInitrd(t.Context(), bare, cred)
		if err != nil || rd != nil {
			t.Errorf("ramdisk = %q, %v; want nil", rd.Bytes(), err)
		}
	})
	t.Run("blank kargs and empty ramdisk", func(t *testing.T) {
		kargs, err := d.KernelArgs(t.Context(), blank, cred)
		if err != nil || kargs != nil {
			t.Errorf("kargs = %#v, %v; want nil", kargs, err)
		}
		rd, err := d.MinimalInitrd(t.Context(), blank, cred)
		if err != nil || rd == nil || rd.Bytes() == nil || rd.Len() != 0 {
			t.Errorf("ramdisk = %#v, %v; want empty non-nil", rd.Bytes(), err)
		}
	})

	notFound := []struct{ name, id string }{
		{"missing", "55555555-5555-5555-5555-555555555555"},
		{"kargs without ignition", orphan},
		{"traversal", "../outside"},
		{"slash", "a/b"},
		{"uppercase", "ABCDEF"},
		{"empty", ""},
		{"too long", string(make([]byte, 65))},
	}
	for _, tt := range notFound {
		for _, call := range calls {
			t.Run(tt.name+"/"+call.name, func(t *testing.T) {
				var err error
				switch call.name {
				case "ignition":
					_, err = d.Ignition(t.Context(), tt.id, "", cred)
				case "minimal-initrd":
					_, err = d.MinimalInitrd(t.Context(), tt.id, cred)
				default:
					_, err = d.KernelArgs(t.Context(), tt.id, cred)
				}
				var se *StatusError
				if !errors.As(err, &se) || se.Code != http.StatusNotFound {
					t.Errorf("err = %v, want StatusError 404", err)
				}
			})
		}
	}
}

func TestLocalDirFetchSnapshot(t *testing.T) {
	dir := t.TempDir()
	d := LocalDir{Dir: dir}
	if _, err := d.EnsureSample(); err != nil {
		t.Fatal(err)
	}
	snap, err := FetchSnapshot(t.Context(), d, SnapshotRequest{ImageID: SampleImageID, ISOType: "minimal-iso", Ramdisk: true, Kargs: true})
	if err != nil || len(snap.Ignition.Data) == 0 || snap.Ramdisk != nil || snap.Kargs != nil {
		t.Fatalf("snapshot = %+v, %v", snap, err)
	}
}

func TestLocalDirEnsureSample(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "ignitions")
	d := LocalDir{Dir: dir}
	path, err := d.EnsureSample()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, SampleImageID+".ign"); path != want {
		t.Fatalf("path = %q, want %q", path, want)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Ignition struct{ Version string }
		Storage  struct {
			Files []struct {
				Path     string
				Contents struct{ Source string }
			}
		}
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("sample is not JSON: %v", err)
	}
	if cfg.Ignition.Version != "3.2.0" || len(cfg.Storage.Files) != 1 ||
		cfg.Storage.Files[0].Path != "/etc/isoedge-sample" ||
		cfg.Storage.Files[0].Contents.Source != "data:,hello%20from%20isoedge" {
		t.Errorf("sample = %+v", cfg)
	}

	// Idempotent: a second call leaves the directory alone.
	again, err := d.EnsureSample()
	if err != nil || again != "" {
		t.Errorf("second EnsureSample = %q, %v; want \"\", nil", again, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}

	// A directory with its own ignition gets no sample.
	own := t.TempDir()
	writeFile(t, own, "abc.ign", "{}")
	if p, err := (LocalDir{Dir: own}).EnsureSample(); err != nil || p != "" {
		t.Errorf("EnsureSample with existing ignition = %q, %v", p, err)
	}
	if _, err := os.Stat(filepath.Join(own, SampleImageID+".ign")); !os.IsNotExist(err) {
		t.Error("sample written although an ignition existed")
	}
}
