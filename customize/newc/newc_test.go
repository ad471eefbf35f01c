package newc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// write returns the archive of entries.
func write(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b)
	for _, e := range entries {
		if err := w.Add(e); err != nil {
			t.Fatalf("Add(%q): %v", e.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Len() != int64(b.Len()) || b.Len()%4 != 0 {
		t.Fatalf("Len() = %d, wrote %d bytes (want a multiple of 4)", w.Len(), b.Len())
	}
	return b.Bytes()
}

// runCpio runs the external cpio tool with stdin in dir.
func runCpio(t testing.TB, dir string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command("cpio", args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("cpio %v: %v\n%s", args, err, errb.Bytes())
	}
	return out.String()
}

// TestWriterVector pins the bytes of a one-file archive, field by field.
func TestWriterVector(t *testing.T) {
	got := write(t, Entry{Name: "config.ign", Mode: TypeRegular | 0o644, Data: []byte("someignitioncontent")})
	want := "070701" + "00000001" + "000081A4" + "00000000" + "00000000" + "00000001" + "00000000" +
		"00000013" + "00000000" + "00000000" + "00000000" + "00000000" + "0000000B" + "00000000" +
		"config.ign\x00" + "\x00\x00\x00" + // 110+11 = 121 → 124
		"someignitioncontent" + "\x00" + // 19 → 20
		"070701" + strings.Repeat("0", 8) + strings.Repeat("0", 8) + strings.Repeat("0", 8) + strings.Repeat("0", 8) +
		"00000001" + strings.Repeat("0", 8*6) + "0000000B" + "00000000" + "TRAILER!!!\x00" + "\x00\x00\x00"
	if string(got) != want {
		t.Errorf("archive\n%q\nwant\n%q", got, want)
	}
	if len(got) != 268 {
		t.Errorf("archive is %d bytes, want 268 (the assisted-image-service vector)", len(got))
	}
}

func TestWriterReadByCpio(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	raw := write(t,
		Entry{Name: "etc", Mode: TypeDir | 0o750},
		Entry{Name: "etc/assisted/network/host0/eth0.nmconnection", Mode: TypeRegular | 0o600, Data: []byte("[connection]\n")},
		Entry{Name: "/bin/busybox", Mode: TypeRegular | 0o755, Data: data},
		Entry{Name: "bin/sh", Mode: TypeSymlink | 0o777, Data: []byte("busybox")},
		Entry{Name: "dev/console", Mode: TypeChar | 0o600, RDevMajor: 5, RDevMinor: 1},
		Entry{Name: "empty", Mode: TypeRegular | 0o644},
		Entry{Name: "odd", Mode: TypeRegular | 0o644, Data: []byte("xyz")},
	)
	list := strings.Split(strings.TrimSpace(runCpio(t, t.TempDir(), raw, "-itv", "--quiet")), "\n")
	var names []string
	modes := map[string]string{}
	for _, l := range list {
		f := strings.Fields(l)
		n := f[len(f)-1]
		if strings.HasPrefix(f[0], "l") { // "bin/sh -> busybox"
			n = f[len(f)-3]
		}
		names = append(names, n)
		modes[n] = f[0]
	}
	wantNames := []string{"etc", "etc/assisted", "etc/assisted/network", "etc/assisted/network/host0",
		"etc/assisted/network/host0/eth0.nmconnection", "bin", "bin/busybox", "bin/sh", "dev", "dev/console", "empty", "odd"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("cpio -t order\n%q\nwant\n%q", names, wantNames)
	}
	for n, m := range map[string]string{"etc": "drwxr-x---", "etc/assisted": "drwxr-xr-x", "bin/busybox": "-rwxr-xr-x",
		"bin/sh": "lrwxrwxrwx", "dev/console": "crw-------", "odd": "-rw-r--r--"} {
		if modes[n] != m {
			t.Errorf("%s: mode %s, want %s", n, modes[n], m)
		}
	}

	// Extraction (no device nodes without privileges: leave it out).
	noDev := write(t,
		Entry{Name: "a/b/c", Mode: TypeRegular | 0o644, Data: data},
		Entry{Name: "a/l", Mode: TypeSymlink | 0o777, Data: []byte("b/c")},
		Entry{Name: "odd", Mode: TypeRegular | 0o644, Data: []byte("xyz")},
	)
	dir := t.TempDir()
	runCpio(t, dir, noDev, "-idm", "--quiet", "--no-absolute-filenames")
	for p, want := range map[string][]byte{"a/b/c": data, "a/l": data, "odd": []byte("xyz")} {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", p, len(got), err, len(want))
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "a/l")); err != nil || target != "b/c" {
		t.Errorf("a/l -> %q, %v", target, err)
	}
}

func TestWriterInodesAndParents(t *testing.T) {
	raw := write(t,
		Entry{Name: "x/y", Mode: TypeRegular | 0o644, Data: []byte("1")},
		Entry{Name: "x/z", Mode: TypeRegular | 0o644, Data: []byte("2")},
		Entry{Name: "w", Mode: TypeDir | 0o700},
		Entry{Name: "w/v", Mode: TypeRegular | 0o644},
	)
	ms, err := ReadAll(bytes.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, fmt.Sprintf("%s ino=%d nlink=%d mode=%o uid=%d gid=%d mtime=%d", m.Name, m.Ino, m.NLink, m.Mode, m.UID, m.GID, m.Mtime))
	}
	want := []string{
		"x ino=1 nlink=2 mode=40755 uid=0 gid=0 mtime=0",
		"x/y ino=2 nlink=1 mode=100644 uid=0 gid=0 mtime=0",
		"x/z ino=3 nlink=1 mode=100644 uid=0 gid=0 mtime=0",
		"w ino=4 nlink=2 mode=40700 uid=0 gid=0 mtime=0",
		"w/v ino=5 nlink=1 mode=100644 uid=0 gid=0 mtime=0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("members\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !bytes.Equal(raw, write(t,
		Entry{Name: "x/y", Mode: TypeRegular | 0o644, Data: []byte("1")},
		Entry{Name: "x/z", Mode: TypeRegular | 0o644, Data: []byte("2")},
		Entry{Name: "w", Mode: TypeDir | 0o700},
		Entry{Name: "w/v", Mode: TypeRegular | 0o644},
	)) {
		t.Error("the same entries gave different bytes")
	}
	// An empty archive is the trailer alone.
	if e := write(t); len(e) != 124 || !bytes.Contains(e, []byte(TrailerName)) {
		t.Errorf("empty archive %q", e)
	}
}

func TestWriterRejects(t *testing.T) {
	for _, e := range []Entry{
		{Name: "", Mode: TypeRegular},
		{Name: "/", Mode: TypeRegular},
		{Name: "../x", Mode: TypeRegular},
		{Name: "a/../../x", Mode: TypeRegular},
		{Name: "x/..", Mode: TypeRegular},
		{Name: "a//b", Mode: TypeRegular},
		{Name: "./a", Mode: TypeRegular},
		{Name: "a/", Mode: TypeRegular},
		{Name: "nul\x00", Mode: TypeRegular},
		{Name: TrailerName, Mode: TypeRegular},
		{Name: "d", Mode: TypeDir | 0o755, Data: []byte("x")},
	} {
		var b bytes.Buffer
		w := NewWriter(&b)
		err := w.Add(e)
		if !errors.Is(err, ErrName) {
			t.Errorf("Add(%q): err = %v, want ErrName", e.Name, err)
		}
		if b.Len() != 0 {
			t.Errorf("Add(%q) wrote %d bytes before failing", e.Name, b.Len())
		}
		if w.Close() == nil {
			t.Errorf("Close after a failed Add(%q) succeeded", e.Name)
		}
	}
	if _, err := AppendHeader(nil, Header{Name: "big", Size: 1 << 32}); err == nil {
		t.Error("AppendHeader accepted a size of 4 GiB")
	}
	if _, err := AppendHeader(nil, Header{Name: "a\x00b"}); !errors.Is(err, ErrName) {
		t.Errorf("AppendHeader(name with NUL): %v", err)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	if f.n < len(b) {
		n := f.n
		f.n = 0
		return n, errors.New("disk full")
	}
	f.n -= len(b)
	return len(b), nil
}

func TestWriterWriteError(t *testing.T) {
	w := NewWriter(&failWriter{n: 200})
	if err := w.Add(Entry{Name: "a", Mode: TypeRegular | 0o644, Data: make([]byte, 300)}); err == nil {
		t.Fatal("Add over a failing writer succeeded")
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close: %v, want the sticky write error", err)
	}
}

func TestReaderRoundTrip(t *testing.T) {
	entries := []Entry{
		{Name: "etc/coreos-live-initramfs", Mode: TypeRegular | 0o644, Data: []byte("rhcos\n")},
		{Name: "bin/sh", Mode: TypeSymlink | 0o777, Data: []byte("busybox")},
		{Name: "dev/console", Mode: TypeChar | 0o600, RDevMajor: 5, RDevMinor: 1},
		{Name: "big", Mode: TypeRegular | 0o600, Data: bytes.Repeat([]byte{7}, 100001)},
	}
	raw := write(t, entries...)
	ms, err := ReadAll(bytes.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Member{}
	for _, m := range ms {
		byName[m.Name] = m
	}
	for _, e := range entries {
		m, ok := byName[e.Name]
		if !ok || m.Mode != e.Mode || !bytes.Equal(m.Data, e.Data) || m.Size != int64(len(e.Data)) ||
			m.RDevMajor != e.RDevMajor || m.RDevMinor != e.RDevMinor {
			t.Errorf("%s: read %+v", e.Name, m.Header)
		}
	}
	if len(ms) != 7 { // etc, bin, dev + 4
		t.Errorf("%d members, want 7", len(ms))
	}
}

// TestReaderReadsCpioTool reads an archive written by the external cpio.
func TestReaderReadsCpioTool(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"etc/a": "alpha", "etc/sub/b": strings.Repeat("b", 5001), "c": ""}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	raw := runCpio(t, dir, []byte("etc\netc/a\netc/sub\netc/sub/b\nc\n"), "-o", "-H", "newc", "--quiet")
	r := NewReader(strings.NewReader(raw), Limits{})
	got := map[string]string{}
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.IsRegular() {
			b, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			got[h.Name] = string(b)
			if h.Mode&0o777 != 0o640 {
				t.Errorf("%s: mode %o", h.Name, h.Mode)
			}
		} else if !h.IsDir() {
			t.Errorf("%s: unexpected mode %o", h.Name, h.Mode)
		}
	}
	if len(got) != len(files) {
		t.Errorf("read %d files, want %d", len(got), len(files))
	}
	for p, c := range files {
		if got[p] != c {
			t.Errorf("%s: %d bytes, want %d", p, len(got[p]), len(c))
		}
	}
	// cpio pads the archive to 512-byte blocks; the reader stops at the
	// trailer's padding.
	if r.Len() > int64(len(raw)) || r.Len()%4 != 0 || strings.Trim(raw[r.Len():], "\x00") != "" {
		t.Errorf("reader consumed %d of %d bytes", r.Len(), len(raw))
	}
}

// TestReaderStopsAtTrailer: archives may be concatenated; a Reader reads
// one and leaves the next.
func TestReaderStopsAtTrailer(t *testing.T) {
	a := write(t, Entry{Name: "a", Mode: TypeRegular | 0o644, Data: []byte("first")})
	b := write(t, Entry{Name: "b", Mode: TypeRegular | 0o644, Data: []byte("second")})
	in := bytes.NewReader(slices.Concat(a, b))
	r := NewReader(in, Limits{})
	h, err := r.Next()
	if err != nil || h.Name != "a" {
		t.Fatalf("first member %q, %v", h.Name, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after a: %v, want io.EOF", err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("again after the trailer: %v, want io.EOF", err)
	}
	if r.Len() != int64(len(a)) {
		t.Errorf("consumed %d bytes, the first archive has %d", r.Len(), len(a))
	}
	ms, err := ReadAll(in, Limits{})
	if err != nil || len(ms) != 1 || ms[0].Name != "b" || string(ms[0].Data) != "second" {
		t.Errorf("second archive: %+v, %v", ms, err)
	}
}

func TestReaderRejects(t *testing.T) {
	good := write(t, Entry{Name: "dir/file", Mode: TypeRegular | 0o644, Data: []byte("content")})
	set := func(off int, s string) []byte {
		b := bytes.Clone(good)
		copy(b[off:], s)
		return b
	}
	// Offsets: the dir member's header is at 0, the file's at 116.
	const file = 116
	cases := []struct {
		name string
		in   []byte
		lim  Limits
		want error
	}{
		{"empty", nil, Limits{}, ErrFormat},
		{"truncated header", good[:50], Limits{}, ErrFormat},
		{"truncated name", good[:file+112], Limits{}, ErrFormat},
		{"truncated data", good[:file+HeaderSize+10+3], Limits{}, ErrFormat},
		{"no trailer", good[:file+128], Limits{}, ErrFormat},
		{"bad magic", set(0, "070707"), Limits{}, ErrFormat},
		{"non-hex field", set(file+6, "0000000G"), Limits{}, ErrFormat},
		{"sign in field", set(file+54, "+0000007"), Limits{}, ErrFormat},
		{"name size 0", set(file+94, "00000000"), Limits{}, ErrFormat},
		{"name size 1", set(file+94, "00000001"), Limits{}, ErrFormat},
		{"name without NUL", set(file+94, "00000008"), Limits{}, ErrFormat},
		{"NUL inside name", set(file+HeaderSize+2, "\x00"), Limits{}, ErrFormat},
		{"size past the end", set(file+54, "7FFFFFFF"), Limits{MaxSize: 1 << 40, MaxTotal: 1 << 40}, ErrFormat},
		{"name too long", good, Limits{MaxNameLen: 7}, ErrLimit},
		{"member too large", good, Limits{MaxSize: 6}, ErrLimit},
		{"too many members", good, Limits{MaxMembers: 2}, ErrLimit},
		{"archive too long", good, Limits{MaxTotal: int64(len(good)) - 1}, ErrLimit},
		{"huge claimed size", set(file+54, "FFFFFFFF"), Limits{}, ErrLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := ReadAll(bytes.NewReader(tc.in), tc.lim)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadAll = %d members, %v; want %v", len(ms), err, tc.want)
			}
		})
	}
	// The limits are inclusive (the trailer's name is the longest).
	exact := Limits{MaxNameLen: len(TrailerName), MaxSize: int64(len("content")), MaxMembers: 3, MaxTotal: int64(len(good))}
	if _, err := ReadAll(bytes.NewReader(good), exact); err != nil {
		t.Errorf("archive at exactly the limits: %v", err)
	}
	// Errors are sticky: Read after a failed Next fails too.
	r := NewReader(bytes.NewReader(good[:50]), Limits{})
	if _, err := r.Next(); err == nil {
		t.Fatal("Next on a truncated header succeeded")
	}
	if _, err := r.Read(make([]byte, 4)); !errors.Is(err, ErrFormat) {
		t.Errorf("Read after the failure: %v", err)
	}
}

