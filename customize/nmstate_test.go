package customize

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/internal/fixture"
)

const nmstateOstreePath = "ostree/deploy/rhcos/deploy/abc123/usr/bin/nmstatectl"

func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("required tool %q not in PATH (apt-get install squashfs-tools erofs-utils xorriso cpio): %v", n, err)
		}
	}
}

func runTool(t *testing.T, dir string, stdin string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.Bytes())
	}
	return out.Bytes()
}

// nmstateISO builds a fixture ISO whose images/pxeboot/rootfs.img is an
// uncompressed newc cpio (written by the external cpio) holding root.<kind>
// made by mksquashfs (zstd) or mkfs.erofs (lz4hc) from files, and an osmet
// file; with osmetFirst the osmet member comes first. It returns the ISO
// opened and its layout.
func nmstateISO(t *testing.T, kind string, files map[string][]byte, osmetFirst bool) (*os.File, *Layout) {
	t.Helper()
	requireTools(t, "xorriso", "cpio")
	work := t.TempDir()
	root := filepath.Join(work, "root")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, data := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stage := filepath.Join(work, "stage")
	if err := os.Mkdir(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	member := "root." + kind
	switch kind {
	case "squashfs":
		requireTools(t, "mksquashfs")
		runTool(t, work, "", "mksquashfs", root, filepath.Join(stage, member), "-comp", "zstd", "-noappend", "-all-root", "-no-progress")
	case "erofs":
		requireTools(t, "mkfs.erofs")
		runTool(t, work, "", "mkfs.erofs", "-zlz4hc", filepath.Join(stage, member), root)
	default:
		t.Fatalf("unknown rootfs kind %q", kind)
	}
	if err := os.WriteFile(filepath.Join(stage, "rhcos-aleph.x86_64.osmet"), fixture.PseudoRandom(3001, 9), 0o644); err != nil {
		t.Fatal(err)
	}
	list := member + "\nrhcos-aleph.x86_64.osmet\n"
	if osmetFirst {
		list = "rhcos-aleph.x86_64.osmet\n" + member + "\n"
	}
	rootfs := runTool(t, stage, list, "cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet")
	rootfsPath := filepath.Join(work, "rootfs.img")
	if err := os.WriteFile(rootfsPath, rootfs, 0o644); err != nil {
		t.Fatal(err)
	}
	base, _ := fixture.Build(t, work, fixture.Options{})
	isoPath := filepath.Join(work, "nmstate.iso")
	runTool(t, work, "", "xorriso", "-indev", base, "-outdev", isoPath,
		"-map", rootfsPath, "/"+PathRootfs, "-boot_image", "any", "keep")
	if got := fixture.ExtractFile(t, isoPath, PathRootfs); !bytes.Equal(got, rootfs) {
		t.Fatal("fixture: rootfs.img not replaced in the ISO")
	}
	f, err := os.Open(isoPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	l, err := ParseLayout(f)
	if err != nil {
		t.Fatal(err)
	}
	return f, l
}

// cpioListing returns `cpio -itv` of a gzip'd archive.
func cpioListing(t *testing.T, archive []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(runTool(t, "", string(raw), "cpio", "-itv", "--quiet"))
}

// checkNmstateArchive checks an ExtractNmstatectl result: 4-byte padded,
// usr/bin/nmstatectl with want and mode 0755, parent directories first.
func checkNmstateArchive(t *testing.T, archive, want []byte) {
	t.Helper()
	if len(archive)%4 != 0 {
		t.Errorf("archive is %d bytes, not 4-byte padded", len(archive))
	}
	files := fixture.CpioFiles(t, archive)
	if len(files) != 1 || !bytes.Equal(files[PathNmstatectl], want) {
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		t.Fatalf("archive holds %v; want only %s with the original %d bytes", names, PathNmstatectl, len(want))
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(cpioListing(t, archive)), "\n") {
		f := strings.Fields(l)
		lines = append(lines, f[0]+" "+f[len(f)-1])
	}
	wantLines := []string{"drwxr-xr-x usr", "drwxr-xr-x usr/bin", "-rwxr-xr-x usr/bin/nmstatectl"}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("cpio -itv:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
}

func TestNmstateExtract(t *testing.T) {
	bin := append([]byte("#!/bin/sh\necho nmstatectl\n"), fixture.PseudoRandom(300<<10, 21)...)
	other := map[string][]byte{
		"ostree/repo/config":           []byte("[core]\n"),
		"ostree/deploy/rhcos/var/.x":   nil,
		"usr/lib/nmstate/nmstatectl.d": []byte("not it"),
	}
	withBin := func(p string) map[string][]byte {
		m := map[string][]byte{p: bin}
		for k, v := range other {
			m[k] = v
		}
		return m
	}
	for _, kind := range []string{"squashfs", "erofs"} {
		t.Run(kind, func(t *testing.T) {
			f, l := nmstateISO(t, kind, withBin(nmstateOstreePath), kind == "erofs")
			work := t.TempDir()
			archive, err := ExtractNmstatectl(f, l, work)
			if err != nil {
				t.Fatalf("ExtractNmstatectl: %v", err)
			}
			checkNmstateArchive(t, archive, bin)
			if left, _ := os.ReadDir(work); len(left) != 0 {
				t.Errorf("work dir not cleaned: %v", left)
			}
			if pos, _ := f.Seek(0, io.SeekCurrent); pos != 0 {
				t.Errorf("ISO file position moved to %d", pos)
			}
		})
		t.Run(kind+"/walk", func(t *testing.T) {
			f, l := nmstateISO(t, kind, withBin("opt/zz/deep/nmstatectl"), false)
			archive, err := ExtractNmstatectl(f, l, t.TempDir())
			if err != nil {
				t.Fatalf("ExtractNmstatectl: %v", err)
			}
			checkNmstateArchive(t, archive, bin)
		})
		t.Run(kind+"/missing", func(t *testing.T) {
			f, l := nmstateISO(t, kind, other, false)
			_, err := ExtractNmstatectl(f, l, t.TempDir())
			if !errors.Is(err, ErrNoNmstatectl) {
				t.Fatalf("err = %v, want ErrNoNmstatectl", err)
			}
		})
	}

	t.Run("erofs/no-dump.erofs", func(t *testing.T) {
		f, l := nmstateISO(t, "erofs", withBin(nmstateOstreePath), false)
		t.Setenv("PATH", t.TempDir())
		_, err := ExtractNmstatectl(f, l, t.TempDir())
		if !errors.Is(err, ErrNoDumpErofs) || !strings.Contains(err.Error(), "erofs rootfs needs dump.erofs (erofs-utils)") {
			t.Fatalf("err = %v, want the dump.erofs error", err)
		}
	})

	// erofs-utils with `dump.erofs --cat`: a wrapper answers --cat itself
	// and hands everything else to the real dump.erofs, proving the file
	// is read with `--cat --path=/<found path>`.
	t.Run("erofs/cat", func(t *testing.T) {
		requireTools(t, "dump.erofs")
		f, l := nmstateISO(t, "erofs", withBin(nmstateOstreePath), false)
		real, _ := exec.LookPath("dump.erofs")
		shim := t.TempDir()
		script := "#!/bin/sh\n" +
			"case \"$1\" in\n" +
			"--help) " + real + " --help 2>&1; echo ' --cat           show file content (--path required)'; exit 0;;\n" +
			"--cat) printf 'CAT %s' \"$2\"; exit 0;;\n" +
			"esac\n" +
			"exec " + real + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(shim, "dump.erofs"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", shim+string(os.PathListSeparator)+os.Getenv("PATH"))
		archive, err := ExtractNmstatectl(f, l, t.TempDir())
		if err != nil {
			t.Fatalf("ExtractNmstatectl: %v", err)
		}
		if got := fixture.CpioFiles(t, archive)[PathNmstatectl]; string(got) != "CAT --path=/"+nmstateOstreePath {
			t.Fatalf("nmstatectl = %q", got)
		}
	})

	t.Run("not a filesystem", func(t *testing.T) {
		// The default fixture rootfs is root.squashfs with a "hsqs" magic
		// and random bytes after it.
		_, _, l, f := fixtureISO(t, fixture.Options{})
		_, err := ExtractNmstatectl(f, l, t.TempDir())
		if !errors.Is(err, ErrBadImage) {
			t.Fatalf("err = %v, want ErrBadImage", err)
		}
	})

	t.Run("no root member", func(t *testing.T) {
		// RootfsSize not a multiple of 4: the fixture writes random bytes.
		_, _, l, f := fixtureISO(t, fixture.Options{RootfsSize: 128<<10 + 1})
		_, err := ExtractNmstatectl(f, l, t.TempDir())
		if !errors.Is(err, ErrBadImage) {
			t.Fatalf("err = %v, want ErrBadImage", err)
		}
	})
}

// TestNmstateExtractFixtureRootfs extracts nmstatectl from the shared
// fixture's RHCOS-shaped rootfs (ostree deployment path, osmet member
// after the filesystem), the image the root-package suite serves.
func TestNmstateExtractFixtureRootfs(t *testing.T) {
	bin := append([]byte("#!/bin/sh\necho fixture\n"), fixture.PseudoRandom(150<<10, 22)...)
	for _, fs := range []string{fixture.RootfsSquashfs, fixture.RootfsErofs} {
		t.Run(fs, func(t *testing.T) {
			_, _, l, f := fixtureISO(t, fixture.Options{RootfsFS: fs, Nmstatectl: bin})
			archive, err := ExtractNmstatectl(f, l, t.TempDir())
			if err != nil {
				t.Fatalf("ExtractNmstatectl: %v", err)
			}
			checkNmstateArchive(t, archive, bin)
		})
		t.Run(fs+"/missing", func(t *testing.T) {
			_, _, l, f := fixtureISO(t, fixture.Options{RootfsFS: fs})
			if _, err := ExtractNmstatectl(f, l, t.TempDir()); !errors.Is(err, ErrNoNmstatectl) {
				t.Fatalf("err = %v, want ErrNoNmstatectl", err)
			}
		})
	}
}

func TestNmstateNeeded(t *testing.T) {
	for v, want := range map[string]bool{
		"4.18.0-ec.0":           true,
		"4.18.0-ec.1":           true,
		"4.18.0-rc.2":           true,
		"4.18":                  true,
		"4.18.0":                true,
		"4.18.3":                true,
		"v4.18.1":               true,
		"4.19.3":                true,
		"4.20.0-0.nightly-2025": true,
		"5.0":                   true,
		"417.94.202501010000-0": true, // RHCOS-style key, as upstream
		"4.18.0+build.1":        true,
		"4.17":                  false,
		"4.17.99":               false,
		"4.18.0-0.nightly":      false, // numeric pre-release sorts before "ec"
		"4.18.0-alpha":          false,
		"4.9":                   false,
		"4":                     false,
		"":                      false,
		"latest":                false,
		"4.18.x":                false,
		"4.18.0.1":              false,
		"4.18.0-":               false,
	} {
		if got := NmstateNeeded(v); got != want {
			t.Errorf("NmstateNeeded(%q) = %v, want %v", v, got, want)
		}
	}
}
