package customize

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/internal/fixture"
)

func TestBuildSampleISO(t *testing.T) {
	for _, tool := range []string{"xorriso", "isoinfo", "cpio", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir, work := t.TempDir(), t.TempDir()
	iso := filepath.Join(dir, "sample.iso")
	if err := BuildSampleISO(iso, work); err != nil {
		t.Fatal(err)
	}

	// nothing left behind: no staging dir in workDir, no temp file next to iso
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("workDir not cleaned: %v", ents)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("output dir holds %v, want only sample.iso", ents)
	}
	st, err := os.Stat(iso)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size()%2048 != 0 || st.Size() > 8<<20 {
		t.Errorf("ISO size %d", st.Size())
	}

	out, err := exec.Command("isoinfo", "-d", "-i", iso).CombinedOutput()
	if err != nil {
		t.Fatalf("isoinfo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Volume id: "+SampleVolumeID+"\n") {
		t.Errorf("volume id not %q:\n%s", SampleVolumeID, out)
	}

	raw, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{
		"coreos/igninfo.json":       -1,
		"coreos/kargs.json":         -1,
		"coreos/features.json":      -1,
		"EFI/redhat/grub.cfg":       -1,
		"isolinux/isolinux.cfg":     -1,
		"images/efiboot.img":        -1,
		"images/ignition.img":       262144,
		"images/pxeboot/vmlinuz":    1 << 20,
		"images/pxeboot/rootfs.img": 2 << 20,
		"images/pxeboot/initrd.img": -1,
	}
	content := map[string][]byte{}
	for p, want := range sizes {
		b := fixture.ExtractFile(t, iso, p)
		content[p] = b
		if want >= 0 && int64(len(b)) != want {
			t.Errorf("%s: size %d, want %d", p, len(b), want)
		}
		off, n := fixture.ISOOffset(t, iso, p)
		if n != int64(len(b)) || !bytes.Equal(raw[off:off+n], b) {
			t.Errorf("%s: bytes at xorriso-reported offset %d differ from extracted content", p, off)
		}
	}

	if !bytes.Equal(content["images/ignition.img"], make([]byte, 262144)) {
		t.Error("ignition.img is not all zeros")
	}
	if string(content["coreos/igninfo.json"]) != `{"file":"images/ignition.img"}` {
		t.Errorf("igninfo.json = %q", content["coreos/igninfo.json"])
	}

	var kj struct {
		Default string `json:"default"`
		Files   []struct {
			End    string `json:"end"`
			Offset int    `json:"offset"`
			Pad    string `json:"pad"`
			Path   string `json:"path"`
		} `json:"files"`
		Size int `json:"size"`
	}
	if err := json.Unmarshal(content["coreos/kargs.json"], &kj); err != nil {
		t.Fatalf("kargs.json: %v", err)
	}
	if !strings.Contains(kj.Default, "coreos.liveiso="+SampleVolumeID+" ") || kj.Size != len(kj.Default)+1024 {
		t.Errorf("kargs.json default %q size %d", kj.Default, kj.Size)
	}
	if len(kj.Files) != 2 {
		t.Fatalf("kargs.json files: %+v", kj.Files)
	}
	for _, f := range kj.Files {
		c, ok := content[f.Path]
		if !ok {
			t.Errorf("kargs.json names unknown file %s", f.Path)
			continue
		}
		want := kj.Default + f.End + strings.Repeat(f.Pad, kj.Size-len(kj.Default)-1) + "# COREOS_KARG_EMBED_AREA\n"
		if f.Offset+len(want) > len(c) || string(c[f.Offset:f.Offset+len(want)]) != want {
			t.Errorf("%s: kargs region at %d does not hold the default kargs and embed area", f.Path, f.Offset)
		}
		if !bytes.Contains(c[:f.Offset], []byte("/images/pxeboot/vmlinuz")) {
			t.Errorf("%s: kargs offset %d not on the kernel line", f.Path, f.Offset)
		}
	}

	initrd := content["images/pxeboot/initrd.img"]
	if len(initrd)%4 != 0 || !bytes.HasPrefix(initrd, []byte{0x1f, 0x8b}) {
		t.Errorf("initrd not a 4-aligned gzip stream")
	}
	files := fixture.CpioFiles(t, initrd)
	if string(files["etc/coreos-live-initramfs"]) != SampleVolumeID+"\n" {
		t.Errorf("initrd members: %q", files)
	}
	rootfs := content["images/pxeboot/rootfs.img"]
	if string(rootfs[:6]) != "070701" || string(rootfs[124:128]) != "hsqs" ||
		!bytes.Contains(rootfs[len(rootfs)-124:], []byte("TRAILER!!!")) {
		t.Error("rootfs.img is not a root.squashfs cpio")
	}

	// rebuilding over an existing file replaces it atomically with the same content
	if err := BuildSampleISO(iso, work); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fixture.ExtractFile(t, iso, "images/pxeboot/vmlinuz"), content["images/pxeboot/vmlinuz"]) {
		t.Error("sample content is not deterministic")
	}
}

func TestBuildSampleISOErrors(t *testing.T) {
	dir := t.TempDir()
	iso := filepath.Join(dir, "sample.iso")
	if err := BuildSampleISO(iso, filepath.Join(dir, "missing")); err == nil {
		t.Error("missing workDir: no error")
	}
	if err := BuildSampleISO(filepath.Join(dir, "missing", "sample.iso"), t.TempDir()); err == nil {
		t.Error("missing output dir: no error")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}
