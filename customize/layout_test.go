package customize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/internal/fixture"
)

// fixtureISO builds a fixture ISO and parses it, returning the ISO path,
// its manifest, its layout and the open file.
func fixtureISO(t testing.TB, opt fixture.Options) (string, fixture.Manifest, *Layout, *os.File) {
	t.Helper()
	iso, m := fixture.Build(t, t.TempDir(), opt)
	f, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	l, err := ParseLayout(f)
	if err != nil {
		t.Fatalf("ParseLayout(%s): %v", filepath.Base(iso), err)
	}
	return iso, m, l, f
}

// readArea returns the bytes of a of f.
func readArea(t testing.TB, f *os.File, a Area) []byte {
	t.Helper()
	b := make([]byte, a.Len)
	if _, err := f.ReadAt(b, a.Off); err != nil {
		t.Fatalf("read %d+%d: %v", a.Off, a.Len, err)
	}
	return b
}

// embedAreaIn locates, in a boot config's text, the newline that ends the
// kernel-args line and the run of '#' up to (not including) the last '#'
// before " COREOS_KARG_EMBED_AREA". It works by scanning, not by regexp.
func embedAreaIn(t testing.TB, cfg []byte) (off, n int64) {
	t.Helper()
	i := bytes.LastIndex(cfg, []byte(" COREOS_KARG_EMBED_AREA"))
	if i < 2 || cfg[i-1] != '#' {
		t.Fatalf("no marker line in config:\n%s", cfg)
	}
	last := i - 1 // the '#' that stays
	j := last
	for j > 0 && cfg[j-1] == '#' {
		j--
	}
	if j == 0 || cfg[j-1] != '\n' {
		t.Fatalf("marker line does not start a line:\n%s", cfg)
	}
	start := j - 1
	return int64(start), int64(last - start)
}

var layoutCases = []struct {
	name string
	opt  fixture.Options
}{
	{"x86_64", fixture.Options{Arch: "x86_64"}},
	{"aarch64", fixture.Options{Arch: "aarch64"}},
	{"ppc64le", fixture.Options{Arch: "ppc64le"}},
	{"s390x", fixture.Options{Arch: "s390x"}},
	{"s390x-kernel.img", fixture.Options{Arch: "s390x", KernelName: "kernel.img"}},
	{"x86_64-NoIgnInfo", fixture.Options{Arch: "x86_64", NoIgnInfo: true}},
	{"x86_64-NoKargsJSON", fixture.Options{Arch: "x86_64", NoKargsJSON: true}},
	{"aarch64-NoKargsJSON", fixture.Options{Arch: "aarch64", NoKargsJSON: true}},
	{"ppc64le-NoKargsJSON", fixture.Options{Arch: "ppc64le", NoKargsJSON: true}},
	{"s390x-NoIgnInfo", fixture.Options{Arch: "s390x", NoIgnInfo: true}},
	{"fcos-volid", fixture.Options{Arch: "x86_64", VolumeID: "fedora-coreos-35.20220103.3.0"}},
}

