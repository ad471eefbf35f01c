package customize

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/customize/newc"
	"github.com/isoedge/isoedge/internal/fixture"
)

// gunzip decompresses with the external gzip tool.
func gunzip(t testing.TB, gz []byte) []byte {
	t.Helper()
	cmd := exec.Command("gzip", "-dc")
	cmd.Stdin = bytes.NewReader(gz)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		// exit status 2 with "trailing garbage ignored" is the NUL padding
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(errb.String(), "trailing garbage") {
			t.Fatalf("gzip -dc: %v\n%s", err, errb.Bytes())
		}
	}
	return out.Bytes()
}

// gzipMemberEnd returns the length of the gzip member at the start of b.
func gzipMemberEnd(t testing.TB, b []byte) int {
	t.Helper()
	r := bytes.NewReader(b)
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Fatal(err)
	}
	return len(b) - r.Len()
}

// cpioList returns the lines of the external `cpio -itv` listing of a raw
// (uncompressed) cpio archive.
func cpioList(t testing.TB, raw []byte) []string {
	t.Helper()
	cmd := exec.Command("cpio", "-itv", "--quiet")
	cmd.Stdin = bytes.NewReader(raw)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("cpio -itv: %v\n%s", err, errb.Bytes())
	}
	return strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
}

// listedName returns the name at the end of a `cpio -tv` line.
func listedName(line string) string {
	f := strings.Fields(line)
	return f[len(f)-1]
}

