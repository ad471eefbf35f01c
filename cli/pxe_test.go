package cli

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/internal/fixture"
)

func TestISOExtractPXE(t *testing.T) {
	for _, arch := range []string{"x86_64", "s390x"} {
		t.Run(arch, func(t *testing.T) {
			iso, m := cliFixture(t, fixture.Options{Arch: arch, KernelName: "kernel.img"})
			dir := filepath.Join(t.TempDir(), "pxe")
			stdout := mustRun(t, "iso", "extract", "pxe", "-o", dir, iso)
			stem := strings.TrimSuffix(filepath.Base(iso), ".iso")
			var want []string
			for p := range m.Sizes {
				if strings.HasPrefix(p, "images/pxeboot/") {
					want = append(want, p)
				}
			}
			if len(want) != 3 {
				t.Fatalf("fixture has pxeboot files %v", want)
			}
			for _, p := range want {
				name := stem + "-" + filepath.Base(p)
				got, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatalf("%s: %v (printed %q)", name, err, stdout)
				}
				if !bytes.Equal(got, fixture.ExtractFile(t, iso, p)) {
					t.Errorf("%s differs from %s extracted by xorriso", name, p)
				}
				if !strings.Contains(stdout, filepath.Join(dir, name)+"\n") {
					t.Errorf("stdout %q does not name %s", stdout, name)
				}
			}
			// Existing files are not overwritten.
			code, _, stderr := cliRun("iso", "extract", "pxe", "--output-dir", dir, iso)
			if code != 1 || !strings.Contains(stderr, "exists") {
				t.Fatalf("second extract: exit %d, stderr %q", code, stderr)
			}
		})
	}
}

func TestISOExtractMinimal(t *testing.T) {
	base, _ := cliFixture(t, fixture.Options{})
	dir := t.TempDir()
	out := filepath.Join(dir, "minimal.iso")
	mustRun(t, "iso", "extract", "minimal-iso", "--rootfs-url", "http://10.0.0.1/rootfs.img", base, out)
	cliOnlyFile(t, dir, "minimal.iso")
	list, err := exec.Command("xorriso", "-indev", out, "-find", "/", "-type", "f").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, list)
	}
	if strings.Contains(string(list), "rootfs.img") || !strings.Contains(string(list), customize.PathCustomRamdisk) {
		t.Fatalf("minimal ISO files:\n%s", list)
	}
	if line := kernelLine(t, out, "EFI/redhat/grub.cfg"); !strings.Contains(line, "coreos.live.rootfs_url=") {
		t.Fatalf("minimal grub.cfg kernel line %q", line)
	}
	// Its kernel arguments are read and edited like a full ISO's.
	if kargs := mustRun(t, "iso", "kargs", "show", out); !strings.Contains(kargs, "coreos.live.rootfs_url=") || kargs != mustRun(t, "iso", "kargs", "show", "--default", out) {
		t.Fatalf("minimal kargs %q", kargs)
	}
	mod := filepath.Join(t.TempDir(), "mod.iso")
	mustRun(t, "iso", "kargs", "modify", "-a", "quiet", "-o", mod, out)
	mustRun(t, "iso", "reset", "-o", filepath.Join(filepath.Dir(mod), "reset.iso"), mod)
	if fileDigest(t, filepath.Join(filepath.Dir(mod), "reset.iso")) != fileDigest(t, out) {
		t.Fatal("reset of a modified minimal ISO is not the template")
	}
	text := mustRun(t, "inspect", out)
	if !strings.Contains(text, "ramdisk area:") || !strings.Contains(text, "free 1048576") {
		t.Fatalf("inspect of the minimal ISO:\n%s", text)
	}
	// A customized ISO is refused; no --rootfs-url is a usage error.
	svc := serviceISO(t, base, cfgA)
	if code, _, stderr := cliRun("iso", "extract", "minimal-iso", "--rootfs-url", "http://x/r", svc, filepath.Join(dir, "m2.iso")); code != 1 || !strings.Contains(stderr, "customized") {
		t.Fatalf("minimal of a customized ISO: exit %d, %q", code, stderr)
	}
	if code, _, _ := cliRun("iso", "extract", "minimal-iso", base, filepath.Join(dir, "m3.iso")); code != 2 {
		t.Fatalf("no --rootfs-url: exit %d", code)
	}
	cliOnlyFile(t, dir, "minimal.iso")
}

