package customize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/isoedge/isoedge/internal/fixture"
)

// craftedISOs are the hostile images of issue 9 and their relatives.
var craftedISOs = []struct {
	name string
	make func() []byte
	want string // in the error
}{
	{"huge directory length", craftHugeDir, "outside the image"},
	{"huge \".\" record of the root", craftHugeDot, "its \".\" record says"},
	{"DAG fan-out 40 depth 6", func() []byte { return craftDAG(40, 6) }, "read twice"},
	{"directory loop", craftLoop, "read twice"},
	{"Rock Ridge continuation loop", craftCELoop, "continuation areas"},
	{"record of 11 bytes", craftShortRecord, "directory record of 11 bytes"},
}

// TestParseLayoutCraftedBounds parses each crafted image and bounds what
// that costs: bytes allocated (runtime.MemStats.TotalAlloc) and wall time.
// Go's fuzzer has no per-input memory limit, so the bounds live here; the
// same images seed FuzzParseLayout.
func TestParseLayoutCraftedBounds(t *testing.T) {
	const maxAlloc, maxTime = 128 << 20, 30 * time.Second
	dir := t.TempDir()
	for _, tc := range craftedISOs {
		b := tc.make()
		p := filepath.Join(dir, "crafted.iso")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		l, err := ParseLayout(f)
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		f.Close()
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s (%d KiB): %v allocated %d KiB in %v", tc.name, len(b)>>10, errString(err), alloc>>10, elapsed)
		switch {
		case err == nil:
			t.Errorf("%s: accepted: %+v", tc.name, l)
		case !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: err = %v, want ErrBadImage naming %q", tc.name, err, tc.want)
		}
		if alloc > maxAlloc {
			t.Errorf("%s: ParseLayout allocated %d MiB, bound %d MiB", tc.name, alloc>>20, maxAlloc>>20)
		}
		if elapsed > maxTime {
			t.Errorf("%s: ParseLayout took %v, bound %v", tc.name, elapsed, maxTime)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "accepted,"
	}
	return "rejected,"
}

// zeroTail reads b followed by zeros up to size.
type zeroTail struct {
	b    []byte
	size int64
}

func (z zeroTail) ReadAt(p []byte, off int64) (int, error) {
	if off >= z.size {
		return 0, io.EOF
	}
	clear(p)
	if off < int64(len(z.b)) {
		copy(p, z.b[off:])
	}
	if n := z.size - off; int64(len(p)) > n {
		return int(n), io.EOF
	}
	return len(p), nil
}

// TestReadISOTreeHugeDirInLargeImage: in an image large enough to hold it,
// the 0xFFFFF800-byte directory still costs no more than the directory
// byte budget, and is refused before anything is read.
func TestReadISOTreeHugeDirInLargeImage(t *testing.T) {
	img := zeroTail{b: craftHugeDir(), size: 8 << 30}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := readISOTree(img, img.size, defaultISOLimits)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "more than 67108864 bytes of directories") {
		t.Errorf("err = %v, want the directory budget", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("allocated %d KiB", n>>10)
	}
}

// TestReadISOTreeDAGWithoutSharing: the same tree with every directory
// stored once is read, so the rejection above is about sharing, not depth
// or fan-out.
func TestReadISOTreeDAGWithoutSharing(t *testing.T) {
	c := newCraftISO(18+4+1, 18, 0)
	// root → A, B (separate extents) → each a file
	c.dir(19, nil, craftRecord("X.;1", 22, 1, 0, nil))
	c.dir(20, nil, craftRecord("Y.;1", 22, 1, 0, nil))
	length := c.dir(18, nil, craftRecord("A", 19, sectorSize, recDir, nil), craftRecord("B", 20, sectorSize, recDir, nil))
	binary.LittleEndian.PutUint32(c.b[16*sectorSize+156+10:], length)
	tree, err := readISOTree(bytes.NewReader(c.b), int64(len(c.b)), defaultISOLimits)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tree.Entries {
		got = append(got, e.Path)
	}
	if want := []string{"A", "B", "A/X", "B/Y"}; !slices.Equal(got, want) {
		t.Errorf("entries %q, want %q", got, want)
	}
	// Two files may share an extent (a mastering tool's deduplication).
	if tree.Entries[2].Extent != tree.Entries[3].Extent {
		t.Errorf("extents %+v %+v", tree.Entries[2].Extent, tree.Entries[3].Extent)
	}
	if tree.VolumeID != "rhcos-crafted" {
		t.Errorf("volume id %q", tree.VolumeID)
	}
}

// TestReadISOTreeLimits trips each limit with an image that is otherwise
// fine, and passes with the limit one step higher.
func TestReadISOTreeLimits(t *testing.T) {
	// root → D1 → D2 → D3, each directory one sector, root with 3 files
	c := newCraftISO(26, 18, 0)
	c.dir(21, nil, craftRecord("F.;1", 25, 1, 0, nil))
	c.dir(20, nil, craftRecord("D3", 21, sectorSize, recDir, nil))
	c.dir(19, nil, craftRecord("D2", 20, sectorSize, recDir, nil))
	length := c.dir(18, nil, craftRecord("D1", 19, sectorSize, recDir, nil),
		craftRecord("A.;1", 25, 1, 0, nil), craftRecord("B.;1", 25, 1, 0, nil), craftRecord("C.;1", 25, 1, 0, nil))
	binary.LittleEndian.PutUint32(c.b[16*sectorSize+156+10:], length)
	img := c.b
	read := func(lim isoLimits) error {
		_, err := readISOTree(bytes.NewReader(img), int64(len(img)), lim)
		return err
	}
	if err := read(defaultISOLimits); err != nil {
		t.Fatal(err)
	}
	// 4 directories of 2048 bytes; records: root 2+4, the others 2+1 each
	// → 15; entries D1 A B C D2 D3 F → 7; depth 3.
	for _, tc := range []struct {
		name     string
		set      func(*isoLimits, int)
		ok, fail int
		want     string
	}{
		{"directory bytes", func(l *isoLimits, n int) { l.DirBytes = int64(n) }, 4 * sectorSize, 4*sectorSize - 1, "bytes of directories"},
		{"records", func(l *isoLimits, n int) { l.Records = n }, 15, 14, "directory records"},
		{"entries", func(l *isoLimits, n int) { l.Entries = n }, 7, 6, "files and directories"},
		{"depth", func(l *isoLimits, n int) { l.Depth = n }, 3, 2, "deeper than"},
	} {
		lim := defaultISOLimits
		tc.set(&lim, tc.ok)
		if err := read(lim); err != nil {
			t.Errorf("%s at %d: %v", tc.name, tc.ok, err)
		}
		tc.set(&lim, tc.fail)
		if err := read(lim); !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s at %d: err = %v, want ErrBadImage naming %q", tc.name, tc.fail, err, tc.want)
		}
	}
	lim := defaultISOLimits
	lim.Timeout = -time.Second // the deadline has passed before the walk starts
	if err := read(lim); !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("past deadline: err = %v", err)
	}
}