func TestParseLayoutFixtures(t *testing.T) {
	for _, tc := range layoutCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			iso, m, l, f := fixtureISO(t, tc.opt)
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if l.Size != st.Size() {
				t.Errorf("Size = %d, want %d", l.Size, st.Size())
			}
			if l.VolumeID != m.VolumeID {
				t.Errorf("VolumeID = %q, want %q", l.VolumeID, m.VolumeID)
			}

			// Files: exactly the regular files written, at the extents
			// xorriso reports, holding the bytes xorriso extracts.
			got := slices.Sorted(maps.Keys(l.Files))
			want := slices.Sorted(maps.Keys(m.Sizes))
			if !slices.Equal(got, want) {
				t.Errorf("Files = %q\nwant    %q", got, want)
			}
			for _, p := range want {
				a, ok := l.Files[p]
				if !ok {
					continue
				}
				off, size := fixture.ISOOffset(t, iso, p)
				if a != (Area{Off: off, Len: size}) {
					t.Errorf("%s: extent %+v, xorriso says %d+%d", p, a, off, size)
					continue
				}
				if ext := fixture.ExtractFile(t, iso, p); !bytes.Equal(readArea(t, f, a), ext) {
					t.Errorf("%s: bytes at %+v differ from the extracted file", p, a)
				}
				if c, ok := m.Files[p]; ok && !bytes.Equal(readArea(t, f, a), c) {
					t.Errorf("%s: bytes at %+v differ from the content written", p, a)
				}
			}

			// Ignition area.
			if m.IgnitionFile == "" {
				if l.Ignition.Len != 0 {
					t.Errorf("Ignition = %+v, want no area", l.Ignition)
				}
			} else {
				off, _ := fixture.ISOOffset(t, iso, m.IgnitionFile)
				wantIgn := Area{Off: off + m.IgnitionOffset, Len: m.IgnitionLength}
				if l.Ignition != wantIgn || l.IgnitionFile != m.IgnitionFile {
					t.Errorf("Ignition = %s %+v, want %s %+v", l.IgnitionFile, l.Ignition, m.IgnitionFile, wantIgn)
				}
				if l.Ignition.Len != fixture.IgnitionAreaSize {
					t.Errorf("Ignition length %d, want %d", l.Ignition.Len, fixture.IgnitionAreaSize)
				}
				if !bytes.Equal(readArea(t, f, l.Ignition), make([]byte, l.Ignition.Len)) {
					t.Error("pristine ignition area is not all zero")
				}
			}
			if tc.opt.Arch == "s390x" && m.IgnitionFile != "" && m.IgnitionFile != "images/cdboot.img" {
				t.Fatalf("fixture: s390x ignition file %s", m.IgnitionFile)
			}

			// Kernel argument areas.
			wantKargFiles := m.KargsFiles
			if tc.opt.NoKargsJSON {
				wantKargFiles = nil
				for _, p := range []string{"EFI/redhat/grub.cfg", "isolinux/isolinux.cfg"} {
					if _, ok := m.Files[p]; ok {
						wantKargFiles = append(wantKargFiles, p)
					}
				}
			}
			var wantAreas []KargArea
			for _, p := range wantKargFiles {
				cfg := fixture.ExtractFile(t, iso, p)
				rel, n := embedAreaIn(t, cfg)
				fileOff, _ := fixture.ISOOffset(t, iso, p)
				wantAreas = append(wantAreas, KargArea{Path: p, Area: Area{Off: fileOff + rel, Len: n}})
				if n != fixture.KargsEmbedPad {
					t.Errorf("%s: independent area length %d, want %d", p, n, fixture.KargsEmbedPad)
				}
			}
			if !reflect.DeepEqual(l.KargAreas, wantAreas) {
				t.Errorf("KargAreas = %+v\nwant        %+v", l.KargAreas, wantAreas)
			}
			if (len(wantAreas) == 0) != (l.KargsProblem != "") {
				t.Errorf("KargsProblem = %q with %d areas", l.KargsProblem, len(l.KargAreas))
			}
			for _, k := range l.KargAreas {
				b := readArea(t, f, k.Area)
				if b[0] != '\n' || strings.Trim(string(b[1:]), "#") != "" {
					t.Errorf("%s: area bytes %q are not newline + '#'s", k.Path, b[:min(len(b), 16)])
				}
			}
			wantDefault := m.KargsDefault
			if tc.opt.NoKargsJSON {
				wantDefault = ""
			}
			if l.KargsDefault != wantDefault {
				t.Errorf("KargsDefault = %q, want %q", l.KargsDefault, wantDefault)
			}

			// s390x addrsize.
			if tc.opt.Arch == "s390x" {
				as := fixture.ExtractFile(t, iso, PathAddrsize)
				if !bytes.Equal(l.AddrsizeHead, as[:8]) {
					t.Errorf("AddrsizeHead = % x, want % x", l.AddrsizeHead, as[:8])
				}
				got, err := l.Addrsize(0x1234567)
				want := append(bytes.Clone(as[:8]), 0, 0, 0, 0, 0x01, 0x23, 0x45, 0x67)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("Addrsize = % x, %v; want % x", got, err, want)
				}
			} else {
				if l.AddrsizeHead != nil {
					t.Errorf("AddrsizeHead = % x on %s", l.AddrsizeHead, tc.opt.Arch)
				}
				if _, err := l.Addrsize(1); !errors.Is(err, ErrNoFile) {
					t.Errorf("Addrsize without initrd.addrsize: err = %v, want ErrNoFile", err)
				}
			}

			// Kernel, with the s390x kernel.img fallback.
			kname := "images/pxeboot/vmlinuz"
			if tc.opt.KernelName == "kernel.img" {
				kname = PathKernelImg
			}
			k, err := l.Kernel()
			if err != nil || k != l.Files[kname] {
				t.Errorf("Kernel() = %+v, %v; want %s %+v", k, err, kname, l.Files[kname])
			}
			if err := l.Check(m.Sizes[PathRootfs], m.Sizes[kname]); err != nil {
				t.Errorf("Check with the exact sizes: %v", err)
			}

			// Stored form.
			enc, err := l.Encode()
			if err != nil {
				t.Fatal(err)
			}
			dec, err := DecodeLayout(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dec, l) {
				t.Errorf("DecodeLayout(Encode()) = %+v\nwant %+v", dec, l)
			}
		})
	}
}

func TestDecodeLayoutRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "{", "[]", `{"size":"x"}`} {
		if _, err := DecodeLayout([]byte(in)); err == nil {
			t.Errorf("DecodeLayout(%q) accepted", in)
		}
	}
}

func TestLayoutFileMissing(t *testing.T) {
	l := &Layout{Files: map[string]Area{"a": {Off: 2048, Len: 5}}}
	if a, err := l.File("a"); err != nil || a != (Area{2048, 5}) {
		t.Errorf("File(a) = %+v, %v", a, err)
	}
	if _, err := l.File("b"); !errors.Is(err, ErrNoFile) {
		t.Errorf("File(b): err = %v, want ErrNoFile", err)
	}
	if _, err := l.Kernel(); !errors.Is(err, ErrNoFile) {
		t.Errorf("Kernel() without kernel: err = %v, want ErrNoFile", err)
	}
}

func TestLayoutCheck(t *testing.T) {
	_, m, l, _ := fixtureISO(t, fixture.Options{})
	rootfs, kernel := m.Sizes[PathRootfs], m.Sizes[PathVmlinuz]
	if rootfs != 128<<10 || kernel != 64<<10 {
		t.Fatalf("fixture sizes rootfs %d kernel %d", rootfs, kernel)
	}
	with := func(vid string) *Layout {
		c := *l
		c.VolumeID = vid
		return &c
	}
	for _, vid := range []string{"rhcos-417.94.202501010000-0", "fedora-coreos-35.20220103.3.0", "scos-413.9.202302280609-0", "rhcos-"} {
		if err := with(vid).Check(rootfs, kernel); err != nil {
			t.Errorf("Check(volume id %q): %v", vid, err)
		}
	}
	for _, vid := range []string{"bogus-1", "", "RHCOS-417", "fedora-35", "xrhcos-1"} {
		err := with(vid).Check(1, 1)
		if !errors.Is(err, ErrBadImage) {
			t.Errorf("Check(volume id %q): err = %v, want ErrBadImage", vid, err)
		} else if !strings.Contains(err.Error(), vid) {
			t.Errorf("Check(volume id %q): message %q does not name it", vid, err)
		}
	}
	if err := l.Check(0, 0); err != nil {
		t.Errorf("Check(0, 0): %v", err)
	}
	if err := l.Check(rootfs+1, kernel); !errors.Is(err, ErrBadImage) {
		t.Errorf("Check with rootfs 1 byte short: err = %v, want ErrBadImage", err)
	}
	if err := l.Check(rootfs, kernel+1); !errors.Is(err, ErrBadImage) {
		t.Errorf("Check with kernel 1 byte short: err = %v, want ErrBadImage", err)
	}
	noRootfs := *l
	noRootfs.Files = withoutFile(l.Files, PathRootfs)
	if err := noRootfs.Check(0, 0); !errors.Is(err, ErrBadImage) {
		t.Errorf("Check without rootfs: err = %v, want ErrBadImage", err)
	}
	noKernel := *l
	noKernel.Files = withoutFile(l.Files, PathVmlinuz)
	if err := noKernel.Check(0, 0); !errors.Is(err, ErrBadImage) {
		t.Errorf("Check without kernel: err = %v, want ErrBadImage", err)
	}

	// A real image with a bogus volume id parses, then fails Check.
	_, _, bogus, _ := fixtureISO(t, fixture.Options{VolumeID: "bogus-1"})
	if bogus.VolumeID != "bogus-1" {
		t.Fatalf("VolumeID = %q", bogus.VolumeID)
	}
	if err := bogus.Check(0, 0); !errors.Is(err, ErrBadImage) {
		t.Errorf("Check(bogus-1 image): err = %v, want ErrBadImage", err)
	}
}

