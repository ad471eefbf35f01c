package customize

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// testBase writes a base file whose byte i is byte(i*7+i/251) and returns it open.
func testBase(t *testing.T, n int) (*os.File, []byte) {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	p := filepath.Join(t.TempDir(), "base")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, b
}

// expand computes a plan's output the slow way.
func expand(p Plan, base []byte) []byte {
	var out []byte
	for _, s := range p.Segs {
		switch s.Kind {
		case FromBase:
			out = append(out, base[s.Off:s.Off+s.Len]...)
		case FromData:
			out = append(out, s.Data[s.Off:s.Off+s.Len]...)
		case FromZero:
			out = append(out, make([]byte, s.Len)...)
		}
	}
	return out
}

func samplePlan() Plan {
	return NewPlan("sha256:x", Extent(0, 100), Patch([]byte("hello")), Zeros(37), Extent(500, 0), Extent(300, 200), Patch([]byte("!")))
}

func TestNewPlanDropsEmptyAndSums(t *testing.T) {
	p := samplePlan()
	if len(p.Segs) != 5 {
		t.Fatalf("segments = %d, want 5 (empty one dropped)", len(p.Segs))
	}
	if p.Size != 100+5+37+200+1 {
		t.Fatalf("size = %d", p.Size)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejects(t *testing.T) {
	cases := map[string]Plan{
		"size mismatch":   {Size: 3, Segs: []Segment{Extent(0, 2)}},
		"negative off":    {Size: 2, Segs: []Segment{Extent(-1, 2)}},
		"empty segment":   {Size: 0, Segs: []Segment{{Kind: FromBase}}},
		"patch overrun":   {Size: 4, Segs: []Segment{{Kind: FromData, Off: 1, Len: 4, Data: []byte("abcd")}}},
		"unknown kind":    {Size: 1, Segs: []Segment{{Kind: 9, Len: 1}}},
		"overflowing sum": {Size: 1, Segs: []Segment{Extent(0, 1<<62), Extent(0, 1<<62), Extent(0, 1<<62)}},
	}
	for name, p := range cases {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, p)
		}
	}
}

func TestSliceMatchesExpansion(t *testing.T) {
	_, base := testBase(t, 1000)
	p := samplePlan()
	full := expand(p, base)
	for off := int64(0); off <= p.Size; off += 3 {
		for _, n := range []int64{0, 1, 2, 5, 37, 99, 100, p.Size - off} {
			if off+n > p.Size {
				continue
			}
			s, err := p.Slice(off, n)
			if err != nil {
				t.Fatalf("Slice(%d,%d): %v", off, n, err)
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("Slice(%d,%d) invalid: %v", off, n, err)
			}
			if got := expand(s, base); !bytes.Equal(got, full[off:off+n]) {
				t.Fatalf("Slice(%d,%d) = %q, want %q", off, n, got, full[off:off+n])
			}
		}
	}
}

func TestSliceOutOfRange(t *testing.T) {
	p := samplePlan()
	for _, r := range [][2]int64{{-1, 1}, {0, p.Size + 1}, {p.Size, 1}, {5, -1}, {1 << 62, 1 << 62}} {
		if _, err := p.Slice(r[0], r[1]); !errors.Is(err, ErrRange) {
			t.Errorf("Slice(%d,%d) err = %v, want ErrRange", r[0], r[1], err)
		}
	}
}

func TestETag(t *testing.T) {
	a := samplePlan()
	b := samplePlan()
	if a.ETag() != b.ETag() {
		t.Fatal("equal plans have different ETags")
	}
	c := NewPlan("sha256:x", Extent(0, 100), Patch([]byte("hellO")), Zeros(37), Extent(300, 200), Patch([]byte("!")))
	if a.ETag() == c.ETag() {
		t.Fatal("a different patch kept the ETag")
	}
	d := a
	d.Base = "sha256:y"
	if a.ETag() == d.ETag() {
		t.Fatal("a different base kept the ETag")
	}
	if e := a.ETag(); len(e) < 3 || e[0] != '"' || e[len(e)-1] != '"' {
		t.Fatalf("ETag %s is not quoted", e)
	}
}

// recorder is a writer that records how each byte reached it.
type recorder struct {
	buf        bytes.Buffer
	fileReads  []int64 // lengths handed over as *io.LimitedReader over *os.File
	otherReads int
	writes     int
}