// TestReadISOTreeRejects: structural errors of single records.
func TestReadISOTreeRejects(t *testing.T) {
	one := func(selfSUA []byte, recs ...[]byte) []byte {
		c := newCraftISO(24, 18, sectorSize)
		c.dir(18, selfSUA, recs...)
		c.dir(19, nil)
		return c.b
	}
	sp := suspSP()
	cases := []struct {
		name string
		img  []byte
		want string
	}{
		{"duplicate name", one(nil, craftRecord("A.;1", 20, 1, 0, nil), craftRecord("A.;1", 21, 1, 0, nil)), "listed twice"},
		{"duplicate Rock Ridge name", one(sp, craftRecord("A.;1", 20, 1, 0, suspNM("x")), craftRecord("B.;1", 21, 1, 0, suspNM("x"))), "listed twice"},
		{"name with a slash", one(sp, craftRecord("A.;1", 20, 1, 0, suspNM("../../etc/passwd"))), "invalid file name"},
		{"name ..", one(sp, craftRecord("A.;1", 20, 1, 0, suspNM(".."))), "invalid file name"},
		{"file past the end", one(nil, craftRecord("A.;1", 23, 4096, 0, nil)), "past the end"},
		{"file far past the end", one(nil, craftRecord("A.;1", 0xFFFFFFF0, 1, 0, nil)), "past the end"},
		{"multi-extent file", one(nil, craftRecord("A.;1", 20, 1, recMultiExt, nil)), "several extents"},
		{"relocated directory", one(sp, craftRecord("A", 19, sectorSize, 0, susp("CL", make([]byte, 8)...))), "CL"},
		{"directory past the end", one(nil, craftRecord("D", 23, 2*sectorSize, recDir, nil)), "outside the image"},
		{"empty directory", one(nil, craftRecord("D", 19, 0, recDir, nil)), "empty directory"},
		{"continuation past the end", one(sp, craftRecord("A.;1", 20, 1, 0, suspCE(24, 0, 10))), "outside the image"},
		{"continuation across a sector", one(sp, craftRecord("A.;1", 20, 1, 0, suspCE(20, 2040, 10))), "crosses its sector"},
		{"Rock Ridge entry overruns", one(sp, craftRecord("A.;1", 20, 1, 0, []byte{'N', 'M', 40, 1, 0, 'x'})), "entry"},
		{"file with a directory mode", one(sp, craftRecord("A.;1", 20, 1, 0, suspPX(0o40755))), "directory's Rock Ridge mode"},
		{"directory with a file mode", one(sp, craftRecord("D", 19, sectorSize, recDir, suspPX(0o100644))), "Rock Ridge mode"},
		{"link without target", one(sp, craftRecord("A.;1", 20, 0, 0, suspPX(0o120777))), "without a target"},
	}
	// Records packed back to back until one crosses the root's sector:
	// 68 bytes of "." and "..", then 40-byte records, the 50th at 2028.
	cross := one(nil)
	for i, pos := 0, 18*sectorSize+68; i < 50; i, pos = i+1, pos+40 {
		copy(cross[pos:], craftRecord(fmt.Sprintf("F%03d.;1", i), 20, 1, 0, nil))
	}
	cases = append(cases, struct {
		name string
		img  []byte
		want string
	}{"record across a sector", cross, "crosses its sector"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tree, err := readISOTree(bytes.NewReader(tc.img), int64(len(tc.img)), defaultISOLimits)
			if !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadImage naming %q (tree %+v)", err, tc.want, tree)
			}
		})
	}
}

