package customize

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/internal/fixture"
)

const minimalTestURL = "https://img.example.com/api/assisted-images/boot-artifacts/rootfs?arch=x86_64&version=4.19"

func minimalRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// minimalAarch64Full returns an aarch64 fixture remastered like a real
// aarch64 live ISO: EFI-only El Torito with the default (visible) root
// /boot.catalog, which fixture.Build does not write.
func minimalAarch64Full(t *testing.T) (string, fixture.Manifest) {
	t.Helper()
	plain, m := fixture.Build(t, t.TempDir(), fixture.Options{Arch: "aarch64"})
	tree := filepath.Join(t.TempDir(), "tree")
	minimalRun(t, "xorriso", "-osirrox", "on", "-indev", plain, "-extract", "/", tree)
	if err := filepath.WalkDir(tree, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chmod(p, map[bool]os.FileMode{true: 0o755, false: 0o644}[d.IsDir()])
	}); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(t.TempDir(), "aarch64-full.iso")
	minimalRun(t, "xorriso", "-as", "mkisofs", "-R", "-J", "-joliet-long", "-V", m.VolumeID,
		"-e", "images/efiboot.img", "-no-emul-boot", "-o", iso, tree)
	return iso, m
}

// minimalBuild builds the minimal template of the ISO at full and checks
// that no scratch or temporary files are left behind.
func minimalBuild(t *testing.T, full string, opt MinimalOptions) (string, error) {
	t.Helper()
	f, err := os.Open(full)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if opt.WorkDir == "" {
		opt.WorkDir = t.TempDir()
	}
	outDir := t.TempDir()
	out := filepath.Join(outDir, "minimal.iso")
	err = BuildMinimal(f, out, opt)
	if left, _ := os.ReadDir(opt.WorkDir); len(left) != 0 {
		t.Errorf("work dir not empty: %v", left)
	}
	want := 0
	if err == nil {
		want = 1
	}
	if entries, _ := os.ReadDir(outDir); len(entries) != want {
		t.Errorf("output dir holds %v, want %d file(s)", entries, want)
	}
	return out, err
}

type minimalKargs struct {
	Default string `json:"default"`
	Files   []struct {
		End    string `json:"end"`
		Offset int64  `json:"offset"`
		Pad    string `json:"pad"`
		Path   string `json:"path"`
	} `json:"files"`
	Size int64 `json:"size"`
}

