package customize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/internal/fixture"
)

const testBaseName = "sha256:base"

// runPlan executes p over f into a bytes.Buffer (an io.ReaderFrom, so base
// extents take the zero-copy path) and checks the reported length.
func runPlan(t testing.TB, p Plan, f *os.File) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := p.WriteTo(&buf, f)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != p.Size || int64(buf.Len()) != p.Size {
		t.Fatalf("WriteTo wrote %d (buffer %d), plan size %d", n, buf.Len(), p.Size)
	}
	return buf.Bytes()
}

// writeTemp writes b to a new file and returns its path.
func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// configLine returns the line of cfg that starts with prefix.
func configLine(t testing.TB, cfg []byte, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(string(cfg), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line starting with %q in\n%s", prefix, cfg)
	return ""
}

func TestISOPlan(t *testing.T) {
	iso, m, l, f := fixtureISO(t, fixture.Options{})
	base, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	cfg := []byte(`{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"core"}]}}`)
	ign, err := IgnitionArchive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ISO(l, testBaseName, Overlay{Ignition: ign, Kargs: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Size != int64(len(base)) || p.Size != l.Size {
		t.Fatalf("plan size %d, base %d", p.Size, len(base))
	}
	if p.Base != testBaseName {
		t.Errorf("plan base %q", p.Base)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	out := runPlan(t, p, f)

	// Byte by byte: the base, except the two kinds of area.
	if len(l.KargAreas) != 2 {
		t.Fatalf("fixture layout has %d karg areas", len(l.KargAreas))
	}
	changed := make([]bool, len(base))
	ia := l.Ignition
	if got := out[ia.Off : ia.Off+int64(len(ign))]; !bytes.Equal(got, ign) {
		t.Error("ignition area does not start with the archive")
	}
	if tail := out[ia.Off+int64(len(ign)) : ia.Off+ia.Len]; !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Error("ignition area after the archive is not zero")
	}
	for i := ia.Off; i < ia.Off+ia.Len; i++ {
		changed[i] = true
	}
	payload := []byte(" a b\n")
	for _, k := range l.KargAreas {
		if got := out[k.Off : k.Off+int64(len(payload))]; !bytes.Equal(got, payload) {
			t.Errorf("%s: area starts with %q, want %q", k.Path, got, payload)
		}
		if !bytes.Equal(out[k.Off+5:k.Off+k.Len], base[k.Off+5:k.Off+k.Len]) {
			t.Errorf("%s: rest of the karg area changed", k.Path)
		}
		for i := k.Off; i < k.Off+int64(len(payload)); i++ {
			changed[i] = true
		}
	}
	diffs := 0
	for i := range base {
		if !changed[i] && out[i] != base[i] {
			if diffs < 5 {
				t.Errorf("byte %d outside the areas changed: %#x → %#x", i, base[i], out[i])
			}
			diffs++
		}
	}
	if diffs > 0 {
		t.Errorf("%d bytes outside the areas changed", diffs)
	}

	// What an independent ISO reader sees in the output.
	outISO := writeTemp(t, "custom.iso", out)
	files := fixture.CpioFiles(t, fixture.ExtractFile(t, outISO, "images/ignition.img"))
	if len(files) != 1 || !bytes.Equal(files["config.ign"], cfg) {
		t.Errorf("ignition.img unpacks to %q", slices.Sorted(maps.Keys(files)))
	}
	grub := fixture.ExtractFile(t, outISO, "EFI/redhat/grub.cfg")
	if line := configLine(t, grub, "\tlinux "); line != "\tlinux /images/pxeboot/vmlinuz "+m.KargsDefault+" a b" {
		t.Errorf("grub linux line = %q, want it to end with %q", line, " a b")
	}
	if !bytes.Contains(grub, []byte("\n"+strings.Repeat("#", fixture.KargsEmbedPad-4)+" COREOS_KARG_EMBED_AREA\n")) {
		t.Errorf("grub marker line not shortened by 4 '#'s:\n%s", grub)
	}
	isolinux := fixture.ExtractFile(t, outISO, "isolinux/isolinux.cfg")
	if line := configLine(t, isolinux, "  append "); !strings.HasSuffix(line, m.KargsDefault+" a b") {
		t.Errorf("isolinux append line = %q, want it to end with %q", line, " a b")
	}

	// The output parses to the same files, with karg areas 4 bytes shorter.
	of, err := os.Open(outISO)
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	l2, err := ParseLayout(of)
	if err != nil {
		t.Fatalf("ParseLayout(customized): %v", err)
	}
	if !maps.Equal(l2.Files, l.Files) || l2.Ignition != l.Ignition {
		t.Error("customized ISO has a different file layout")
	}
	for i, k := range l2.KargAreas {
		want := l.KargAreas[i]
		want.Off += 4
		want.Len -= 4
		if k != want {
			t.Errorf("customized karg area %+v, want %+v", k, want)
		}
	}
}

// TestISOPlanZeroesOldConfig customizes an already customized image with a
// smaller archive: nothing of the earlier config may show through.
func TestISOPlanZeroesOldConfig(t *testing.T) {
	_, _, l, f := fixtureISO(t, fixture.Options{})
	big, err := IgnitionArchive(fixture.PseudoRandom(100<<10, 11))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ISO(l, testBaseName, Overlay{Ignition: big})
	if err != nil {
		t.Fatal(err)
	}
	first := writeTemp(t, "first.iso", runPlan(t, p, f))
	ff, err := os.Open(first)
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	l1, err := ParseLayout(ff)
	if err != nil {
		t.Fatal(err)
	}
	cfg := []byte(`{"ignition":{"version":"3.2.0"}}`)
	small, err := IgnitionArchive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := ISO(l1, "sha256:first", Overlay{Ignition: small})
	if err != nil {
		t.Fatal(err)
	}
	out := runPlan(t, p2, ff)
	a := l1.Ignition
	if !bytes.Equal(out[a.Off:a.Off+int64(len(small))], small) {
		t.Error("area does not start with the new archive")
	}
	if tail := out[a.Off+int64(len(small)) : a.Off+a.Len]; !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Error("the earlier archive shows through after the new one")
	}
	files := fixture.CpioFiles(t, fixture.ExtractFile(t, writeTemp(t, "second.iso", out), "images/ignition.img"))
	if len(files) != 1 || !bytes.Equal(files["config.ign"], cfg) {
		t.Errorf("ignition.img unpacks to %q", slices.Sorted(maps.Keys(files)))
	}
	// Identical to customizing the pristine image.
	p3, err := ISO(l, testBaseName, Overlay{Ignition: small})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(runPlan(t, p3, f), out) {
		t.Error("re-customized image differs from the pristine image customized once")
	}
}

func TestISOPlanNoOverlay(t *testing.T) {
	iso, _, l, f := fixtureISO(t, fixture.Options{})
	p, err := ISO(l, testBaseName, Overlay{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Segs) != 1 || p.Segs[0].Kind != FromBase || p.Segs[0].Off != 0 || p.Segs[0].Len != l.Size {
		t.Errorf("empty overlay plan = %+v, want one extent of the whole image", p.Segs)
	}
	base, _ := os.ReadFile(iso)
	if !bytes.Equal(runPlan(t, p, f), base) {
		t.Error("empty overlay changed the image")
	}
	// A non-nil empty ignition archive clears the area.
	p, err = ISO(l, testBaseName, Overlay{Ignition: []byte{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil || p.Size != l.Size {
		t.Errorf("empty archive plan: size %d, %v", p.Size, err)
	}
}

func TestISOPlanLimits(t *testing.T) {
	_, _, l, f := fixtureISO(t, fixture.Options{})
	area := l.Ignition.Len

	// An archive exactly the size of the area fits, with no zero fill.
	exact := bytes.Repeat([]byte{0xa5}, int(area))
	p, err := ISO(l, testBaseName, Overlay{Ignition: exact})
	if err != nil {
		t.Fatalf("archive of exactly the area size: %v", err)
	}
	for _, s := range p.Segs {
		if s.Kind == FromZero {
			t.Errorf("zero segment %+v with a full area", s)
		}
	}
	out := runPlan(t, p, f)
	if !bytes.Equal(out[l.Ignition.Off:l.Ignition.Off+area], exact) {
		t.Error("full-size archive not in the area")
	}

	_, err = ISO(l, testBaseName, Overlay{Ignition: make([]byte, area+1)})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("archive one byte too large: err = %v, want ErrTooLarge", err)
	} else if !strings.Contains(err.Error(), strconv.FormatInt(area, 10)) {
		t.Errorf("error %q does not name the area size %d", err, area)
	}

	// Kernel arguments: the payload " <args>\n" may fill the area exactly.
	kl := l.KargAreas[0].Len
	fit := strings.Repeat("k", int(kl)-2)
	if _, err := ISO(l, testBaseName, Overlay{Kargs: []string{fit}}); err != nil {
		t.Errorf("kargs of %d chars (area %d): %v", len(fit), kl, err)
	}
	_, err = ISO(l, testBaseName, Overlay{Kargs: []string{fit + "k"}})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("kargs of %d chars: err = %v, want ErrTooLarge", len(fit)+1, err)
	}
	_, err = ISO(l, testBaseName, Overlay{Kargs: []string{fit[:len(fit)/2], fit[:len(fit)/2]}})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("two kargs joined past the area: err = %v, want ErrTooLarge", err)
	}
}

func TestISOPlanMissingAreas(t *testing.T) {
	ign, err := IgnitionArchive([]byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, x86, _ := fixtureISO(t, fixture.Options{})
	_, _, s390x, _ := fixtureISO(t, fixture.Options{Arch: "s390x"})
	_, _, s390xNoIgn, _ := fixtureISO(t, fixture.Options{Arch: "s390x", NoIgnInfo: true})

	_, err = ISO(s390x, testBaseName, Overlay{Ignition: ign, Kargs: []string{"a"}})
	if !errors.Is(err, ErrNoEmbedArea) {
		t.Errorf("kargs on s390x: err = %v, want ErrNoEmbedArea", err)
	}
	_, err = ISO(x86, testBaseName, Overlay{Ramdisk: []byte("ramdisk")})
	if !errors.Is(err, ErrNoEmbedArea) {
		t.Errorf("ramdisk on a full ISO: err = %v, want ErrNoEmbedArea", err)
	}
	_, err = ISO(s390xNoIgn, testBaseName, Overlay{Ignition: ign})
	if !errors.Is(err, ErrNoEmbedArea) {
		t.Errorf("ignition on an image without an area: err = %v, want ErrNoEmbedArea", err)
	}
	// Kargs alone on an image without an ignition area are fine; an empty
	// kargs list on s390x is no request.
	if _, err := ISO(s390x, testBaseName, Overlay{Ignition: ign, Kargs: []string{}}); err != nil {
		t.Errorf("s390x ignition only: %v", err)
	}
}

// TestISOPlanS390x embeds ignition into the area inside images/cdboot.img.
func TestISOPlanS390x(t *testing.T) {
	_, m, l, f := fixtureISO(t, fixture.Options{Arch: "s390x"})
	cfg := []byte(`{"ignition":{"version":"3.2.0"},"s390x":true}`)
	ign, err := IgnitionArchive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ISO(l, testBaseName, Overlay{Ignition: ign})
	if err != nil {
		t.Fatal(err)
	}
	outISO := writeTemp(t, "s390x.iso", runPlan(t, p, f))
	cdboot := fixture.ExtractFile(t, outISO, "images/cdboot.img")
	want := bytes.Clone(m.Files["images/cdboot.img"])
	copy(want[m.IgnitionOffset:], ign)
	if !bytes.Equal(cdboot, want) {
		t.Error("cdboot.img is not the original with the archive at the ignition offset")
	}
	area := cdboot[m.IgnitionOffset : m.IgnitionOffset+m.IgnitionLength]
	if files := fixture.CpioFiles(t, area); !bytes.Equal(files["config.ign"], cfg) {
		t.Errorf("s390x area unpacks to %q", slices.Sorted(maps.Keys(files)))
	}
}

// TestISOPlanRamdisk uses a layout with a ramdisk area, as a minimal ISO has.
func TestISOPlanRamdisk(t *testing.T) {
	iso, _, l, f := fixtureISO(t, fixture.Options{})
	base, _ := os.ReadFile(iso)
	ml := *l
	ml.Files = maps.Clone(l.Files)
	ml.Files[PathCustomRamdisk] = l.Files[PathRootfs] // stands in for the 1 MiB area
	area := ml.Files[PathCustomRamdisk]
	ramdisk := fixture.CpioArchive(t, map[string][]byte{"etc/assisted/network/x": []byte("x")})
	ign, _ := IgnitionArchive([]byte("{}"))
	p, err := ISO(&ml, testBaseName, Overlay{Ignition: ign, Ramdisk: ramdisk, Kargs: []string{"r=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	out := runPlan(t, p, f)
	end := area.Off + int64(len(ramdisk))
	if !bytes.Equal(out[area.Off:end], ramdisk) {
		t.Error("ramdisk not at the start of its area")
	}
	if !bytes.Equal(out[end:area.Off+area.Len], base[end:area.Off+area.Len]) {
		t.Error("ramdisk area changed after the ramdisk")
	}
	if _, err := ISO(&ml, testBaseName, Overlay{Ramdisk: make([]byte, area.Len+1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ramdisk too large: err = %v, want ErrTooLarge", err)
	}
	if _, err := ISO(&ml, testBaseName, Overlay{Ramdisk: make([]byte, area.Len)}); err != nil {
		t.Errorf("ramdisk of exactly the area size: %v", err)
	}

	// Areas that overlap, or leave the image, are refused.
	bad := ml
	bad.Files = maps.Clone(ml.Files)
	bad.Files[PathCustomRamdisk] = Area{Off: l.Ignition.Off + 100, Len: 4096}
	if _, err := ISO(&bad, testBaseName, Overlay{Ignition: ign, Ramdisk: []byte("r")}); err == nil {
		t.Error("overlapping ignition and ramdisk areas accepted")
	}
	bad.Files[PathCustomRamdisk] = Area{Off: l.Size - 2, Len: 4096}
	if _, err := ISO(&bad, testBaseName, Overlay{Ramdisk: []byte("rrr")}); err == nil {
		t.Error("a ramdisk area past the end of the image accepted")
	}
}

func TestPXEInitrdPlan(t *testing.T) {
	iso, m, l, f := fixtureISO(t, fixture.Options{})
	cfg := []byte(`{"ignition":{"version":"3.2.0"},"pxe":1}`)
	ign, err := IgnitionArchive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The minimal-initrd is gzip without padding: strip the fixture's NULs.
	ramdisk := fixture.CpioArchive(t, map[string][]byte{
		"etc/assisted/network/host0/eth0.nmconnection": []byte("[connection]\nid=eth0\n"),
	})
	ramdisk = ramdisk[:gzipMemberEnd(t, ramdisk)]
	nmstate, err := Archive(ArchiveFile{Name: "usr/bin/nmstatectl", Mode: 0o755, Data: []byte("#!/bin/sh\n")})
	if err != nil {
		t.Fatal(err)
	}
	initrd := fixture.ExtractFile(t, iso, PathInitrd)

	p, err := PXEInitrd(l, testBaseName, ign, ramdisk)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	out := runPlan(t, p, f)
	if !bytes.Equal(out, slices.Concat(initrd, ign, ramdisk)) {
		t.Error("PXE initrd is not initrd ‖ archive ‖ ramdisk")
	}
	files := fixture.CpioFiles(t, out)
	want := map[string]string{
		"etc/coreos-live-initramfs": m.VolumeID + "\n",
		"config.ign":                string(cfg),
		"etc/assisted/network/host0/eth0.nmconnection": "[connection]\nid=eth0\n",
	}
	if !maps.Equal(stringMap(files), want) {
		t.Errorf("PXE initrd unpacks to %q, want %q", stringMap(files), want)
	}

	// With the nmstate archive after the unaligned ramdisk.
	p, err = PXEInitrd(l, testBaseName, ign, ramdisk, nmstate)
	if err != nil {
		t.Fatal(err)
	}
	out = runPlan(t, p, f)
	if !bytes.Equal(out, slices.Concat(initrd, ign, ramdisk, nmstate)) {
		t.Error("PXE initrd with extra is not initrd ‖ archive ‖ ramdisk ‖ extra")
	}
	want["usr/bin/nmstatectl"] = "#!/bin/sh\n"
	if got := stringMap(fixture.CpioFiles(t, out)); !maps.Equal(got, want) {
		t.Errorf("PXE initrd with extra unpacks to %q", got)
	}

	// No ramdisk.
	p, err = PXEInitrd(l, testBaseName, ign, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(runPlan(t, p, f), slices.Concat(initrd, ign)) {
		t.Error("PXE initrd without ramdisk is not initrd ‖ archive")
	}

	// The s390x addrsize of the composed initrd.
	_, _, s390x, _ := fixtureISO(t, fixture.Options{Arch: "s390x"})
	sp, err := PXEInitrd(s390x, testBaseName, ign, ramdisk)
	if err != nil {
		t.Fatal(err)
	}
	as, err := s390x.Addrsize(sp.Size)
	if err != nil || len(as) != 16 {
		t.Fatalf("Addrsize = % x, %v", as, err)
	}
	if !bytes.Equal(as[:8], []byte{0, 0, 0, 0, 0x02, 0, 0, 0}) || binary.BigEndian.Uint64(as[8:]) != uint64(sp.Size) {
		t.Errorf("Addrsize = % x for an initrd of %d bytes", as, sp.Size)
	}

	noInitrd := *l
	noInitrd.Files = withoutFile(l.Files, PathInitrd)
	if _, err := PXEInitrd(&noInitrd, testBaseName, ign, ramdisk); !errors.Is(err, ErrNoFile) {
		t.Errorf("PXEInitrd without initrd: err = %v, want ErrNoFile", err)
	}
}

func stringMap(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func TestArtifactPlan(t *testing.T) {
	cases := []struct {
		opt   fixture.Options
		paths []string
		miss  []string
	}{
		{fixture.Options{}, []string{PathVmlinuz, PathInitrd, PathRootfs, "EFI/redhat/grub.cfg"}, []string{PathGenericIns, PathKernelImg, PathAddrsize, "nope"}},
		{fixture.Options{Arch: "s390x", KernelName: "kernel.img"}, []string{PathKernelImg, PathInitrd, PathRootfs, PathGenericIns, PathAddrsize}, []string{PathVmlinuz}},
	}
	for _, tc := range cases {
		iso, _, l, f := fixtureISO(t, tc.opt)
		for _, p := range tc.paths {
			plan, err := Artifact(l, testBaseName, p)
			if err != nil {
				t.Errorf("%s %s: %v", tc.opt.Arch, p, err)
				continue
			}
			if err := plan.Validate(); err != nil {
				t.Error(err)
			}
			if !bytes.Equal(runPlan(t, plan, f), fixture.ExtractFile(t, iso, p)) {
				t.Errorf("%s %s: artifact differs from the extracted file", tc.opt.Arch, p)
			}
		}
		for _, p := range tc.miss {
			if _, err := Artifact(l, testBaseName, p); !errors.Is(err, ErrNoFile) {
				t.Errorf("%s %s: err = %v, want ErrNoFile", tc.opt.Arch, p, err)
			}
		}
	}
}

// TestISOPlanSlices checks Plan.Slice of a customized ISO at and around
// every segment boundary against the full output.
func TestISOPlanSlices(t *testing.T) {
	_, _, l, f := fixtureISO(t, fixture.Options{})
	ign, err := IgnitionArchive([]byte(`{"ignition":{"version":"3.2.0"}}`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ISO(l, testBaseName, Overlay{Ignition: ign, Kargs: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	full := runPlan(t, p, f)
	marks := []int64{0, p.Size}
	pos := int64(0)
	for _, s := range p.Segs {
		pos += s.Len
		marks = append(marks, pos)
	}
	marks = append(marks, l.Ignition.Off, l.Ignition.Off+l.Ignition.Len, 2048, 32768)
	for _, k := range l.KargAreas {
		marks = append(marks, k.Off, k.Off+k.Len)
	}
	checked := 0
	for _, m := range marks {
		for _, d := range []int64{-4097, -5, -1, 0, 1, 3, 5} {
			off := m + d
			if off < 0 || off > p.Size {
				continue
			}
			for _, n := range []int64{0, 1, 4, 5, 6, 1023, 4096, 70001, p.Size - off} {
				if n < 0 || off+n > p.Size {
					continue
				}
				s, err := p.Slice(off, n)
				if err != nil {
					t.Fatalf("Slice(%d, %d): %v", off, n, err)
				}
				if err := s.Validate(); err != nil || s.Size != n || s.Base != p.Base {
					t.Fatalf("Slice(%d, %d): size %d base %q: %v", off, n, s.Size, s.Base, err)
				}
				if got := runPlan(t, s, f); !bytes.Equal(got, full[off:off+n]) {
					t.Fatalf("Slice(%d, %d) output differs from the full output", off, n)
				}
				checked++
			}
		}
	}
	// The sequential reader agrees too.
	s, _ := p.Slice(l.Ignition.Off-3, int64(len(ign))+10)
	got, err := io.ReadAll(NewReader(s, f))
	if err != nil || !bytes.Equal(got, full[l.Ignition.Off-3:l.Ignition.Off+int64(len(ign))+7]) {
		t.Errorf("Reader over a slice: %v", err)
	}
	if checked < 200 {
		t.Errorf("only %d slices checked", checked)
	}
	if _, err := p.Slice(p.Size, 1); !errors.Is(err, ErrRange) {
		t.Errorf("slice past the end: err = %v, want ErrRange", err)
	}
}

func BenchmarkISOPlan(b *testing.B) {
	_, _, l, _ := fixtureISO(b, fixture.Options{})
	enc, _ := l.Encode()
	l, err := DecodeLayout(enc) // as loaded from the store
	if err != nil {
		b.Fatal(err)
	}
	ign, err := IgnitionArchive(fixture.PseudoRandom(2048, 12))
	if err != nil {
		b.Fatal(err)
	}
	o := Overlay{Ignition: ign, Kargs: []string{"ip=dhcp", "rd.neednet=1"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ISO(l, testBaseName, o); err != nil {
			b.Fatal(err)
		}
	}
}

// TestISOPlanAreaOutsideImage: ISO must refuse a layout whose areas lie
// outside the image, even when offset + length overflows.
func TestISOPlanAreaOutsideImage(t *testing.T) {
	ign := []byte("archive!")
	for _, a := range []Area{
		{Off: 1 << 20, Len: 4096},     // starts past the end
		{Off: 1<<20 - 100, Len: 4096}, // ends past the end
		{Off: 1 << 62, Len: 1 << 62},  // the end overflows int64
		{Off: 1<<63 - 8, Len: 4096},   // the end overflows int64
	} {
		l := &Layout{Size: 1 << 20, Ignition: a, IgnitionFile: PathIgnition}
		p, err := ISO(l, testBaseName, Overlay{Ignition: ign})
		if err == nil {
			t.Errorf("ignition area %+v of a 1 MiB image accepted: plan size %d, segments %+v, Validate: %v", a, p.Size, p.Segs, p.Validate())
		}
		// Only the payload is written in a karg area: an area that merely
		// ends past the image is usable.
		kl := &Layout{Size: 1 << 20, KargAreas: []KargArea{{Path: "x.cfg", Area: a}}}
		p, err = ISO(kl, testBaseName, Overlay{Kargs: []string{"a"}})
		if a.Off >= kl.Size && err == nil {
			t.Errorf("karg area %+v of a 1 MiB image accepted: plan size %d, Validate: %v", a, p.Size, p.Validate())
		}
	}
}

func TestISORejectsKargsThatBreakTheCommandLine(t *testing.T) {
	l := &Layout{Size: 4096, KargAreas: []KargArea{{Path: "EFI/redhat/grub.cfg", Area: Area{Off: 100, Len: 1024}}}}
	for _, k := range []string{"a\nmenuentry evil {", "x\ry", "nul\x00", "", "   ", "tab\there", `x="unterminated`, "x=1;linux /evil", `rd.x="a b"`} {
		if _, err := ISO(l, "b", Overlay{Kargs: []string{"ok=1", k}}); !errors.Is(err, ErrBadKarg) {
			t.Errorf("karg %q: err = %v, want ErrBadKarg", k, err)
		}
	}
	// A bad argument is named even when the image could not take any.
	if _, err := ISO(&Layout{Size: 4096, KargsProblem: "none"}, "b", Overlay{Kargs: []string{"a;b"}}); !errors.Is(err, ErrBadKarg) {
		t.Errorf("bad karg on an image without areas: err = %v, want ErrBadKarg", err)
	}
	if _, err := ISO(l, "b", Overlay{Kargs: []string{"console=ttyS0,115200n8", "ip=dhcp", "a=b,c", "x=1:2/3"}}); err != nil {
		t.Fatalf("ordinary kargs refused: %v", err)
	}
}
