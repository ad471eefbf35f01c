package upstream

import (
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"
)

func TestBlobInMemory(t *testing.T) {
	b := BytesBlob([]byte("RAMDISK"))
	if b.Len() != 7 || string(b.Bytes()) != "RAMDISK" {
		t.Fatalf("Len %d Bytes %q", b.Len(), b.Bytes())
	}
	checkReaderAt(t, b, "RAMDISK")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("ReadAt after Close: %v", err)
	}
	if e := BytesBlob(nil); e.Bytes() == nil || e.Len() != 0 {
		t.Error("an empty blob must have non-nil, empty Bytes")
	}
}

func TestBlobSpilled(t *testing.T) {
	f, err := createUnlinked(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("RAMDISK")
	b := &Blob{file: f, size: 7}
	if b.Bytes() != nil || b.Len() != 7 {
		t.Errorf("spilled blob: Bytes %q Len %d", b.Bytes(), b.Len())
	}
	checkReaderAt(t, b, "RAMDISK")
	b.Close()
	if _, err := f.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("file still open after Close: %v", err)
	}
}

func TestBlobNil(t *testing.T) {
	var b *Blob
	if b.Len() != 0 || b.Bytes() != nil || b.Close() != nil {
		t.Error("a nil Blob must read as no ramdisk")
	}
	if _, err := b.ReadAt(make([]byte, 1), 0); err == nil {
		t.Error("ReadAt on nil succeeded")
	}
}

func TestBlobReleasesBudget(t *testing.T) {
	budget := NewMemoryBudget(10)
	budget.Acquire(7)
	b := &Blob{data: []byte("RAMDISK"), size: 7, budget: budget, held: 7}
	b.Close()
	b.Close()
	if budget.Used() != 0 {
		t.Errorf("used %d after Close, want 0 (and no double release)", budget.Used())
	}
}

// checkReaderAt runs the io.ReaderAt conformance test plus edge cases.
func checkReaderAt(t *testing.T, r io.ReaderAt, want string) {
	t.Helper()
	if err := iotest.TestReader(io.NewSectionReader(r, 0, int64(len(want))), []byte(want)); err != nil {
		t.Error(err)
	}
	p := make([]byte, 4)
	if n, err := r.ReadAt(p, 5); n != 2 || err != io.EOF || string(p[:n]) != want[5:] {
		t.Errorf("ReadAt past the end: %d %v %q", n, err, p[:n])
	}
	if n, err := r.ReadAt(p, int64(len(want))); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end: %d %v", n, err)
	}
	if _, err := r.ReadAt(p, -1); err == nil {
		t.Error("negative offset accepted")
	}
}
