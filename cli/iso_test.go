package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/internal/fixture"
)

// cliRunStdin runs the CLI with stdin as standard input.
func cliRunStdin(stdin []byte, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := RunIO(args, bytes.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// mustRun runs the CLI and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := cliRun(args...)
	if code != 0 {
		t.Fatalf("isoedge %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// copyFile copies src to a new file in dir.
func copyFile(t *testing.T, src, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// serviceISO writes what the service serves for config and kargs: the
// plan of customize.ISO, written by the CLI's plan writer.
func serviceISO(t *testing.T, iso string, config []byte, kargs ...string) string {
	t.Helper()
	f, l, err := openISO(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var archive []byte
	if config != nil {
		if archive, err = customize.IgnitionArchive(config); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := customize.ISO(l, iso, customize.Overlay{Ignition: archive, Kargs: kargs})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "service.iso")
	if _, err := writePlanFile(out, f, plan); err != nil {
		t.Fatal(err)
	}
	return out
}

// embeddedConfig reads config.ign of an ISO with xorriso, gzip and cpio.
func embeddedConfig(t *testing.T, iso string) []byte {
	t.Helper()
	files := fixture.CpioFiles(t, fixture.ExtractFile(t, iso, "images/ignition.img"))
	if len(files) != 1 {
		t.Fatalf("ignition.img of %s unpacks to %d files", iso, len(files))
	}
	return files["config.ign"]
}

// kernelLine returns the kernel command line of a boot config of iso, as
// xorriso extracts it: the line before the COREOS_KARG_EMBED_AREA line.
func kernelLine(t *testing.T, iso, cfg string) string {
	t.Helper()
	b := fixture.ExtractFile(t, iso, cfg)
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasSuffix(l, " COREOS_KARG_EMBED_AREA") && i > 0 {
			return lines[i-1]
		}
	}
	t.Fatalf("%s of %s has no embed area line:\n%s", cfg, iso, b)
	return ""
}

var (
	cfgA = []byte(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/a"}]}}` + "\n")
	cfgB = []byte(`{"ignition": {"version": "3.4.0"}, "passwd": {}}`)
)

func TestISOIgnitionEmbedShow(t *testing.T) {
	base, _ := cliFixture(t, fixture.Options{})
	dir := t.TempDir()
	iso := copyFile(t, base, dir, "work.iso")
	cfgFile := writeTemp(t, "a.ign", cfgA)

	// In place, from a file.
	mustRun(t, "iso", "ignition", "embed", "-i", cfgFile, iso)
	cliOnlyFile(t, dir, "work.iso")
	if got := embeddedConfig(t, iso); !bytes.Equal(got, cfgA) {
		t.Fatalf("xorriso+cpio read config.ign %q", got)
	}
	if got := mustRun(t, "iso", "ignition", "show", iso); got != string(cfgA) {
		t.Fatalf("show = %q, want %q", got, cfgA)
	}
	if got, want := fileSize(t, iso), fileSize(t, base); got != want {
		t.Fatalf("embedded ISO is %d bytes, base %d", got, want)
	}

	// The same bytes as the older customize, which is the service's plan.
	old := filepath.Join(t.TempDir(), "old.iso")
	mustRun(t, "customize", base, "-o", old, "--ignition", cfgFile)
	if fileDigest(t, old) != fileDigest(t, iso) {
		t.Fatal("iso ignition embed and customize differ")
	}
	// customize takes --output and --ignition - (standard input) too.
	old2 := filepath.Join(t.TempDir(), "old2.iso")
	if code, _, stderr := cliRunStdin(cfgA, "customize", "--output", old2, "--ignition", "-", base); code != 0 || fileDigest(t, old2) != fileDigest(t, old) {
		t.Fatalf("customize --output --ignition -: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := cliRunStdin(cfgA, "customize", "-o", "-", "-i", "-", base)
	if code != 0 || fileDigest(t, writeTemp(t, "o.iso", []byte(stdout))) != fileDigest(t, old) {
		t.Fatalf("customize -o -: exit %d, %d bytes, %s", code, len(stdout), stderr)
	}

	// A second embed needs -f; the ISO is left as it was.
	before := fileDigest(t, iso)
	code, _, stderr = cliRunStdin(cfgB, "iso", "ignition", "embed", iso)
	if code != 1 || !strings.Contains(stderr, "-f") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("second embed: exit %d, stderr %q", code, stderr)
	}
	if fileDigest(t, iso) != before {
		t.Fatal("refused embed changed the ISO")
	}

	// -f replaces it; the config comes from standard input.
	if code, _, stderr := cliRunStdin(cfgB, "iso", "ignition", "embed", "--force", iso); code != 0 {
		t.Fatalf("embed -f: exit %d: %s", code, stderr)
	}
	if got := embeddedConfig(t, iso); !bytes.Equal(got, cfgB) {
		t.Fatalf("after -f config.ign = %q", got)
	}
	cliOnlyFile(t, dir, "work.iso")

	// -i - and -o -: standard input to standard output.
	code, stdout, stderr = cliRunStdin(cfgA, "iso", "ignition", "embed", "--ignition-file", "-", "-o", "-", base)
	if code != 0 || int64(len(stdout)) != fileSize(t, base) {
		t.Fatalf("embed to stdout: exit %d, %d bytes, stderr %q", code, len(stdout), stderr)
	}
	if _, err := os.Stat("-"); !os.IsNotExist(err) {
		t.Fatal("-o - created a file named -")
	}
	piped := writeTemp(t, "piped.iso", []byte(stdout))
	if got := embeddedConfig(t, piped); !bytes.Equal(got, cfgA) {
		t.Fatalf("streamed ISO holds %q", got)
	}
	if fileDigest(t, piped) != fileDigest(t, old) {
		t.Fatal("streamed ISO differs from the file output")
	}

	// --output=FILE leaves the input alone.
	out := filepath.Join(t.TempDir(), "out.iso")
	baseSum := fileDigest(t, base)
	mustRun(t, "iso", "ignition", "embed", "--output="+out, "-i", cfgFile, base)
	if fileDigest(t, base) != baseSum || fileDigest(t, out) != fileDigest(t, old) {
		t.Fatal("--output changed the input or wrote other bytes")
	}

	// remove zeroes the area: the base image again.
	mustRun(t, "iso", "ignition", "remove", iso)
	if fileDigest(t, iso) != baseSum {
		t.Fatal("ignition remove did not restore the base bytes")
	}
	code, stdout, stderr = cliRun("iso", "ignition", "show", iso)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "no embedded Ignition config") {
		t.Fatalf("show of a pristine ISO: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestISOServiceCustomized checks that what the service embeds is seen:
// an ISO written by the service's plan (customize.ISO) has its config
// shown, its kernel arguments read as defaults plus appended, and is
// refused by embed without -f.
func TestISOServiceCustomized(t *testing.T) {
	base, m := cliFixture(t, fixture.Options{})
	svc := serviceISO(t, base, cfgA, "console=ttyS0,115200n8", "rd.neednet=1")

	if got := mustRun(t, "iso", "ignition", "show", svc); got != string(cfgA) {
		t.Fatalf("show = %q", got)
	}
	want := m.KargsDefault + " console=ttyS0,115200n8 rd.neednet=1\n"
	if got := mustRun(t, "iso", "kargs", "show", svc); got != want {
		t.Fatalf("kargs show = %q, want %q", got, want)
	}
	if got := mustRun(t, "iso", "kargs", "show", "--default", svc); got != m.KargsDefault+"\n" {
		t.Fatalf("kargs show --default = %q", got)
	}
	if code, _, stderr := cliRunStdin(cfgB, "iso", "ignition", "embed", "-o", filepath.Join(t.TempDir(), "x.iso"), svc); code != 1 || !strings.Contains(stderr, "already has an embedded Ignition config") {
		t.Fatalf("embed on a service ISO: exit %d, %q", code, stderr)
	}
	// The older customize refuses to stack a second customization.
	out := filepath.Join(t.TempDir(), "again.iso")
	code, _, stderr := cliRun("customize", svc, "-o", out, "--ignition", writeTemp(t, "b.ign", cfgB), "--karg", "console=ttyS0,115200n8")
	if code != 1 || !strings.Contains(stderr, "already customized") {
		t.Fatalf("customize of a customized ISO: exit %d, %q", code, stderr)
	}
	// With -f the result is the new customization of the base, byte for byte.
	mustRun(t, "customize", "-f", svc, "-o", out, "--ignition", writeTemp(t, "b.ign", cfgB), "--karg", "console=ttyS0,115200n8")
	if fileDigest(t, out) != fileDigest(t, serviceISO(t, base, cfgB, "console=ttyS0,115200n8")) {
		t.Fatal("customize -f of a customized ISO is not the base customized once")
	}
	for _, cfg := range m.KargsFiles {
		if got := kernelLine(t, out, cfg); !strings.HasSuffix(got, m.KargsDefault+" console=ttyS0,115200n8") {
			t.Errorf("%s: kernel line %q", cfg, got)
		}
	}

	// inspect says what is embedded.
	text := mustRun(t, "inspect", svc)
	for _, s := range []string{
		"embedded ignition:  config.ign, " + strconv.Itoa(len(cfgA)) + " bytes",
		"current kargs:      " + strings.TrimSuffix(want, "\n"),
		"appended kargs:     console=ttyS0,115200n8 rd.neednet=1",
		"default kargs:      " + m.KargsDefault,
	} {
		if !strings.Contains(text, s) {
			t.Errorf("inspect lacks %q:\n%s", s, text)
		}
	}
}