// TestReadISOTreeRockRidge: names, modes, links, skipped records.
func TestReadISOTreeRockRidge(t *testing.T) {
	c := newCraftISO(24, 18, sectorSize)
	sl := func(flags byte, comps ...[]byte) []byte {
		return susp("SL", append([]byte{flags}, bytes.Join(comps, nil)...)...)
	}
	comp := func(flags byte, s string) []byte { return append([]byte{flags, byte(len(s))}, s...) }
	// The link's second SL entry sits in a continuation area.
	copy(c.b[21*sectorSize+100:], sl(0, comp(0, "c")))
	c.dir(18, suspSP(),
		craftRecord("LONGNA~1.TXT;1", 20, 3, 0, append(append(suspNM("long name "), suspNM("continued.txt")...), suspPX(0o100600)...)),
		craftRecord("LINK.;1", 0, 0, 0, slices.Concat(suspNM("link"), suspPX(0o120777), sl(1, comp(8, ""), comp(0, "a"), comp(4, "")), suspCE(21, 100, 8))),
		craftRecord("REL.;1", 0, 0, 0, slices.Concat(suspNM("rel"), sl(0, comp(2, ""), comp(1, "x"), comp(0, "y")))),
		craftRecord("SUB", 19, sectorSize, recDir, slices.Concat(suspNM("sub"), suspPX(0o40750))),
		craftRecord("MOVED", 19, sectorSize, recDir, slices.Concat(suspNM("moved"), susp("RE"))),
		craftRecord("ASSOC.;1", 20, 1, recAssociated, suspNM("assoc")),
		craftRecord("FIFO.;1", 0, 0, 0, slices.Concat(suspNM("fifo"), suspPX(0o10644))),
		craftRecord("PLAIN.;1", 20, 1, 0, nil),
	)
	c.dir(19, nil, craftRecord("INNER.;1", 20, 2, recHidden, suspNM("inner")))
	copy(c.b[20*sectorSize:], "abc")
	tree, err := readISOTree(bytes.NewReader(c.b), int64(len(c.b)), defaultISOLimits)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]isoEntry{}
	var order []string
	for _, e := range tree.Entries {
		got[e.Path] = e
		order = append(order, e.Path)
	}
	want := map[string]isoEntry{
		"long name continued.txt": {Mode: 0o600, Extent: Area{Off: 20 * sectorSize, Len: 3}},
		"link":                    {Mode: fs.ModeSymlink | 0o777, Target: "/a/../c"},
		"rel":                     {Mode: fs.ModeSymlink | 0o777, Target: "./xy"},
		"sub":                     {Mode: fs.ModeDir | 0o750, Extent: Area{Off: 19 * sectorSize, Len: sectorSize}},
		"fifo":                    {Mode: fs.ModeNamedPipe | 0o644},
		"PLAIN":                   {Mode: 0o644, Extent: Area{Off: 20 * sectorSize, Len: 1}},
		"sub/inner":               {Mode: 0o644, Extent: Area{Off: 20 * sectorSize, Len: 2}},
	}
	if len(got) != len(want) {
		t.Errorf("entries %q, want %d", order, len(want))
	}
	for p, w := range want {
		w.Path = p
		if got[p] != w {
			t.Errorf("%s = %+v, want %+v", p, got[p], w)
		}
	}
	if i, j := slices.Index(order, "sub"), slices.Index(order, "sub/inner"); i < 0 || j < i {
		t.Errorf("order %q: a directory must come before its contents", order)
	}
}