func TestPXEIgnitionWrapUnwrap(t *testing.T) {
	dir := t.TempDir()
	wrapped := filepath.Join(dir, "ign.img")
	mustRun(t, "pxe", "ignition", "wrap", "-i", writeTemp(t, "a.ign", cfgA), "-o", wrapped)
	archive, err := os.ReadFile(wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := customize.IgnitionArchive(cfgA); !bytes.Equal(archive, want) {
		t.Fatal("wrap is not the service's ignition archive")
	}
	if len(archive)%4 != 0 {
		t.Fatalf("archive of %d bytes is not 4-byte padded", len(archive))
	}
	// cpio -i (after gzip -d) reads config.ign.
	if files := fixture.CpioFiles(t, archive); len(files) != 1 || !bytes.Equal(files["config.ign"], cfgA) {
		t.Fatalf("cpio reads %v", files)
	}
	if got := mustRun(t, "pxe", "ignition", "unwrap", wrapped); got != string(cfgA) {
		t.Fatalf("unwrap = %q", got)
	}

	// Standard input to standard output, both ways.
	code, stdout, stderr := cliRunStdin(cfgB, "pxe", "ignition", "wrap")
	if code != 0 {
		t.Fatalf("wrap from stdin: exit %d: %s", code, stderr)
	}
	code, got, stderr := cliRunStdin([]byte(stdout), "pxe", "ignition", "unwrap")
	if code != 0 || got != string(cfgB) {
		t.Fatalf("unwrap from stdin: exit %d, %q, %s", code, got, stderr)
	}

	// An archive made by the external cpio and gzip unwraps too.
	ext := writeTemp(t, "ext.img", fixture.CpioArchive(t, map[string][]byte{"config.ign": cfgB, "etc/x": []byte("x")}))
	if got := mustRun(t, "pxe", "ignition", "unwrap", ext); got != string(cfgB) {
		t.Fatalf("unwrap of a cpio-made archive = %q", got)
	}
	// Not an archive, or one without config.ign: exit 1.
	for name, b := range map[string][]byte{
		"garbage":   []byte("this is not an archive"),
		"no config": fixture.CpioArchive(t, map[string][]byte{"etc/x": []byte("x")}),
		"truncated": archive[:len(archive)/2],
	} {
		code, stdout, stderr := cliRun("pxe", "ignition", "unwrap", writeTemp(t, "bad.img", b))
		if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, code, stdout, stderr)
		}
	}
}