// withoutFile returns a copy of m without key del.
func withoutFile(m map[string]Area, del string) map[string]Area {
	out := make(map[string]Area, len(m))
	for k, v := range m {
		if k != del {
			out[k] = v
		}
	}
	return out
}

// parseBytes writes b to a file and parses it.
func parseBytes(t testing.TB, dir string, b []byte) (*Layout, error) {
	t.Helper()
	p := filepath.Join(dir, "in.iso")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ParseLayout(f)
}

func TestParseLayoutCorrupt(t *testing.T) {
	iso, _ := fixture.Build(t, t.TempDir(), fixture.Options{})
	good, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	const pvd = 16 * 2048
	const rootRecord = pvd + 156
	if good[pvd] != 1 || string(good[pvd+1:pvd+6]) != "CD001" || good[rootRecord] != 34 {
		t.Fatalf("fixture has no PVD with a root directory record at %d", rootRecord)
	}
	flip := func(off int, x byte) []byte {
		b := bytes.Clone(good)
		b[off] ^= x
		return b
	}
	cases := map[string][]byte{
		"random bytes":    fixture.PseudoRandom(256<<10, 77),
		"first 40 KiB":    good[:40<<10],
		"zero length":     {},
		"tiny":            []byte("CD001"),
		"zeros":           make([]byte, 64<<10),
		"no PVD magic":    flip(pvd+1, 0x20),
		"root extent far": flip(rootRecord+2+3, 0x40), // LE location high byte: sector 2^30+
		// the root directory's length: its extent reaches past the end of the file
		"root length past EOF": flip(rootRecord+10+3, 0x40),
		// the root directory's length 2048 → 2049: one byte more than its sector
		"root length 2049": flip(rootRecord+10, 0x01),
		// the root directory's length 2048 → 2304
		"root length 2304": flip(rootRecord+11, 0x01),
		// the root record's identifier length 1 → 254, past the 34-byte record
		"root identifier length": flip(rootRecord+32, 0xff),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			l, err := safeParse(t, t.TempDir(), b)
			if err == nil {
				t.Fatalf("ParseLayout accepted a corrupt image: %+v", l)
			}
			if l != nil {
				t.Errorf("ParseLayout returned a layout with error %v", err)
			}
		})
	}
}

// safeParse is parseBytes that turns a panic into a test error.
func safeParse(t testing.TB, dir string, b []byte) (l *Layout, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("ParseLayout panicked: %v", r)
			l, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return parseBytes(t, dir, b)
}

// isoFromTree masters an ISO of files (ISO path → content) with the
// external xorriso, for metadata the fixture cannot express.
func isoFromTree(t testing.TB, files map[string][]byte) string {
	t.Helper()
	stage := t.TempDir()
	for p, b := range files {
		full := filepath.Join(stage, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "tree.iso")
	cmd := exec.Command("xorriso", "-as", "mkisofs", "-R", "-J", "-joliet-long", "-V", fixture.DefaultVolumeID, "-o", out, stage)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, b)
	}
	return out
}