func FuzzNewcReader(f *testing.F) {
	f.Add(write(f, Entry{Name: "config.ign", Mode: TypeRegular | 0o644, Data: []byte(`{"ignition":{}}`)}))
	f.Add(write(f,
		Entry{Name: "etc/a/b", Mode: TypeRegular | 0o600, Data: []byte("x")},
		Entry{Name: "bin/sh", Mode: TypeSymlink | 0o777, Data: []byte("busybox")},
		Entry{Name: "dev/console", Mode: TypeChar | 0o600, RDevMajor: 5, RDevMinor: 1}))
	f.Add(write(f))
	f.Add([]byte("070701"))
	f.Add([]byte{})
	lim := Limits{MaxNameLen: 256, MaxSize: 1 << 16, MaxMembers: 64, MaxTotal: 1 << 20}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		ms, err := ReadAll(r, lim)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrLimit) {
				t.Fatalf("error %v wraps neither ErrFormat nor ErrLimit", err)
			}
			return
		}
		consumed := int64(len(in)) - int64(r.Len())
		if consumed%4 != 0 {
			t.Fatalf("an accepted archive of %d bytes is not 4-aligned", consumed)
		}
		// Re-encoding the members gives an archive that reads back the same.
		var again []byte
		for _, m := range ms {
			if m.Name == TrailerName || m.Size != int64(len(m.Data)) || int64(len(m.Data)) > lim.MaxSize || len(m.Name) > lim.MaxNameLen {
				t.Fatalf("member %q: size %d, %d bytes of data", m.Name, m.Size, len(m.Data))
			}
			if again, err = AppendHeader(again, m.Header); err != nil {
				t.Fatalf("AppendHeader(%+v): %v", m.Header, err)
			}
			again = append(again, m.Data...)
			again = append(again, make([]byte, pad4(int64(len(again))))...)
		}
		again, _ = AppendHeader(again, Header{Name: TrailerName, NLink: 1})
		ms2, err := ReadAll(bytes.NewReader(again), lim)
		if err != nil {
			t.Fatalf("re-encoded archive: %v", err)
		}
		if len(ms2) != len(ms) {
			t.Fatalf("re-encoded archive has %d members, want %d", len(ms2), len(ms))
		}
		for i := range ms {
			if ms[i].Header != ms2[i].Header || !bytes.Equal(ms[i].Data, ms2[i].Data) {
				t.Fatalf("member %d: %+v, re-read %+v", i, ms[i].Header, ms2[i].Header)
			}
		}
	})
}