func TestPXECustomize(t *testing.T) {
	iso, m := cliFixture(t, fixture.Options{})
	initrd := writeTemp(t, "rhcos-initrd.img", fixture.ExtractFile(t, iso, "images/pxeboot/initrd.img"))
	rdBytes := fixture.CpioArchive(t, map[string][]byte{"etc/assisted/network/eth0.nmconnection": []byte("[connection]\n")})
	rd := writeTemp(t, "rd.img", rdBytes)
	dir := t.TempDir()
	out := filepath.Join(dir, "custom-initrd.img")
	mustRun(t, "pxe", "customize", "-i", writeTemp(t, "a.ign", cfgA), "--network-ramdisk", rd, "-o", out, initrd)
	cliOnlyFile(t, dir, "custom-initrd.img")
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	archive, _ := customize.IgnitionArchive(cfgA)
	base, _ := os.ReadFile(initrd)
	if want := bytes.Join([][]byte{base, archive, rdBytes}, nil); !bytes.Equal(got, want) {
		t.Fatal("output is not initramfs ‖ ignition archive ‖ ramdisk")
	}
	files := fixture.CpioFiles(t, got)
	if !bytes.Equal(files["config.ign"], cfgA) || string(files["etc/coreos-live-initramfs"]) != m.VolumeID+"\n" ||
		string(files["etc/assisted/network/eth0.nmconnection"]) != "[connection]\n" {
		t.Fatalf("output unpacks to %v", files)
	}
	// The service's pxe-initrd plan, through the older spelling.
	old := filepath.Join(t.TempDir(), "old.img")
	mustRun(t, "customize-initrd", iso, "-o", old, "--ignition", writeTemp(t, "a.ign", cfgA), "--network-ramdisk", rd)
	if fileDigest(t, old) != fileDigest(t, out) {
		t.Fatal("pxe customize differs from customize-initrd")
	}
	// The ignition config can be read back from the whole initramfs.
	if got := mustRun(t, "pxe", "ignition", "unwrap", out); got != string(cfgA) {
		t.Fatalf("unwrap of the customized initramfs = %q", got)
	}
	// From standard input, to standard output.
	code, stdout, stderr := cliRunStdin(cfgA, "pxe", "customize", "-o", "-", "--network-ramdisk", rd, initrd)
	if code != 0 || stdout != string(got) {
		t.Fatalf("stdin/stdout: exit %d, %d bytes, %s", code, len(stdout), stderr)
	}
	if code, _, _ := cliRun("pxe", "customize", "-i", writeTemp(t, "a.ign", cfgA), initrd); code != 2 {
		t.Fatalf("no -o: exit %d", code)
	}
}

// TestPXEUnwrapAfterXZ: a live initramfs is a plain cpio followed by an
// xz-compressed one; the config appended after it is still found.
func TestPXEUnwrapAfterXZ(t *testing.T) {
	plain := gunzip(t, fixture.CpioArchive(t, map[string][]byte{"kernel/x86/microcode/x.bin": []byte("ucode")}))
	mainCpio := gunzip(t, fixture.CpioArchive(t, map[string][]byte{"etc/coreos-live-initramfs": []byte("live\n"), "usr/bin/x": fixture.PseudoRandom(200<<10, 9)}))
	cmd := exec.Command("xz", "--check=crc32", "-c")
	cmd.Stdin = bytes.NewReader(mainCpio)
	xzed, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for len(plain)%4 != 0 {
		plain = append(plain, 0)
	}
	initramfs := writeTemp(t, "initramfs.img", append(plain, xzed...))
	out := filepath.Join(t.TempDir(), "custom.img")
	mustRun(t, "pxe", "customize", "-i", writeTemp(t, "a.ign", cfgA), "-o", out, initramfs)
	if got := mustRun(t, "pxe", "ignition", "unwrap", out); got != string(cfgA) {
		t.Fatalf("unwrap = %q", got)
	}
	// Standard input cannot be searched: a clear error.
	b, _ := os.ReadFile(out)
	code, _, stderr := cliRunStdin(b, "pxe", "ignition", "unwrap")
	if code != 1 || !strings.Contains(stderr, "xz") {
		t.Fatalf("unwrap of an xz initramfs from stdin: exit %d, %q", code, stderr)
	}
	// The output is the initramfs and the archive, which cpio reads.
	base, _ := os.ReadFile(initramfs)
	if !bytes.HasPrefix(b, base) {
		t.Fatal("output does not start with the initramfs")
	}
	if files := fixture.CpioFiles(t, b[len(base):]); !bytes.Equal(files["config.ign"], cfgA) {
		t.Fatalf("the appended archive unpacks to %v", files)
	}
}

// gunzip returns the first gzip member of b (a CpioArchive: cpio's
// output, gzip'd and NUL-padded).
func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