// minimalCheckCommon checks what every minimal ISO must satisfy and returns
// its layout.
func minimalCheckCommon(t *testing.T, out string, m fixture.Manifest, url string, initrds []string) *Layout {
	t.Helper()
	rootfsArg := `coreos.live.rootfs_url="` + url + `"`

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := ParseLayout(f)
	if err != nil {
		t.Fatalf("ParseLayout: %v", err)
	}
	if l.VolumeID != m.VolumeID {
		t.Errorf("volume id %q, want %q", l.VolumeID, m.VolumeID)
	}
	if st, _ := f.Stat(); st.Size()%2048 != 0 || st.Size() != l.Size {
		t.Errorf("size %d not a whole number of blocks", st.Size())
	}
	if _, ok := l.Files[PathRootfs]; ok {
		t.Errorf("%s still present", PathRootfs)
	}
	if a, ok := l.Files[PathCustomRamdisk]; !ok || a.Len != 1<<20 {
		t.Errorf("%s: %+v, %v", PathCustomRamdisk, a, ok)
	}
	custom := fixture.ExtractFile(t, out, PathCustomRamdisk)
	if len(custom) != 1<<20 || !bytes.Equal(custom, make([]byte, 1<<20)) {
		t.Errorf("%s is not 1 MiB of zeros", PathCustomRamdisk)
	}
	if len(l.KargAreas) != len(m.KargsFiles) || l.KargsProblem != "" {
		t.Errorf("karg areas %+v (problem %q), want one per %v", l.KargAreas, l.KargsProblem, m.KargsFiles)
	}
	for p, want := range m.Files {
		if strings.HasSuffix(p, ".cfg") || p == PathKargsJSON || p == PathRootfs || p == minimalCatalog || p == minimalBootCat {
			continue
		}
		got := fixture.ExtractFile(t, out, p)
		if p == minimalIsolinux && len(got) == len(want) && len(got) > 64 {
			// bytes 8-63 hold the boot info table of the new image
			got, want = append(got[:8:8], got[64:]...), append(want[:8:8], want[64:]...)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the full ISO's", p)
		}
	}
	if inf := minimalRun(t, "isoinfo", "-d", "-i", out); !strings.Contains(inf, "Volume id: "+m.VolumeID+"\n") {
		t.Errorf("isoinfo -d: volume id not preserved:\n%s", inf)
	}
	// coreos-installer reads the primary (level 1) names only.
	ls := minimalRun(t, "isoinfo", "-l", "-i", out)
	if !regexp.MustCompile(`(?s)Directory listing of /COREOS/\n.*? KARGS\.JSO;1 *\n`).MatchString(ls) {
		t.Errorf("isoinfo -l: no /COREOS/KARGS.JSO;1:\n%s", ls)
	}

	var kj minimalKargs
	if err := json.Unmarshal(fixture.ExtractFile(t, out, PathKargsJSON), &kj); err != nil {
		t.Fatalf("kargs.json: %v", err)
	}
	wantDefault := strings.Replace(m.KargsDefault, "coreos.liveiso="+m.VolumeID+" ", "", 1) + " " + rootfsArg
	if kj.Default != wantDefault {
		t.Errorf("kargs.json default %q, want %q", kj.Default, wantDefault)
	}
	if want := m.KargsSize + int64(len(wantDefault)-len(m.KargsDefault)); kj.Size != want {
		t.Errorf("kargs.json size %d, want %d", kj.Size, want)
	}
	if l.KargsDefault != kj.Default {
		t.Errorf("layout default %q", l.KargsDefault)
	}
	if len(kj.Files) != len(m.KargsFiles) {
		t.Fatalf("kargs.json files %+v", kj.Files)
	}
	raw := fixture.ExtractFile(t, out, PathKargsJSON)
	if !bytes.HasPrefix(raw, []byte("{\n  \"default\": ")) || !bytes.HasSuffix(raw, []byte("\n}\n")) || bytes.Contains(raw, []byte(`\u0026`)) {
		t.Errorf("kargs.json format:\n%s", raw)
	}
	for _, kf := range kj.Files {
		cfg := fixture.ExtractFile(t, out, kf.Path)
		end := kf.Offset + int64(len(kj.Default))
		if end >= int64(len(cfg)) || string(cfg[kf.Offset:end]) != kj.Default {
			t.Errorf("%s: kargs.json offset %d does not point at the default kargs", kf.Path, kf.Offset)
			continue
		}
		// The region coreos-installer rewrites: kargs, end char, pad.
		region := cfg[kf.Offset : kf.Offset+kj.Size]
		if tail := region[len(kj.Default):]; tail[0] != '\n' || strings.Trim(string(tail[1:]), "#") != "" {
			t.Errorf("%s: kargs region tail is not end+pad", kf.Path)
		}
		lines := strings.Split(string(cfg), "\n")
		var kline int = -1
		for i, ln := range lines {
			if strings.Contains(ln, rootfsArg) {
				kline = i
				break
			}
		}
		if kline < 0 || !strings.HasSuffix(lines[kline], " "+kj.Default) || strings.Contains(string(cfg), "coreos.liveiso=") {
			t.Errorf("%s: kernel line not edited:\n%s", kf.Path, cfg)
			continue
		}
		if kline+1 >= len(lines) || lines[kline+1] != strings.TrimSuffix(fixture.EmbedAreaLine(), "\n") {
			t.Errorf("%s: marker line does not follow the kernel line", kf.Path)
		}
		switch {
		case strings.HasSuffix(kf.Path, "grub.cfg"):
			want := "\tinitrd /images/pxeboot/initrd.img /images/ignition.img /" + strings.Join(initrds, " /")
			if !strings.Contains(string(cfg), "\n"+want+"\n") {
				t.Errorf("%s: initrd line not %q:\n%s", kf.Path, want, cfg)
			}
		case strings.HasSuffix(kf.Path, "isolinux.cfg"):
			want := "  append initrd=/images/pxeboot/initrd.img,/images/ignition.img,/" + strings.Join(initrds, ",/") + " "
			if !strings.HasPrefix(lines[kline], want) {
				t.Errorf("%s: append line %q, want prefix %q", kf.Path, lines[kline], want)
			}
		}
	}
	return l
}

