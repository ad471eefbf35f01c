package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tempFiles lists blobs being written.
func tempFiles(t *testing.T, s *Store) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(blobsDir(s.Root()), tempPattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriterCommit(t *testing.T) {
	s := newTestStore(t)
	content := []byte("hello")
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()
	if !strings.HasPrefix(filepath.Base(w.TempPath()), tempPrefix) || filepath.Dir(w.TempPath()) != blobsDir(s.Root()) {
		t.Fatalf("TempPath %q is not a temp file in %s", w.TempPath(), blobsDir(s.Root()))
	}
	if _, err := w.Write(content[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content[2:]); err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(content)) {
		t.Fatalf("Size = %d, want %d", w.Size(), len(content))
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(w.TempPath()); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("temp file = %q, %v; want %q", got, err, content)
	}
	want := DigestOf(content)
	d, err := w.Commit(context.Background(), int64(len(content)), want)
	if err != nil {
		t.Fatal(err)
	}
	if d != want {
		t.Fatalf("Commit = %v, want %v", d, want)
	}

	fi, err := os.Stat(s.BlobPath(d))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o444 {
		t.Errorf("blob mode = %v, want 0444", perm)
	}
	if got, _ := os.ReadFile(s.BlobPath(d)); !bytes.Equal(got, content) {
		t.Errorf("blob content = %q, want %q", got, content)
	}
	if size, err := s.Stat(d); err != nil || size != int64(len(content)) {
		t.Errorf("Stat = %d, %v", size, err)
	}
	if tmp := tempFiles(t, s); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}

	// Cancel after Commit is harmless: the blob stays.
	if err := w.Cancel(); err != nil {
		t.Errorf("Cancel after Commit: %v", err)
	}
	if _, err := s.Stat(d); err != nil {
		t.Errorf("blob gone after Cancel: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if _, err := w.Commit(context.Background(), -1, Digest{}); err == nil {
		t.Error("second Commit succeeded")
	}
}

func TestWriterCommitMismatch(t *testing.T) {
	content := []byte("hello")
	tests := []struct {
		name    string
		size    int64
		digest  Digest
		wantErr error
	}{
		{name: "short size", size: 4, wantErr: ErrSizeMismatch},
		{name: "long size", size: 6, digest: DigestOf(content), wantErr: ErrSizeMismatch},
		{name: "zero size", size: 0, wantErr: ErrSizeMismatch},
		{name: "digest", size: -1, digest: DigestOf([]byte("other")), wantErr: ErrDigestMismatch},
		{name: "digest with right size", size: 5, digest: DigestOf([]byte("hellO")), wantErr: ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t)
			w, err := s.Create()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Cancel()
			if _, err := w.Write(content); err != nil {
				t.Fatal(err)
			}
			_, err = w.Commit(context.Background(), tt.size, tt.digest)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Commit error = %v, want %v", err, tt.wantErr)
			}
			if _, err := os.Stat(w.TempPath()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temp file still there: %v", err)
			}
			if blobs, err := s.List(); err != nil || len(blobs) != 0 {
				t.Errorf("List = %v, %v; want no blobs", blobs, err)
			}
			if _, err := s.Stat(DigestOf(content)); !errors.Is(err, ErrNotFound) {
				t.Errorf("Stat = %v, want ErrNotFound", err)
			}
			if err := w.Cancel(); err != nil {
				t.Errorf("Cancel after failed Commit: %v", err)
			}
		})
	}
}

func TestWriterCancel(t *testing.T) {
	s := newTestStore(t)
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abandoned")); err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.TempPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file still there: %v", err)
	}
	if err := w.Cancel(); err != nil {
		t.Errorf("second Cancel: %v", err)
	}
	if _, err := w.Commit(context.Background(), -1, Digest{}); err == nil {
		t.Error("Commit after Cancel succeeded")
	}
}

func TestWriterCommitCancelledContext(t *testing.T) {
	s := newTestStore(t)
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()
	w.Write([]byte("hello"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Commit(ctx, -1, Digest{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit = %v, want context.Canceled", err)
	}
	if blobs, _ := s.List(); len(blobs) != 0 {
		t.Errorf("blobs after cancelled commit: %v", blobs)
	}
	if tmp := tempFiles(t, s); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestCommitExistingBlob(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	d1, _, err := s.Put(ctx, strings.NewReader("same"))
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(s.BlobPath(d1))
	if err != nil {
		t.Fatal(err)
	}
	d2, _, err := s.Put(ctx, strings.NewReader("same"))
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Fatalf("digests differ: %v %v", d1, d2)
	}
	after, err := os.Stat(s.BlobPath(d1))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("second commit replaced the existing blob instead of keeping it")
	}
	if tmp := tempFiles(t, s); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestResumeSuspendCommit(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := DigestOf([]byte("http://mirror/rhcos.iso"))
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<12)

	w, err := s.Resume(key)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != 0 {
		t.Fatalf("fresh partial has %d bytes", w.Size())
	}
	w.Write(content[:1000])
	if err := w.Suspend(); err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(); err != nil { // deferred Cancel after Suspend: no-op
		t.Fatal(err)
	}
	// A new process: Sweep at start keeps the partial, Resume continues it.
	if _, err := s.Sweep(0, func(Digest) bool { return true }); err != nil {
		t.Fatal(err)
	}
	w, err = s.Resume(key)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != 1000 {
		t.Fatalf("resumed partial has %d bytes, want 1000", w.Size())
	}
	w.Write(content[1000:])
	d, err := w.Commit(context.Background(), int64(len(content)), DigestOf(content))
	if err != nil {
		t.Fatalf("commit of resumed download: %v", err)
	}
	if d != DigestOf(content) {
		t.Fatal("resumed blob has the wrong digest")
	}
	if w2, _ := s.Resume(key); w2.Size() != 0 {
		t.Fatal("partial survived its commit")
	} else {
		w2.Cancel()
	}

	// Reset starts over; Cancel removes the partial.
	w, _ = s.Resume(key)
	w.Write([]byte("garbage"))
	if err := w.Reset(); err != nil || w.Size() != 0 {
		t.Fatalf("Reset: size %d, %v", w.Size(), err)
	}
	w.Write(content)
	if err := w.Cancel(); err != nil {
		t.Fatal(err)
	}
	if w2, _ := s.Resume(key); w2.Size() != 0 {
		t.Fatal("cancelled partial survived")
	}
}