// TestParseLayoutEmbedMetadata varies coreos/igninfo.json and
// coreos/kargs.json of an otherwise default x86_64 image.
func TestParseLayoutEmbedMetadata(t *testing.T) {
	_, m := fixture.Build(t, t.TempDir(), fixture.Options{})
	const ignSize = fixture.IgnitionAreaSize
	type want struct {
		err       bool
		ign       Area // relative to images/ignition.img (or Off -1: no area)
		kargAreas int
	}
	cases := []struct {
		name string
		edit map[string]string // path → new content ("" deletes)
		want want
	}{
		{"default", nil, want{ign: Area{0, ignSize}, kargAreas: 2}},
		{"igninfo offset only", map[string]string{PathIgnInfo: `{"file":"images/ignition.img","offset":4096}`}, want{ign: Area{4096, ignSize - 4096}, kargAreas: 2}},
		{"igninfo offset and length", map[string]string{PathIgnInfo: `{"file":"/images/ignition.img","offset":4096,"length":8192}`}, want{ign: Area{4096, 8192}, kargAreas: 2}},
		{"igninfo area to the end", map[string]string{PathIgnInfo: `{"file":"images/ignition.img","offset":1,"length":262143}`}, want{ign: Area{1, ignSize - 1}, kargAreas: 2}},
		{"igninfo area past the end", map[string]string{PathIgnInfo: `{"file":"images/ignition.img","offset":1,"length":262144}`}, want{err: true}},
		{"igninfo offset past the end", map[string]string{PathIgnInfo: `{"file":"images/ignition.img","offset":262145}`}, want{err: true}},
		{"igninfo negative offset", map[string]string{PathIgnInfo: `{"file":"images/ignition.img","offset":-1,"length":10}`}, want{err: true}},
		{"igninfo negative length", map[string]string{PathIgnInfo: `{"file":"images/ignition.img","length":-10}`}, want{err: true}},
		// offset + length overflows int64 and wraps negative
		{"igninfo offset+length overflow", map[string]string{PathIgnInfo: `{"file":"images/ignition.img","offset":4611686018427387904,"length":4611686018427387904}`}, want{err: true}},
		{"igninfo malformed", map[string]string{PathIgnInfo: `{"file":`}, want{err: true}},
		// Only the ignition image (or s390x cdboot.img) may hold the area:
		// anything else would be corrupted by every request.
		{"igninfo names another file", map[string]string{PathIgnInfo: `{"file":"images/nope.img"}`}, want{err: true}},
		{"igninfo names the kernel", map[string]string{PathIgnInfo: `{"file":"images/pxeboot/vmlinuz"}`}, want{err: true}},
		{"igninfo names a boot config", map[string]string{PathIgnInfo: `{"file":"EFI/redhat/grub.cfg","offset":0,"length":10}`}, want{err: true}},
		{"igninfo names kargs.json", map[string]string{PathIgnInfo: `{"file":"/coreos/../coreos/kargs.json"}`}, want{err: true}},
		{"igninfo names an absent cdboot.img", map[string]string{PathIgnInfo: `{"file":"images/cdboot.img"}`}, want{ign: Area{-1, 0}, kargAreas: 2}},
		{"kargs.json lists a file twice", map[string]string{PathKargsJSON: `{"default":"x","files":[{"path":"EFI/redhat/grub.cfg"},{"path":"isolinux/isolinux.cfg"},{"path":"EFI/redhat/grub.cfg"}],"size":1029}`}, want{err: true}},
		{"kargs.json lists a file twice, spelled apart", map[string]string{PathKargsJSON: `{"default":"x","files":[{"path":"EFI/redhat/grub.cfg"},{"path":"/EFI//redhat/./grub.cfg"}],"size":1029}`}, want{err: true}},
		{"kargs.json malformed", map[string]string{PathKargsJSON: `{"files":[`}, want{ign: Area{0, ignSize}}},
		{"kargs.json names a missing file", map[string]string{PathKargsJSON: `{"default":"x","files":[{"path":"EFI/redhat/grub.cfg"},{"path":"nope.cfg"}],"size":1029}`}, want{ign: Area{0, ignSize}}},
		{"kargs.json names a file without marker", map[string]string{PathKargsJSON: `{"default":"x","files":[{"path":"coreos/features.json"}],"size":1029}`}, want{ign: Area{0, ignSize}}},
		{"kargs.json lists no files", map[string]string{PathKargsJSON: `{"default":"x","files":[],"size":1029}`}, want{ign: Area{0, ignSize}}},
		{"kargs.json with a leading slash", map[string]string{PathKargsJSON: `{"default":"x","files":[{"path":"/isolinux/isolinux.cfg"}],"size":1029}`}, want{ign: Area{0, ignSize}, kargAreas: 1}},
		{"no marker in grub.cfg", map[string]string{PathKargsJSON: "", "EFI/redhat/grub.cfg": "set timeout=5\n"}, want{ign: Area{0, ignSize}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := maps.Clone(m.Files)
			for p, c := range tc.edit {
				if c == "" {
					delete(files, p)
				} else {
					files[p] = []byte(c)
				}
			}
			iso := isoFromTree(t, files)
			b, err := os.ReadFile(iso)
			if err != nil {
				t.Fatal(err)
			}
			l, err := safeParse(t, t.TempDir(), b)
			if tc.want.err {
				if err == nil {
					t.Fatalf("ParseLayout accepted it: ignition %+v", l.Ignition)
				}
				if !errors.Is(err, ErrBadImage) {
					t.Errorf("err = %v, want ErrBadImage", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkLayoutBounds(t, l, int64(len(b)))
			wantIgn := Area{}
			if tc.want.ign.Off >= 0 {
				off, _ := fixture.ISOOffset(t, iso, PathIgnition)
				wantIgn = Area{Off: off + tc.want.ign.Off, Len: tc.want.ign.Len}
			}
			if l.Ignition != wantIgn {
				t.Errorf("Ignition = %+v, want %+v", l.Ignition, wantIgn)
			}
			if len(l.KargAreas) != tc.want.kargAreas || (tc.want.kargAreas == 0) != (l.KargsProblem != "") {
				t.Errorf("%d karg areas, problem %q; want %d", len(l.KargAreas), l.KargsProblem, tc.want.kargAreas)
			}
		})
	}
}

// TestParseLayoutBoundedMemory: ParseLayout reads metadata only, so a
// corrupt size field must not make it allocate gigabytes.
func TestParseLayoutBoundedMemory(t *testing.T) {
	iso, _ := fixture.Build(t, t.TempDir(), fixture.Options{KernelSize: 64, RootfsSize: 1024})
	good, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	const pvd = 16 * 2048
	// Setting bit 28 of a LE u32 size field adds 256 MiB to it; the
	// fields go up to 4 GiB.
	cases := map[string]int{
		"root directory length +256 MiB": pvd + 156 + 10 + 3, // LE data length, high byte
		"path table size +256 MiB":       pvd + 132 + 3,      // LE path table size, high byte
	}
	dir := t.TempDir()
	for name, off := range cases {
		b := bytes.Clone(good)
		b[off] ^= 0x10
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l, err := safeParse(t, dir, b)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: accepted: %+v", name, l)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
			t.Errorf("%s: ParseLayout allocated %d MiB for a %d KiB image", name, n>>20, len(b)>>10)
		}
	}
}

// TestParseLayoutRootRecordFlips flips, one at a time, every byte of the
// primary volume descriptor's root directory record: ParseLayout must
// either fail or return a layout whose extents lie inside the file.
func TestParseLayoutRootRecordFlips(t *testing.T) {
	iso, _ := fixture.Build(t, t.TempDir(), fixture.Options{KernelSize: 64, RootfsSize: 1024})
	good, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	const rootRecord = 16*2048 + 156
	dir := t.TempDir()
	for i := range 34 {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(good)
			b[rootRecord+i] ^= x
			t.Run(fmt.Sprintf("byte%d^%#x", i, x), func(t *testing.T) {
				if l, err := safeParse(t, dir, b); err == nil {
					checkLayoutBounds(t, l, int64(len(b)))
				}
			})
		}
	}
}

// checkLayoutBounds checks that every extent of an accepted layout lies
// inside a file of the given size.
func checkLayoutBounds(t testing.TB, l *Layout, size int64) {
	t.Helper()
	in := func(what string, a Area) {
		if a.Off < 0 || a.Len < 0 || a.Off+a.Len > size {
			t.Errorf("%s %+v outside a %d-byte file", what, a, size)
		}
	}
	if l.Size != size {
		t.Errorf("Size = %d, want %d", l.Size, size)
	}
	for p, a := range l.Files {
		in(p, a)
	}
	in("ignition area", l.Ignition)
	for _, k := range l.KargAreas {
		in("karg area in "+k.Path, k.Area)
	}
}

func FuzzParseLayout(f *testing.F) {
	iso, _ := fixture.Build(f, f.TempDir(), fixture.Options{KernelSize: 16, RootfsSize: 512, Initrd: []byte("initrd")})
	seed, err := os.ReadFile(iso)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	iso, _ = fixture.Build(f, f.TempDir(), fixture.Options{Arch: "s390x", KernelSize: 16, RootfsSize: 512, Initrd: []byte("initrd")})
	if seed, err = os.ReadFile(iso); err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{})
	for _, c := range craftedISOs {
		f.Add(c.make())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// In memory: a file per input would make the fuzzer disk-bound.
		l, err := parseLayout(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if l != nil {
				t.Errorf("layout returned with error %v", err)
			}
			if !errors.Is(err, ErrBadImage) {
				t.Errorf("error %v does not wrap ErrBadImage", err)
			}
			return
		}
		// An accepted layout passes the ingest checks of its areas.
		if err := l.checkAreas(); err != nil {
			t.Errorf("accepted layout fails checkAreas: %v", err)
		}
		checkLayoutBounds(t, l, int64(len(b)))
	})
}