func TestIgnitionArchive(t *testing.T) {
	for _, cfg := range [][]byte{
		[]byte(`{"ignition":{"version":"3.2.0"}}`),
		[]byte("x"),
		[]byte("someignitioncontent"),
		fixture.PseudoRandom(5000, 9), // incompressible, odd length
	} {
		a, err := IgnitionArchive(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(a)%4 != 0 {
			t.Errorf("archive length %d is not a multiple of 4", len(a))
		}
		if !bytes.HasPrefix(a, []byte{0x1f, 0x8b, 0x08}) {
			t.Errorf("gzip header % x, want 1f 8b 08", a[:min(len(a), 10)])
		}
		// no name or other optional fields, mtime 0: the archive depends on the config only
		if a[3] != 0 || !bytes.Equal(a[4:8], []byte{0, 0, 0, 0}) {
			t.Errorf("gzip flags %#x mtime % x, want 0 and 0", a[3], a[4:8])
		}
		files := fixture.CpioFiles(t, a)
		if len(files) != 1 || !bytes.Equal(files["config.ign"], cfg) {
			t.Errorf("unpacked files %q, want only config.ign with the config", slices.Sorted(maps.Keys(files)))
		}
		list := cpioList(t, gunzip(t, a))
		if len(list) != 1 || listedName(list[0]) != "config.ign" || !strings.HasPrefix(list[0], "-rw-r--r--") {
			t.Errorf("cpio -itv = %q, want one -rw-r--r-- config.ign", list)
		}
		// The package's own reader agrees, member for member.
		ms, err := newc.ReadAll(bytes.NewReader(gunzip(t, a)), newc.Limits{})
		if err != nil || len(ms) != 1 || ms[0].Name != "config.ign" || ms[0].Mode != newc.TypeRegular|0o644 || !bytes.Equal(ms[0].Data, cfg) {
			t.Errorf("newc.ReadAll = %d members, %v", len(ms), err)
		}
		b, err := IgnitionArchive(cfg)
		if err != nil || !bytes.Equal(a, b) {
			t.Error("IgnitionArchive is not deterministic")
		}
	}
}

// TestIgnitionArchiveVector is the upstream test vector: the config
// "someignitioncontent" gives a cpio of 268 bytes (the gzip ISIZE).
func TestIgnitionArchiveVector(t *testing.T) {
	a, err := IgnitionArchive([]byte("someignitioncontent"))
	if err != nil {
		t.Fatal(err)
	}
	raw := gunzip(t, a)
	if len(raw) != 268 {
		t.Errorf("cpio is %d bytes, want 268", len(raw))
	}
	// ISIZE is the last 4 bytes of the gzip member; only NULs (fewer than
	// 4) follow it.
	end := gzipMemberEnd(t, a)
	if isize := binary.LittleEndian.Uint32(a[end-4 : end]); isize != 268 {
		t.Errorf("gzip ISIZE = %d, want 268", isize)
	}
	if pad := a[end:]; len(pad) > 3 || strings.Trim(string(pad), "\x00") != "" {
		t.Errorf("after the gzip member: % x, want fewer than 4 NULs", pad)
	}
	// The cpio itself: newc, config.ign then the trailer, nothing more.
	if !bytes.HasPrefix(raw, []byte("070701")) || !bytes.Contains(raw, []byte("config.ign\x00")) ||
		!bytes.Contains(raw, []byte("someignitioncontent")) || !bytes.Contains(raw, []byte("TRAILER!!!\x00")) {
		t.Errorf("unexpected cpio %q", raw)
	}
	if mode := string(raw[14:22]); mode != "000081A4" {
		t.Errorf("config.ign mode field %s, want 000081A4 (0100644)", mode)
	}
	if size := string(raw[54:62]); size != "00000013" {
		t.Errorf("config.ign size field %s, want 00000013", size)
	}
}

// TestArchiveGolden pins the exact bytes of archives built before the
// shared newc writer replaced the package's own: the ETag of every served
// image depends on its ignition archive, so a byte changed by a refactoring
// or a compressor update must fail here first.
func TestArchiveGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []ArchiveFile
		n     int
		sum   string
	}{
		{"vector", []ArchiveFile{{Name: "config.ign", Mode: 0o644, Data: []byte("someignitioncontent")}}, 108,
			"c8ce4b10c5c657d7bb59c7a433037434c1cac97d9ef3979866dccb86160dcfaf"},
		{"ignition 3.2.0", []ArchiveFile{{Name: "config.ign", Mode: 0o644, Data: []byte(`{"ignition":{"version":"3.2.0"}}`)}}, 116,
			"e8b94f8c8627caec4fd15d86d9d32f93108705c6b680199cfe8a35084baf38ec"},
		{"empty config", []ArchiveFile{{Name: "config.ign", Mode: 0o644}}, 80,
			"46a5e92afdff985de771d30695731d7ab6f9d09d7cd3003db5bb55cf5b0142d6"},
		{"nested", []ArchiveFile{
			{Name: "etc/x/y", Mode: 0o600, Data: []byte("y")},
			{Name: "/etc/x/z", Mode: 0o755, Data: []byte("zz")},
			{Name: "etc/w", Mode: 0o644, Data: []byte("www")},
			{Name: "top", Mode: 0o644},
		}, 176, "fdc0fd18a4a5b745d43950be7e5f2ffdd62e8bf46bdf724537b2b07302f59cfa"},
		{"no files", nil, 68, "9628d86b6b6a4bb56dbbe5a9409d353474149f9d18ac092dfd5deab2a879e0f3"},
	} {
		a, err := Archive(tc.files...)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(a); len(a) != tc.n || hex.EncodeToString(sum[:]) != tc.sum {
			t.Errorf("%s: %d bytes sha256 %x, want %d bytes sha256 %s", tc.name, len(a), sum, tc.n, tc.sum)
		}
	}
	a, err := IgnitionArchive([]byte("someignitioncontent"))
	if sum := sha256.Sum256(a); err != nil || hex.EncodeToString(sum[:]) != "c8ce4b10c5c657d7bb59c7a433037434c1cac97d9ef3979866dccb86160dcfaf" {
		t.Errorf("IgnitionArchive: sha256 %x, %v", sum, err)
	}
}

func TestArchiveEmptyConfig(t *testing.T) {
	a, err := IgnitionArchive(nil)
	if err != nil {
		t.Fatal(err)
	}
	files := fixture.CpioFiles(t, a)
	if c, ok := files["config.ign"]; !ok || len(c) != 0 || len(files) != 1 {
		t.Errorf("IgnitionArchive(nil) unpacked to %v", files)
	}
	a, err = Archive()
	if err != nil {
		t.Fatal(err)
	}
	if raw := gunzip(t, a); !bytes.Contains(raw, []byte("TRAILER!!!")) || len(raw) != 124 {
		t.Errorf("empty archive: cpio %q (%d bytes), want only the 124-byte trailer", raw, len(raw))
	}
}

