package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/internal/fixture"
	"golang.org/x/sys/unix"
)

// cliRun runs the offline CLI and returns its exit status and output.
func cliRun(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := Run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func cliFixture(t *testing.T, opt fixture.Options) (string, fixture.Manifest) {
	t.Helper()
	return fixture.Build(t, t.TempDir(), opt)
}

// cliOnlyFile fails unless dir holds exactly the named files (no temp
// files left behind by the atomic write).
func cliOnlyFile(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

func TestCLICustomize(t *testing.T) {
	iso, m := cliFixture(t, fixture.Options{})
	cfg := []byte(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/x"}]}}`)
	ign := writeTemp(t, "config.ign", cfg)
	outDir := t.TempDir()
	out := filepath.Join(outDir, "out.iso")
	code, stdout, stderr := cliRun("customize", iso, "-o", out, "--ignition", ign,
		"--karg", "console=ttyS0,115200n8", "--karg=rd.neednet=1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "wrote "+out) {
		t.Errorf("stdout = %q", stdout)
	}
	cliOnlyFile(t, outDir, "out.iso")
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if base, _ := os.Stat(iso); st.Size() != base.Size() {
		t.Errorf("output is %d bytes, base %d", st.Size(), base.Size())
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("output mode %v", st.Mode())
	}

	files := fixture.CpioFiles(t, fixture.ExtractFile(t, out, "images/ignition.img"))
	if !bytes.Equal(files["config.ign"], cfg) || len(files) != 1 {
		t.Errorf("ignition.img holds %d files, config.ign = %q", len(files), files["config.ign"])
	}
	for _, c := range []struct{ path, prefix string }{
		{"EFI/redhat/grub.cfg", "\tlinux "},
		{"isolinux/isolinux.cfg", "  append "},
	} {
		got := fixture.ExtractFile(t, out, c.path)
		want := m.KargsDefault + " console=ttyS0,115200n8 rd.neednet=1\n"
		line := ""
		for _, l := range strings.SplitAfter(string(got), "\n") {
			if strings.HasPrefix(l, c.prefix) {
				line = l
			}
		}
		if !strings.HasSuffix(line, want) {
			t.Errorf("%s: kernel line %q does not end with %q", c.path, line, want)
		}
		if len(got) != int(m.Sizes[c.path]) || !strings.Contains(string(got), " COREOS_KARG_EMBED_AREA\n") {
			t.Errorf("%s: size %d (base %d) or embed marker lost:\n%s", c.path, len(got), m.Sizes[c.path], got)
		}
	}
	if got := fixture.ExtractFile(t, out, "images/pxeboot/vmlinuz"); !bytes.Equal(got, m.Files["images/pxeboot/vmlinuz"]) {
		t.Error("kernel changed")
	}

	t.Run("too large", func(t *testing.T) {
		// Valid JSON that compresses to more than the area holds.
		noise := base64.StdEncoding.EncodeToString(fixture.PseudoRandom(400<<10, 7))
		big := writeTemp(t, "big.ign", []byte(`{"ignition":{"version":"3.2.0"},"noise":"`+noise+`"}`))
		dir := t.TempDir()
		code, _, stderr := cliRun("customize", iso, "-o", filepath.Join(dir, "x.iso"), "--ignition", big)
		if code != 1 || !strings.Contains(stderr, "262144") {
			t.Fatalf("exit %d, stderr %q; want 1 naming the 262144-byte area", code, stderr)
		}
		cliOnlyFile(t, dir)
	})
	t.Run("ramdisk without area", func(t *testing.T) {
		rd := writeTemp(t, "rd.img", fixture.CpioArchive(t, map[string][]byte{"etc/x": []byte("x")}))
		code, _, stderr := cliRun("customize", iso, "-o", filepath.Join(t.TempDir(), "x.iso"), "--ignition", ign, "--network-ramdisk", rd)
		if code != 1 || !strings.Contains(stderr, customize.PathCustomRamdisk) {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("ramdisk", func(t *testing.T) {
		// A minimal-like image: the ramdisk area added with xorriso.
		dir := t.TempDir()
		area := writeTemp(t, "custom.img", make([]byte, 1<<20))
		minimal := filepath.Join(dir, "minimal.iso")
		cliXorriso(t, "-indev", iso, "-outdev", minimal, "-map", area, "/"+customize.PathCustomRamdisk)
		rdBytes := fixture.CpioArchive(t, map[string][]byte{"etc/assisted/network/eth0.nmconnection": []byte("[connection]\n")})
		rd := writeTemp(t, "rd.img", rdBytes)
		out := filepath.Join(dir, "out.iso")
		if code, _, stderr := cliRun("customize", minimal, "-o", out, "--ignition", ign, "--network-ramdisk", rd); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		got := fixture.ExtractFile(t, out, customize.PathCustomRamdisk)
		if len(got) != 1<<20 || !bytes.Equal(got[:len(rdBytes)], rdBytes) {
			t.Fatal("ramdisk area does not start with the ramdisk")
		}
		if files := fixture.CpioFiles(t, got); string(files["etc/assisted/network/eth0.nmconnection"]) != "[connection]\n" {
			t.Fatalf("ramdisk area unpacks to %v", files)
		}
	})
}

func cliXorriso(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("xorriso", args...).CombinedOutput(); err != nil {
		t.Fatalf("xorriso %v: %v\n%s", args, err, out)
	}
}

func TestCLICustomizeInitrd(t *testing.T) {
	iso, m := cliFixture(t, fixture.Options{})
	cfg := []byte(`{"ignition":{"version":"3.2.0"}}`)
	ign := writeTemp(t, "config.ign", cfg)
	archive, err := customize.IgnitionArchive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := m.Files["images/pxeboot/initrd.img"]

	out := filepath.Join(t.TempDir(), "initrd.img")
	if code, _, stderr := cliRun("customize-initrd", "--ignition", ign, iso, "-o", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(bytes.Clone(base), archive...); !bytes.Equal(got, want) {
		t.Fatalf("initrd is %d bytes, want base %d ‖ archive %d", len(got), len(base), len(archive))
	}
	files := fixture.CpioFiles(t, got)
	if !bytes.Equal(files["config.ign"], cfg) || string(files["etc/coreos-live-initramfs"]) != m.VolumeID+"\n" {
		t.Fatalf("initrd unpacks to %v", files)
	}

	// Any image takes a ramdisk on the PXE path (the full ISO's initrd).
	rdBytes := fixture.CpioArchive(t, map[string][]byte{"etc/assisted/network/x": []byte("net")})
	rd := writeTemp(t, "rd.img", rdBytes)
	if code, _, stderr := cliRun("customize-initrd", iso, "-o", out, "--ignition", ign, "--network-ramdisk", rd); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, _ = os.ReadFile(out)
	if want := append(append(bytes.Clone(base), archive...), rdBytes...); !bytes.Equal(got, want) {
		t.Fatal("initrd is not base ‖ archive ‖ ramdisk")
	}
	if files := fixture.CpioFiles(t, got); string(files["etc/assisted/network/x"]) != "net" || !bytes.Equal(files["config.ign"], cfg) {
		t.Fatalf("initrd unpacks to %v", files)
	}
	cliOnlyFile(t, filepath.Dir(out), "initrd.img")
}

func TestCLIInspect(t *testing.T) {
	iso, m := cliFixture(t, fixture.Options{})
	code, stdout, stderr := cliRun("inspect", iso)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		m.VolumeID, "x86_64", "images/ignition.img", "length 262144, free 262144",
		"EFI/redhat/grub.cfg", "isolinux/isolinux.cfg", m.KargsDefault,
		"images/pxeboot/rootfs.img", "images/pxeboot/initrd.img", "images/pxeboot/vmlinuz",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}

	// After customizing, the free space shrinks to what the archive leaves.
	cfg := []byte(`{"ignition":{"version":"3.2.0"}}`)
	archive, _ := customize.IgnitionArchive(cfg)
	out := filepath.Join(t.TempDir(), "out.iso")
	if code, _, stderr := cliRun("customize", iso, "-o", out, "--ignition", writeTemp(t, "c.ign", cfg)); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, stdout, _ = cliRun("inspect", out)
	// The archive may end in zero padding, so free space is at least this.
	var free int
	if i := strings.Index(stdout, "length 262144, free "); i < 0 {
		t.Errorf("no ignition area line:\n%s", stdout)
	} else if _, err := fmt.Sscanf(stdout[i:], "length 262144, free %d", &free); err != nil || free < 262144-len(archive) || free >= 262144 {
		t.Errorf("inspect of a customized ISO (archive %d bytes) reports %d free:\n%s", len(archive), free, stdout)
	}

	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := cliRun("inspect", "--json", iso)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got customize.Layout
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		f, err := os.Open(iso)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		want, err := customize.ParseLayout(f)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, want) {
			t.Fatalf("inspect --json = %+v\nParseLayout = %+v", got, *want)
		}
	})
	t.Run("arch", func(t *testing.T) {
		for _, arch := range []string{"aarch64", "ppc64le", "s390x"} {
			iso, _ := cliFixture(t, fixture.Options{Arch: arch})
			if _, stdout, _ := cliRun("inspect", iso); !strings.Contains(stdout, " "+arch+" (guess:") {
				t.Errorf("%s: %s", arch, stdout)
			}
		}
	})
}

func TestCLIErrors(t *testing.T) {
	iso, _ := cliFixture(t, fixture.Options{})
	ign := writeTemp(t, "c.ign", []byte("{}"))
	out := filepath.Join(t.TempDir(), "o.iso")
	for name, args := range map[string][]string{
		"no command":          nil,
		"unknown command":     {"frobnicate"},
		"inspect no ISO":      {"inspect"},
		"inspect two ISOs":    {"inspect", iso, iso},
		"inspect bad flag":    {"inspect", "--yaml", iso},
		"customize no -o":     {"customize", iso, "--ignition", ign},
		"customize no ign":    {"customize", iso, "-o", out},
		"customize no ISO":    {"customize", "-o", out, "--ignition", ign},
		"customize empty arg": {"customize", iso, "-o", out, "--ignition", ign, "--karg", ""},
		"initrd no karg flag": {"customize-initrd", iso, "-o", out, "--ignition", ign, "--karg", "x"},
		"flag without value":  {"customize", iso, "--ignition", ign, "-o"},
	} {
		code, stdout, stderr := cliRun(args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "isoedge") || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2 and one line on stderr", name, code, stdout, stderr)
		}
	}
	if code, stdout, _ := cliRun("--help"); code != 0 || !strings.Contains(stdout, "usage:") {
		t.Errorf("--help: exit %d", code)
	}

	bad := writeTemp(t, "bad.iso", fixture.PseudoRandom(1<<20, 3))
	for name, args := range map[string][]string{
		"inspect bad ISO":   {"inspect", bad},
		"inspect missing":   {"inspect", filepath.Join(t.TempDir(), "nope.iso")},
		"customize bad ISO": {"customize", bad, "-o", out, "--ignition", ign},
		"missing ignition":  {"customize", iso, "-o", out, "--ignition", filepath.Join(t.TempDir(), "nope.ign")},
		"output dir gone":   {"customize", iso, "-o", filepath.Join(t.TempDir(), "no", "o.iso"), "--ignition", ign},
		"initrd bad ISO":    {"customize-initrd", bad, "-o", out, "--ignition", ign},
	} {
		code, _, stderr := cliRun(args...)
		if code != 1 || !strings.HasPrefix(stderr, "isoedge: ") || strings.Contains(stderr, "usage:") {
			t.Errorf("%s: exit %d, stderr %q; want 1 with the error", name, code, stderr)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("failed commands left %s", out)
	}
}

// TestCLIZeroCopy checks that base extents are copied by copy_file_range:
// writePlan counts the bytes each copy_file_range call reported, and every
// base byte of a 64 MiB-rootfs image must be among them.
func TestCLIZeroCopy(t *testing.T) {
	iso, _ := cliFixture(t, fixture.Options{RootfsSize: 64 << 20})
	f, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := customize.ParseLayout(f)
	if err != nil {
		t.Fatal(err)
	}
	archive, _ := customize.IgnitionArchive([]byte(`{"ignition":{"version":"3.2.0"}}`))
	plan, err := customize.ISO(l, iso, customize.Overlay{Ignition: archive, Kargs: []string{"a=b"}})
	if err != nil {
		t.Fatal(err)
	}
	var baseBytes, patchBytes int64
	for _, s := range plan.Segs {
		switch s.Kind {
		case customize.FromBase:
			baseBytes += s.Len
		case customize.FromData:
			patchBytes += s.Len
		}
	}
	if baseBytes < 64<<20 {
		t.Fatalf("plan has only %d base bytes", baseBytes)
	}
	want := planDigest(t, plan, f)

	var calls int
	real := copyFileRange
	copyFileRange = func(rfd int, roff *int64, wfd int, woff *int64, n int, flags int) (int, error) {
		calls++
		return real(rfd, roff, wfd, woff, n, flags)
	}
	defer func() { copyFileRange = real }()

	out := filepath.Join(t.TempDir(), "out.iso")
	st, err := writePlanFile(out, f, plan)
	if err != nil {
		t.Fatal(err)
	}
	if st.zeroCopy != baseBytes || st.fallback != 0 || st.patched != patchBytes {
		t.Fatalf("stats %+v; want all %d base bytes by copy_file_range, %d patch bytes", st, baseBytes, patchBytes)
	}
	if calls == 0 {
		t.Fatal("copy_file_range never called")
	}
	if got := fileDigest(t, out); got != want {
		t.Fatal("output differs from the plan's bytes")
	}
	if pos, _ := f.Seek(0, io.SeekCurrent); pos != 0 {
		t.Errorf("source file position moved to %d", pos)
	}

	// The CLI reports the same split.
	out2 := filepath.Join(t.TempDir(), "cli.iso")
	code, stdout, stderr := cliRun("customize", iso, "-o", out2, "--ignition", writeTemp(t, "c.ign", []byte(`{"ignition":{"version":"3.2.0"}}`)), "--karg", "a=b")
	if code != 0 || !strings.Contains(stdout, " copied in the kernel") || fileDigest(t, out2) != want {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	t.Run("fallback", func(t *testing.T) {
		copyFileRange = func(int, *int64, int, *int64, int, int) (int, error) { return 0, unix.EXDEV }
		out := filepath.Join(t.TempDir(), "fallback.iso")
		st, err := writePlanFile(out, f, plan)
		if err != nil {
			t.Fatal(err)
		}
		if st.zeroCopy != 0 || st.fallback != baseBytes {
			t.Fatalf("stats %+v", st)
		}
		if fileDigest(t, out) != want {
			t.Fatal("fallback output differs from the plan's bytes")
		}
	})
}

func planDigest(t *testing.T, p customize.Plan, f *os.File) [32]byte {
	t.Helper()
	h := sha256.New()
	if n, err := io.Copy(h, customize.NewReader(p, f)); err != nil || n != p.Size {
		t.Fatalf("reading plan: %d bytes, %v", n, err)
	}
	return [32]byte(h.Sum(nil))
}

func fileDigest(t *testing.T, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// writeTemp writes b to a new file and returns its path.
func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLIVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, out, errOut := cliRun(arg)
		if code != 0 || !strings.HasPrefix(out, "isoedge ") || !strings.Contains(out, "revision ") || errOut != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", arg, code, out, errOut)
		}
	}
}