// patchRecord points the primary-volume directory record of the ISO 9660
// name isoName (e.g. "IGNITION.IMG;1") at lba and sets its length, in
// place. xorriso writes each such name once.
func patchRecord(t testing.TB, img []byte, isoName string, lba, length uint32) {
	t.Helper()
	needle := append([]byte{byte(len(isoName))}, isoName...)
	i := bytes.Index(img, needle)
	if i < 32 || bytes.Count(img, needle) != 1 {
		t.Fatalf("record %q: found %d times", isoName, bytes.Count(img, needle))
	}
	rec := img[i-32:]
	binary.LittleEndian.PutUint32(rec[2:], lba)
	binary.BigEndian.PutUint32(rec[6:], lba)
	binary.LittleEndian.PutUint32(rec[10:], length)
	binary.BigEndian.PutUint32(rec[14:], length)
}

// TestParseLayoutRejectsOverlaps: an embed area that shares bytes with
// another file, another area or the ISO's own metadata would corrupt it
// on every request.
func TestParseLayoutRejectsOverlaps(t *testing.T) {
	iso, _ := fixture.Build(t, t.TempDir(), fixture.Options{})
	good, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	kernelOff, _ := fixture.ISOOffset(t, iso, PathVmlinuz)
	grubOff, grubLen := fixture.ISOOffset(t, iso, "EFI/redhat/grub.cfg")
	cases := []struct {
		name string
		edit func([]byte)
		want string
	}{
		{"ignition image over the kernel", func(b []byte) {
			patchRecord(t, b, "IGNITION.IMG;1", uint32(kernelOff/sectorSize), fixture.IgnitionAreaSize)
		}, "ignition area in images/ignition.img overlaps"},
		{"isolinux.cfg over grub.cfg", func(b []byte) {
			patchRecord(t, b, "ISOLINUX.CFG;1", uint32(grubOff/sectorSize), uint32(grubLen))
		}, "kernel argument area in EFI/redhat/grub.cfg overlaps isolinux/isolinux.cfg"},
		{"ignition image over the volume descriptors", func(b []byte) {
			patchRecord(t, b, "IGNITION.IMG;1", 16, sectorSize)
		}, "overlaps the ISO 9660 metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			tc.edit(b)
			l, err := safeParse(t, t.TempDir(), b)
			if !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadImage naming %q (layout %+v)", err, tc.want, l)
			}
		})
	}

	// An ignition image whose extent is its own directory's sector.
	c := newCraftISO(24, 18, sectorSize)
	c.dir(18, suspSP(), craftRecord("IMAGES", 19, sectorSize, recDir, suspNM("images")))
	c.dir(19, nil, craftRecord("IGNITION.IMG;1", 19, sectorSize, 0, suspNM("ignition.img")))
	l, err := safeParse(t, t.TempDir(), c.b)
	if !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "overlaps the ISO 9660 metadata") {
		t.Errorf("ignition image over its directory: err = %v (layout %+v)", err, l)
	}
	// The same image with the file in a sector of its own parses.
	c.dir(19, nil, craftRecord("IGNITION.IMG;1", 20, sectorSize, 0, suspNM("ignition.img")))
	if l, err := safeParse(t, t.TempDir(), c.b); err != nil || l.Ignition != (Area{Off: 20 * sectorSize, Len: sectorSize}) {
		t.Errorf("ignition image in its own sector: %+v, %v", l, err)
	}
}