// TestReadISOTreeXorriso reads a tree mastered by xorriso with Rock Ridge
// (multi-sector directories, continuation areas for long names and links,
// modes) and compares it with what was put in.
func TestReadISOTreeXorriso(t *testing.T) {
	stage := t.TempDir()
	contents := map[string]string{}
	mk := func(p string, mode os.FileMode, data string) {
		contents[p] = data
		full := filepath.Join(stage, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{} // path → "mode target"
	long := strings.Repeat("n", 240)
	for i := range 120 { // several sectors of records
		p := filepath.Join("many", long[:100]+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		mk(p, 0o644, p)
		want[p] = "-rw-r--r--"
	}
	mk("bin/tool", 0o755, "#!/bin/sh\n")
	want["bin/tool"] = "-rwxr-xr-x"
	mk("a/b/c/d/e/f/g/deep", 0o600, "deep")
	want["a/b/c/d/e/f/g/deep"] = "-rw-------"
	mk(long, 0o644, "long name")
	want[long] = "-rw-r--r--"
	target := "../" + strings.Repeat("t/", 150) + "end"
	for link, to := range map[string]string{"bin/sh": "tool", "abs": "/usr/bin/env", "far": target} {
		if err := os.Symlink(to, filepath.Join(stage, link)); err != nil {
			t.Fatal(err)
		}
		want[link] = "Lrwxrwxrwx " + to
	}
	if err := os.Chmod(filepath.Join(stage, "a"), 0o750); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tree.iso")
	cmd := exec.Command("xorriso", "-as", "mkisofs", "-R", "-J", "-joliet-long", "-V", "rhcos-tree", "-o", out, stage)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, b)
	}
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := readISOTree(bytes.NewReader(img), int64(len(img)), defaultISOLimits)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range tree.Entries {
		switch {
		case e.Mode.IsDir():
			if e.Path == "a" && e.Mode != fs.ModeDir|0o750 {
				t.Errorf("a: mode %v", e.Mode)
			}
		case e.Mode&fs.ModeSymlink != 0:
			got[e.Path] = e.Mode.String() + " " + e.Target
		default:
			got[e.Path] = e.Mode.String()
			if c := string(img[e.Extent.Off : e.Extent.Off+e.Extent.Len]); c != contents[e.Path] {
				t.Errorf("%s: content %q, want %q", e.Path, c, contents[e.Path])
			}
		}
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %q, want %q", p, got[p], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d files and links, want %d", len(got), len(want))
	}
	// Spot-check extents against xorriso's own report.
	for _, p := range []string{"bin/tool", "a/b/c/d/e/f/g/deep", long} {
		off, size := fixture.ISOOffset(t, out, p)
		for _, e := range tree.Entries {
			if e.Path == p && e.Extent != (Area{Off: off, Len: size}) {
				t.Errorf("%s: extent %+v, xorriso says %d+%d", p, e.Extent, off, size)
			}
		}
	}
}
