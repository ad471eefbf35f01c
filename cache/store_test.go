package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOpenStore(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	s, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(blobsDir(root)); err != nil || !fi.IsDir() {
		t.Fatalf("blobs dir not created: %v", err)
	}
	if s.Root() != root {
		t.Errorf("Root = %q, want %q", s.Root(), root)
	}
	if s.IndexPath() != filepath.Join(root, "index.db") {
		t.Errorf("IndexPath = %q", s.IndexPath())
	}
	if _, err := OpenStore(""); err == nil {
		t.Error("OpenStore(\"\") succeeded")
	}
}

func TestPutOpenRemove(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	content := []byte("some base image bytes")
	d, n, err := s.Put(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if d != DigestOf(content) || n != int64(len(content)) {
		t.Fatalf("Put = %v, %d; want %v, %d", d, n, DigestOf(content), len(content))
	}

	f1, size, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	f2, _, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if f1 == f2 || f1.Fd() == f2.Fd() {
		t.Fatal("Open returned a shared file")
	}
	if size != int64(len(content)) {
		t.Errorf("Open size = %d, want %d", size, len(content))
	}
	// Independent positions: reading f1 does not move f2.
	if _, err := io.ReadFull(f1, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f2)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("f2 content = %q, %v", got, err)
	}

	if err := s.Remove(d); err != nil {
		t.Fatal(err)
	}
	// Not found, everywhere, via errors.Is.
	notFoundOps := []struct {
		name string
		err  func() error
	}{
		{"Stat", func() error { _, err := s.Stat(d); return err }},
		{"Open", func() error { _, _, err := s.Open(d); return err }},
		{"Remove", func() error { return s.Remove(d) }},
	}
	for _, op := range notFoundOps {
		if err := op.err(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after Remove = %v, want ErrNotFound", op.name, err)
		} else if !strings.Contains(err.Error(), d.Hex()) {
			t.Errorf("%s error %q does not name the digest", op.name, err)
		}
	}
}

func TestPutCancelledContext(t *testing.T) {
	s := newTestStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Put(ctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	if tmp := tempFiles(t, s); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestConcurrentPutSameContent(t *testing.T) {
	s := newTestStore(t)
	content := bytes.Repeat([]byte("rhcos"), 64<<10)
	const n = 8
	var wg sync.WaitGroup
	digests := make([]Digest, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			digests[i], _, errs[i] = s.Put(context.Background(), bytes.NewReader(content))
		})
	}
	close(start)
	wg.Wait()
	want := DigestOf(content)
	for i := range n {
		if errs[i] != nil || digests[i] != want {
			t.Errorf("Put %d = %v, %v; want %v", i, digests[i], errs[i], want)
		}
	}
	blobs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 1 || blobs[0] != want {
		t.Fatalf("List = %v, want [%v]", blobs, want)
	}
	if got, _ := os.ReadFile(s.BlobPath(want)); !bytes.Equal(got, content) {
		t.Error("blob content differs")
	}
	if tmp := tempFiles(t, s); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestList(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	var want []Digest
	for _, c := range []string{"a", "b", "c"} {
		d, _, err := s.Put(ctx, strings.NewReader(c))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	// Noise List must ignore: a temp file, a stray file, a stray directory,
	// and a blob-like name in the wrong fan-out directory.
	dir := blobsDir(s.Root())
	os.WriteFile(filepath.Join(dir, ".tmp-x"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "README"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, "zz"), 0o755)
	os.Mkdir(filepath.Join(dir, "00"), 0o755)
	os.WriteFile(filepath.Join(dir, "00", helloHex), nil, 0o644)

	got, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("List = %v, want %d digests", got, len(want))
	}
	seen := map[Digest]bool{}
	for _, d := range got {
		seen[d] = true
	}
	for _, d := range want {
		if !seen[d] {
			t.Errorf("List misses %v", d)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Hex() >= got[i].Hex() {
			t.Errorf("List not in hex order: %v", got)
		}
	}
}

func TestSweep(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	keepD, _, err := s.Put(ctx, strings.NewReader("referenced"))
	if err != nil {
		t.Fatal(err)
	}
	dropD, _, err := s.Put(ctx, strings.NewReader("orphan"))
	if err != nil {
		t.Fatal(err)
	}
	dir := blobsDir(s.Root())
	oldTmp := filepath.Join(dir, ".tmp-old")
	newTmp := filepath.Join(dir, ".tmp-new")
	for _, p := range []string{oldTmp, newTmp} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(oldTmp, past, past); err != nil {
		t.Fatal(err)
	}
	// A live Writer's temp file is recent and must survive.
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()

	n, err := s.Sweep(time.Hour, func(d Digest) bool { return d == keepD })
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("Sweep removed %d files, want 2", n)
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	checks := []struct {
		name string
		path string
		want bool
	}{
		{"referenced blob", s.BlobPath(keepD), true},
		{"orphan blob", s.BlobPath(dropD), false},
		{"old temp", oldTmp, false},
		{"new temp", newTmp, true},
		{"live writer", w.TempPath(), true},
	}
	for _, c := range checks {
		if got := exists(c.path); got != c.want {
			t.Errorf("%s exists = %v, want %v", c.name, got, c.want)
		}
	}

	// A nil keep keeps every blob.
	if n, err := s.Sweep(time.Hour, nil); err != nil || n != 0 {
		t.Errorf("Sweep(nil keep) = %d, %v; want 0, nil", n, err)
	}
	if !exists(s.BlobPath(keepD)) {
		t.Error("Sweep with nil keep removed a blob")
	}
}

func TestSweepWithIndex(t *testing.T) {
	s := newTestStore(t)
	ix, _, err := OpenIndex(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	base, size, _ := s.Put(ctx, strings.NewReader("base iso"))
	meta, _, _ := s.Put(ctx, strings.NewReader("meta-only blob"))
	orphan, _, _ := s.Put(ctx, strings.NewReader("orphan"))
	if err := ix.PutBase(BaseRecord{Key: BaseKey{"full-iso", "9.6", "x86_64"}, Digest: base, Size: size}); err != nil {
		t.Fatal(err)
	}
	if err := ix.PutMeta("layout", meta, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	refs, err := ix.Referenced()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sweep(time.Hour, func(d Digest) bool { return refs[d] }); err != nil {
		t.Fatal(err)
	}
	got, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	left := map[Digest]bool{}
	for _, d := range got {
		left[d] = true
	}
	if !left[base] || !left[meta] || left[orphan] || len(left) != 2 {
		t.Errorf("after sweep: %v; want base and meta blobs only", got)
	}
}