// TestLayoutCheckAreas: Check rejects what ParseLayout would, for layouts
// decoded from storage.
func TestLayoutCheckAreas(t *testing.T) {
	base := func() *Layout {
		return &Layout{
			Size:     1 << 20,
			VolumeID: "rhcos-1",
			Files: map[string]Area{
				PathRootfs:              {Off: 0x10000, Len: 0x1000},
				PathVmlinuz:             {Off: 0x20000, Len: 0x1000},
				PathIgnition:            {Off: 0x30000, Len: 0x1000},
				"EFI/redhat/grub.cfg":   {Off: 0x40000, Len: 0x800},
				"isolinux/isolinux.cfg": {Off: 0x41000, Len: 0x800},
			},
			IgnitionFile: PathIgnition,
			Ignition:     Area{Off: 0x30000, Len: 0x1000},
			KargAreas: []KargArea{
				{Path: "EFI/redhat/grub.cfg", Area: Area{Off: 0x40100, Len: 0x400}},
				{Path: "isolinux/isolinux.cfg", Area: Area{Off: 0x41100, Len: 0x400}},
			},
		}
	}
	if err := base().Check(1, 1); err != nil {
		t.Fatalf("valid layout: %v", err)
	}
	cases := map[string]func(l *Layout){
		"ignition in the kernel": func(l *Layout) {
			l.IgnitionFile, l.Ignition = PathVmlinuz, l.Files[PathVmlinuz]
		},
		"ignition area outside its file": func(l *Layout) { l.Ignition.Len++ },
		"ignition area before its file":  func(l *Layout) { l.Ignition.Off-- },
		"ignition file missing":          func(l *Layout) { delete(l.Files, PathIgnition) },
		"ignition file past the image":   func(l *Layout) { l.Size = 0x30800 },
		"karg area outside its file":     func(l *Layout) { l.KargAreas[0].Len = 0x701 },
		"karg area of a missing file":    func(l *Layout) { l.KargAreas[1].Path = "boot/grub/grub.cfg" },
		"karg file listed twice":         func(l *Layout) { l.KargAreas = append(l.KargAreas, l.KargAreas[0]) },
		"karg areas overlapping": func(l *Layout) {
			l.Files["isolinux/isolinux.cfg"] = l.Files["EFI/redhat/grub.cfg"]
			l.KargAreas[1].Area = l.KargAreas[0].Area
		},
		"karg area in the ignition image":     func(l *Layout) { l.KargAreas[0] = KargArea{Path: PathIgnition, Area: Area{Off: 0x30010, Len: 4}} },
		"ignition image overlapping a file":   func(l *Layout) { l.Files["other"] = Area{Off: 0x30fff, Len: 2} },
		"ramdisk file overlapping the kernel": func(l *Layout) { l.Files[PathCustomRamdisk] = Area{Off: 0x20800, Len: 0x1000} },
	}
	for name, edit := range cases {
		l := base()
		edit(l)
		if err := l.Check(1, 1); !errors.Is(err, ErrBadImage) {
			t.Errorf("%s: Check = %v, want ErrBadImage", name, err)
		}
	}
	// Empty files may sit anywhere, and a ramdisk file of its own is fine.
	l := base()
	l.Files["empty"] = Area{Off: 0x30000, Len: 0}
	l.Files[PathCustomRamdisk] = Area{Off: 0x50000, Len: 0x1000}
	if err := l.Check(1, 1); err != nil {
		t.Errorf("empty file inside the ignition area: %v", err)
	}
}