func (r *recorder) Write(p []byte) (int, error) { r.writes++; return r.buf.Write(p) }

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if lr, ok := src.(*io.LimitedReader); ok {
		if _, ok := lr.R.(*os.File); ok {
			r.fileReads = append(r.fileReads, lr.N)
			return io.Copy(&r.buf, src)
		}
	}
	r.otherReads++
	return io.Copy(&r.buf, src)
}

func TestWriteToHandsFileExtentsToReadFrom(t *testing.T) {
	f, base := testBase(t, 1000)
	p := samplePlan()
	var rec recorder
	n, err := p.WriteTo(&rec, f)
	if err != nil || n != p.Size {
		t.Fatalf("WriteTo = %d, %v; want %d", n, err, p.Size)
	}
	if !bytes.Equal(rec.buf.Bytes(), expand(p, base)) {
		t.Fatal("WriteTo output differs from the plan")
	}
	if len(rec.fileReads) != 2 || rec.fileReads[0] != 100 || rec.fileReads[1] != 200 {
		t.Fatalf("file extents via ReadFrom(*io.LimitedReader{*os.File}) = %v, want [100 200]", rec.fileReads)
	}
	if rec.otherReads != 0 {
		t.Fatalf("%d ReadFrom calls with other readers", rec.otherReads)
	}
}

func TestWriteToPlainWriterAndShortFile(t *testing.T) {
	f, base := testBase(t, 1000)
	p := samplePlan()
	var buf bytes.Buffer
	if _, err := p.WriteTo(struct{ io.Writer }{&buf}, f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), expand(p, base)) {
		t.Fatal("output differs")
	}
	past := NewPlan("b", Extent(900, 200))
	if _, err := past.WriteTo(&recorder{}, f); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("extent past EOF: err = %v, want ErrUnexpectedEOF", err)
	}
}

func TestReader(t *testing.T) {
	f, base := testBase(t, 1000)
	p := samplePlan()
	for _, chunk := range []int{1, 3, 64, 4096} {
		r := NewReader(p, f)
		var out []byte
		buf := make([]byte, chunk)
		for {
			n, err := r.Read(buf)
			out = append(out, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(out, expand(p, base)) {
			t.Fatalf("chunk %d: Reader output differs", chunk)
		}
	}
}

func FuzzPlanSlice(f *testing.F) {
	f.Add(int64(0), int64(10))
	f.Add(int64(99), int64(7))
	f.Add(int64(342), int64(1))
	f.Fuzz(func(t *testing.T, off, n int64) {
		p := samplePlan()
		s, err := p.Slice(off, n)
		if err != nil {
			if !errors.Is(err, ErrRange) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil || s.Size != n {
			t.Fatalf("Slice(%d,%d) = size %d, %v", off, n, s.Size, err)
		}
	})
}

// TestFileSegment: a File segment reads its source at its offsets, in
// every writer and in slices, and its digest stands for it in the ETag.
func TestFileSegment(t *testing.T) {
	src := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	sum := sha256.Sum256(src)
	p := NewPlan("base", Patch([]byte("head-")), File(bytes.NewReader(src), int64(len(src)), sum), Zeros(3))
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte("head-"), src...), 0, 0, 0)
	got, err := io.ReadAll(NewReader(p, nil))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Reader: %d bytes, %v", len(got), err)
	}
	var buf bytes.Buffer
	if _, err := p.WriteTo(&buf, nil); err != nil || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("WriteTo: %d bytes, %v", buf.Len(), err)
	}
	for _, r := range [][2]int64{{0, 7}, {5, 100}, {4000, 30000}, {int64(len(want)) - 10, 10}} {
		part, err := p.Slice(r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(NewReader(part, nil))
		if err != nil || !bytes.Equal(got, want[r[0]:r[0]+r[1]]) {
			t.Errorf("slice %v: %v", r, err)
		}
	}
	other := sum
	other[0] ^= 1
	q := NewPlan("base", Patch([]byte("head-")), File(bytes.NewReader(src), int64(len(src)), other), Zeros(3))
	if p.ETag() == q.ETag() {
		t.Error("two File segments with different content digests share an ETag")
	}
	if err := NewPlan("base", Segment{Kind: FromFile, Len: 4}).Validate(); err == nil {
		t.Error("a File segment without a source validated")
	}
}