func TestArchiveNestedNames(t *testing.T) {
	a, err := Archive(
		ArchiveFile{Name: "etc/x/y", Mode: 0o600, Data: []byte("y")},
		ArchiveFile{Name: "/etc/x/z", Mode: 0o755, Data: []byte("zz")},
		ArchiveFile{Name: "etc/w", Mode: 0o644, Data: []byte("www")},
		ArchiveFile{Name: "top", Mode: 0o644, Data: nil},
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(a)%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", len(a))
	}
	list := cpioList(t, gunzip(t, a))
	var names []string
	modes := map[string]string{}
	for _, l := range list {
		n := listedName(l)
		names = append(names, n)
		modes[n] = strings.Fields(l)[0]
	}
	want := []string{"etc", "etc/x", "etc/x/y", "etc/x/z", "etc/w", "top"}
	if !slices.Equal(names, want) {
		t.Errorf("cpio -t order = %q, want %q (each directory once, before its files)", names, want)
	}
	for n, m := range map[string]string{"etc": "drwxr-xr-x", "etc/x": "drwxr-xr-x", "etc/x/y": "-rw-------", "etc/x/z": "-rwxr-xr-x", "top": "-rw-r--r--"} {
		if modes[n] != m {
			t.Errorf("%s: mode %s, want %s", n, modes[n], m)
		}
	}
	files := fixture.CpioFiles(t, a)
	wantFiles := map[string]string{"etc/x/y": "y", "etc/x/z": "zz", "etc/w": "www", "top": ""}
	if len(files) != len(wantFiles) {
		t.Errorf("unpacked %d files, want %d", len(files), len(wantFiles))
	}
	for n, c := range wantFiles {
		if got, ok := files[n]; !ok || string(got) != c {
			t.Errorf("%s = %q (present %v), want %q", n, got, ok, c)
		}
	}
}

func TestArchiveBadNames(t *testing.T) {
	for _, name := range []string{"", "/", "../x", "a/../../x", "x/.."} {
		if _, err := Archive(ArchiveFile{Name: name, Mode: 0o644, Data: []byte("x")}); err == nil {
			t.Errorf("Archive accepted member name %q", name)
		}
	}
	if _, err := Archive(ArchiveFile{Name: "ok", Data: []byte("x")}, ArchiveFile{Name: "../x"}); err == nil {
		t.Error("Archive accepted a bad second member")
	}
}

// TestArchiveAfterInitrd appends the ignition archive to a live initrd, as
// the PXE initrd does, and unpacks the concatenation.
func TestArchiveAfterInitrd(t *testing.T) {
	initrd := fixture.DefaultInitrd(t, fixture.DefaultVolumeID)
	cfg := []byte(`{"ignition":{"version":"3.1.0"}}`)
	a, err := IgnitionArchive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := Archive(ArchiveFile{Name: "etc/assisted/network/host0/eth0.nmconnection", Mode: 0o600, Data: []byte("[connection]\n")})
	if err != nil {
		t.Fatal(err)
	}
	all := slices.Concat(initrd, a, extra)
	files := fixture.CpioFiles(t, all)
	want := map[string]string{
		"etc/coreos-live-initramfs": fixture.DefaultVolumeID + "\n",
		"config.ign":                string(cfg),
		"etc/assisted/network/host0/eth0.nmconnection": "[connection]\n",
	}
	if len(files) != len(want) {
		t.Errorf("unpacked %d files, want %d", len(files), len(want))
	}
	for n, c := range want {
		if string(files[n]) != c {
			t.Errorf("%s = %q, want %q", n, files[n], c)
		}
	}
}

func BenchmarkIgnitionArchive(b *testing.B) {
	cfg := bytes.Repeat([]byte(`{"ignition":{"version":"3.2.0"},"storage":{"files":[]}}`), 2048/52)
	b.ReportAllocs()
	b.SetBytes(int64(len(cfg)))
	for b.Loop() {
		if _, err := IgnitionArchive(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
