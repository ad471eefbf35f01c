package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/internal/fixture"
)

func TestISOKargs(t *testing.T) {
	base, m := cliFixture(t, fixture.Options{})
	dir := t.TempDir()
	iso := copyFile(t, base, dir, "k.iso")
	show := func() string {
		t.Helper()
		return strings.TrimSuffix(mustRun(t, "iso", "kargs", "show", iso), "\n")
	}
	checkLines := func(want string) {
		t.Helper()
		for _, cfg := range m.KargsFiles {
			line := kernelLine(t, iso, cfg)
			if !strings.HasSuffix(line, " "+want) {
				t.Errorf("%s: kernel line %q does not end with %q", cfg, line, want)
			}
			if got := fixture.ExtractFile(t, iso, cfg); int64(len(got)) != m.Sizes[cfg] {
				t.Errorf("%s: %d bytes, base %d", cfg, len(got), m.Sizes[cfg])
			}
		}
	}
	if got := show(); got != m.KargsDefault {
		t.Fatalf("pristine kargs = %q, want the defaults %q", got, m.KargsDefault)
	}

	mustRun(t, "iso", "kargs", "modify", "-a", "console=ttyS0,115200n8", "--append=rd.neednet=1", iso)
	want := m.KargsDefault + " console=ttyS0,115200n8 rd.neednet=1"
	if got := show(); got != want {
		t.Fatalf("after -a: %q, want %q", got, want)
	}
	checkLines(want)
	cliOnlyFile(t, dir, "k.iso")

	// The appended arguments are where the service writes them: the same
	// bytes as the service's plan for those arguments.
	if fileDigest(t, iso) != fileDigest(t, serviceISO(t, base, nil, "console=ttyS0,115200n8", "rd.neednet=1")) {
		t.Fatal("kargs modify -a differs from the service's appended kernel arguments")
	}

	// A second modify edits the whole list: nothing is appended twice.
	mustRun(t, "iso", "kargs", "modify", "-a", "quiet", iso)
	want += " quiet"
	if got := show(); got != want {
		t.Fatalf("after a second -a: %q, want %q", got, want)
	}
	if strings.Count(show(), "console=") != 1 {
		t.Fatal("console= stacked")
	}

	// Delete, replace, and delete a default argument.
	mustRun(t, "iso", "kargs", "modify", "-d", "console=ttyS0,115200n8", "-r", "rd.neednet=1=0", "-d", "ignition.platform.id=metal", iso)
	want = strings.Replace(m.KargsDefault, " ignition.platform.id=metal", "", 1) + " rd.neednet=0 quiet"
	if got := show(); got != want {
		t.Fatalf("after -d/-r: %q, want %q", got, want)
	}
	checkLines(want)
	if got := mustRun(t, "iso", "kargs", "show", "-d", iso); got != m.KargsDefault+"\n" {
		t.Fatalf("--default = %q", got)
	}

	// A delete of an argument that is not there warns and changes nothing.
	before := fileDigest(t, iso)
	code, _, stderr := cliRun("iso", "kargs", "modify", "-d", "nosuch", iso)
	if code != 0 || !strings.Contains(stderr, "warning: --delete nosuch") || fileDigest(t, iso) != before {
		t.Fatalf("-d nosuch: exit %d, stderr %q", code, stderr)
	}

	// Too long for the area: exit 1, nothing written.
	code, _, stderr = cliRun("iso", "kargs", "modify", "-a", "x="+strings.Repeat("y", 2000), iso)
	if code != 1 || !strings.Contains(stderr, "too large") || fileDigest(t, iso) != before {
		t.Fatalf("oversized kargs: exit %d, stderr %q", code, stderr)
	}

	// reset brings back the defaults: the base image, byte for byte.
	out := filepath.Join(t.TempDir(), "reset.iso")
	mustRun(t, "iso", "kargs", "reset", "-o", out, iso)
	if fileDigest(t, out) != fileDigest(t, base) {
		t.Fatal("kargs reset of an ISO without ignition is not the base image")
	}
	if fileDigest(t, iso) != before {
		t.Fatal("kargs reset -o changed its input")
	}
}

func TestISOKargsUnsupported(t *testing.T) {
	iso, _ := cliFixture(t, fixture.Options{NoKargsJSON: true})
	for _, args := range [][]string{
		{"iso", "kargs", "show", iso},
		{"iso", "kargs", "modify", "-a", "a=b", "-o", filepath.Join(t.TempDir(), "x.iso"), iso},
		{"iso", "kargs", "reset", "-o", filepath.Join(t.TempDir(), "x.iso"), iso},
	} {
		code, _, stderr := cliRun(args...)
		if code != 1 || !strings.Contains(stderr, "coreos/kargs.json") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	// The older customize still appends, as the service does.
	out := filepath.Join(t.TempDir(), "c.iso")
	mustRun(t, "customize", iso, "-o", out, "--ignition", writeTemp(t, "c.ign", cfgA), "--karg", "a=b")
	if line := kernelLine(t, out, "EFI/redhat/grub.cfg"); !strings.HasSuffix(line, " a=b") {
		t.Fatalf("kernel line %q", line)
	}

	s390x, _ := cliFixture(t, fixture.Options{Arch: "s390x"})
	code, _, stderr := cliRun("iso", "kargs", "show", s390x)
	if code != 1 || !strings.Contains(stderr, "no kernel-argument area") {
		t.Fatalf("s390x kargs show: exit %d, stderr %q", code, stderr)
	}
}

func TestISOReset(t *testing.T) {
	base, _ := cliFixture(t, fixture.Options{})
	baseSum := fileDigest(t, base)

	// Customized by the service's plan.
	svc := serviceISO(t, base, cfgA, "console=ttyS0,115200n8", "rd.neednet=1")
	if fileDigest(t, svc) == baseSum {
		t.Fatal("the service ISO equals the base")
	}
	out := filepath.Join(t.TempDir(), "reset.iso")
	mustRun(t, "iso", "reset", "-o", out, svc)
	if fileDigest(t, out) != baseSum {
		t.Fatal("iso reset of a service ISO is not the base image")
	}

	// Customized by the CLI, defaults deleted too; reset in place.
	dir := t.TempDir()
	iso := copyFile(t, base, dir, "c.iso")
	if err := os.Chmod(iso, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "iso", "ignition", "embed", "-i", writeTemp(t, "a.ign", cfgA), iso)
	mustRun(t, "iso", "kargs", "modify", "-d", "ignition.firstboot", "-a", "quiet", iso)
	link := filepath.Join(dir, "link.iso")
	if err := os.Symlink("c.iso", link); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "iso", "reset", link)
	if fileDigest(t, iso) != baseSum {
		t.Fatal("iso reset in place is not the base image")
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatal("reset through a symbolic link replaced the link")
	}
	if st, _ := os.Stat(iso); st.Mode().Perm() != 0o600 {
		t.Fatalf("in-place reset changed the mode to %v", st.Mode().Perm())
	}
	cliOnlyFile(t, dir, "c.iso", "link.iso")

	// To standard output.
	code, stdout, stderr := cliRun("iso", "reset", "-o", "-", svc)
	if code != 0 || fileDigest(t, writeTemp(t, "s.iso", []byte(stdout))) != baseSum {
		t.Fatalf("reset to stdout: exit %d, %s", code, stderr)
	}
}