var (
	etBIOS = regexp.MustCompile(`(?m)^El Torito boot img :\s+\d+\s+BIOS\s+y\s+none\s+0x0000\s+0x00\s+4\s+\d+$`)
	etUEFI = regexp.MustCompile(`(?m)^El Torito boot img :\s+\d+\s+UEFI\s+y\s+none\s+0x0000\s+0x00\s+(\d+)\s+\d+$`)
)

func TestBuildMinimalX86(t *testing.T) {
	full, m := fixture.Build(t, t.TempDir(), fixture.Options{Arch: "x86_64"})
	out, err := minimalBuild(t, full, MinimalOptions{RootfsURL: minimalTestURL, Arch: "x86_64"})
	if err != nil {
		t.Fatal(err)
	}
	l := minimalCheckCommon(t, out, m, minimalTestURL, []string{PathCustomRamdisk})
	if _, ok := l.Files[PathNmstateImg]; ok {
		t.Errorf("unexpected %s", PathNmstateImg)
	}
	et := minimalRun(t, "xorriso", "-indev", out, "-report_el_torito", "plain")
	if !etBIOS.MatchString(et) {
		t.Errorf("no BIOS no-emulation entry with load size 4:\n%s", et)
	}
	// efiboot.img: 16 KiB + 23 bytes → 9 blocks of 2048 → 36 sectors of 512.
	if mm := etUEFI.FindStringSubmatch(et); mm == nil || mm[1] != "36" {
		t.Errorf("no UEFI entry with load size 36:\n%s", et)
	}
	if !strings.Contains(et, "El Torito cat path : /isolinux/boot.cat\n") ||
		!strings.Contains(et, "El Torito img path :   1  /isolinux/isolinux.bin\n") ||
		!strings.Contains(et, "El Torito img path :   2  /images/efiboot.img\n") {
		t.Errorf("El Torito paths:\n%s", et)
	}
	if ls := minimalRun(t, "xorriso", "-indev", out, "-ls", "/isolinux"); strings.Count(ls, "'boot.cat'") != 1 {
		t.Errorf("isolinux/boot.cat listed other than once:\n%s", ls)
	}
	// boot-info-table: the PVD LBA (16) at offset 8 of isolinux.bin.
	if bin := fixture.ExtractFile(t, out, minimalIsolinux); len(bin) < 12 || !bytes.Equal(bin[8:12], []byte{16, 0, 0, 0}) {
		t.Errorf("isolinux.bin has no boot info table")
	}
}

func TestBuildMinimalNmstate(t *testing.T) {
	full, m := fixture.Build(t, t.TempDir(), fixture.Options{Arch: "x86_64"})
	nm := fixture.CpioArchive(t, map[string][]byte{"usr/bin/nmstatectl": []byte("#!/bin/sh\n")})
	out, err := minimalBuild(t, full, MinimalOptions{RootfsURL: minimalTestURL, Arch: "x86_64", Nmstate: nm})
	if err != nil {
		t.Fatal(err)
	}
	minimalCheckCommon(t, out, m, minimalTestURL, []string{PathCustomRamdisk, PathNmstateImg})
	if got := fixture.ExtractFile(t, out, PathNmstateImg); !bytes.Equal(got, nm) {
		t.Errorf("%s content differs", PathNmstateImg)
	}
	if ls := minimalRun(t, "xorriso", "-indev", out, "-lsl", "/"+PathNmstateImg); !strings.Contains(ls, "-rwxr-xr-x") {
		t.Errorf("%s mode: %s", PathNmstateImg, ls)
	}
}

func TestBuildMinimalAarch64(t *testing.T) {
	full, m := minimalAarch64Full(t)
	out, err := minimalBuild(t, full, MinimalOptions{RootfsURL: minimalTestURL, Arch: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	minimalCheckCommon(t, out, m, minimalTestURL, []string{PathCustomRamdisk})
	et := minimalRun(t, "xorriso", "-indev", out, "-report_el_torito", "plain")
	if etBIOS.MatchString(et) || strings.Count(et, "El Torito boot img :") != 1 {
		t.Errorf("want exactly one (UEFI) entry:\n%s", et)
	}
	if mm := etUEFI.FindStringSubmatch(et); mm == nil || mm[1] != "36" {
		t.Errorf("no UEFI entry with load size 36:\n%s", et)
	}

	// Without a root boot.catalog (plain fixture) a new catalog is written
	// anyway and the EFI entry is there.
	plain, _ := fixture.Build(t, t.TempDir(), fixture.Options{Arch: "aarch64"})
	out2, err := minimalBuild(t, plain, MinimalOptions{RootfsURL: minimalTestURL, Arch: "aarch64"})
	if err != nil {
		t.Fatalf("aarch64 without boot.catalog: %v", err)
	}
	if et := minimalRun(t, "xorriso", "-indev", out2, "-report_el_torito", "plain"); etUEFI.FindStringSubmatch(et) == nil {
		t.Errorf("no UEFI entry without a source boot.catalog:\n%s", et)
	}
}

func TestBuildMinimalPpc64le(t *testing.T) {
	full, m := fixture.Build(t, t.TempDir(), fixture.Options{Arch: "ppc64le"})
	out, err := minimalBuild(t, full, MinimalOptions{RootfsURL: minimalTestURL, Arch: "ppc64le"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.KargsFiles) != 1 || m.KargsFiles[0] != "boot/grub/grub.cfg" {
		t.Fatalf("fixture kargs files %v", m.KargsFiles)
	}
	minimalCheckCommon(t, out, m, minimalTestURL, []string{PathCustomRamdisk})
	et := minimalRun(t, "xorriso", "-indev", out, "-report_el_torito", "plain")
	if strings.Contains(et, "El Torito boot img") {
		t.Errorf("unexpected El Torito entries:\n%s", et)
	}
}

func TestBuildMinimalErrors(t *testing.T) {
	x86, _ := fixture.Build(t, t.TempDir(), fixture.Options{Arch: "x86_64"})
	s390x, _ := fixture.Build(t, t.TempDir(), fixture.Options{Arch: "s390x"})
	if _, err := minimalBuild(t, s390x, MinimalOptions{RootfsURL: minimalTestURL, Arch: "s390x"}); !errors.Is(err, ErrNoMinimal) {
		t.Errorf("s390x: %v", err)
	}
	for _, u := range []string{"", "http://x/$arch", `http://x/a\b`, "http://x/a b", `http://x/"a"`, "http://x/'a'", "http://x/a\tb"} {
		if _, err := minimalBuild(t, x86, MinimalOptions{RootfsURL: u, Arch: "x86_64"}); err == nil {
			t.Errorf("rootfs URL %q accepted", u)
		}
	}
	if _, err := minimalBuild(t, x86, MinimalOptions{RootfsURL: minimalTestURL, Arch: "riscv64"}); err == nil {
		t.Errorf("unknown arch accepted")
	}
	// Not an ISO: fails after the temporary work directory was created.
	junk := filepath.Join(t.TempDir(), "junk.iso")
	if err := os.WriteFile(junk, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := minimalBuild(t, junk, MinimalOptions{RootfsURL: minimalTestURL, Arch: "x86_64"}); err == nil {
		t.Errorf("junk accepted")
	}
}

func TestMinimalRootfsURL(t *testing.T) {
	for _, c := range []struct{ base, arch, ver, want string }{
		{"https://img.example.com/api/assisted-images", "x86_64", "4.19", "https://img.example.com/api/assisted-images/boot-artifacts/rootfs?arch=x86_64&version=4.19"},
		{"https://img.example.com/", "aarch64", "4.18", "https://img.example.com/boot-artifacts/rootfs?arch=aarch64&version=4.18"},
		{"http://10.0.0.1:8080", "ppc64le", "4.20.0-ec.1", "http://10.0.0.1:8080/boot-artifacts/rootfs?arch=ppc64le&version=4.20.0-ec.1"},
	} {
		got, err := MinimalRootfsURL(c.base, c.arch, c.ver)
		if err != nil || got != c.want {
			t.Errorf("MinimalRootfsURL(%q) = %q, %v; want %q", c.base, got, err, c.want)
		}
	}
	if _, err := MinimalRootfsURL("http://[::1", "x86_64", "4.19"); err == nil {
		t.Error("bad base URL accepted")
	}
}

func TestMinimalKargsEdits(t *testing.T) {
	// An edit spanning a kargs.json offset is an error; edits before it shift it.
	edits := []textEdit{{Pos: 2, Del: 3, Ins: "abcdef"}, {Pos: 20, Ins: "x"}}
	if off, err := shiftOffset(10, edits); err != nil || off != 13 {
		t.Errorf("shiftOffset = %d, %v", off, err)
	}
	if _, err := shiftOffset(4, edits); err == nil {
		t.Error("spanning edit accepted")
	}
	// liveiso as the last argument, CRLF line endings.
	cfg := []byte("menuentry {\r\n\tlinux /v a=1 coreos.liveiso=X\r\n\tinitrd /i.img\r\n}\r\n")
	e, err := grubEdits(cfg, `coreos.live.rootfs_url="u"`, []string{"/c.img"})
	if err != nil {
		t.Fatal(err)
	}
	want := "menuentry {\r\n\tlinux /v a=1  coreos.live.rootfs_url=\"u\"\r\n\tinitrd /i.img /c.img\r\n}\r\n"
	if got := string(applyEdits(cfg, e)); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := minimalDefaultKargs("a=1 coreos.liveiso=X", `r="u"`); got != `a=1  r="u"` {
		t.Errorf("default %q", got)
	}
	if _, err := grubEdits([]byte("no kernel here\n"), "r", nil); err == nil {
		t.Error("grub.cfg without linux line accepted")
	}
	if _, err := updateKargsJSON([]byte("{"), "r", nil); err == nil {
		t.Error("bad kargs.json accepted")
	}
}

// TestMinimalVolumeIDField: the template's volume identifier field is the
// full ISO's, padding included (ISO 9660 pads with spaces).
func TestMinimalVolumeIDField(t *testing.T) {
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{})
	full, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	out := filepath.Join(dir, "minimal.iso")
	if err := BuildMinimal(full, out, MinimalOptions{RootfsURL: "http://example.com/rootfs.img", Arch: "x86_64", WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	want, got := make([]byte, 32), make([]byte, 32)
	full.ReadAt(want, volumeIDOffset)
	m, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.ReadAt(got, volumeIDOffset)
	if !bytes.Equal(got, want) || bytes.IndexByte(got, 0) >= 0 {
		t.Errorf("template volume id field %q, want %q", got, want)
	}
	if out, err := exec.Command("isoinfo", "-d", "-i", filepath.Join(dir, "minimal.iso")).Output(); err != nil || !strings.Contains(string(out), "Volume id: "+strings.TrimRight(string(want), " ")+"\n") {
		t.Errorf("isoinfo: %v\n%s", err, out)
	}
}
