package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// putBlob stores b and returns its digest.
func putBlob(t *testing.T, s *Store, b []byte) Digest {
	t.Helper()
	d, _, err := s.Put(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// flipByte changes one byte of the committed blob d in place, as bit rot
// would.
func flipByte(t *testing.T, s *Store, d Digest, at int64) {
	t.Helper()
	p := s.BlobPath(d)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b[:], at); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyAndQuarantine(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	content := bytes.Repeat([]byte("rhcos "), 500_000) // 3 MB: several chunks
	d := putBlob(t, s, content)
	if err := s.Verify(ctx, d, 0); err != nil {
		t.Fatalf("Verify of an intact blob: %v", err)
	}

	// Served while it rots: an open reader keeps its file.
	reader, _, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	flipByte(t, s, d, int64(len(content)-10))
	if err := s.Verify(ctx, d, 0); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Verify of a rotten blob = %v, want ErrDigestMismatch", err)
	}
	if err := s.Quarantine(d); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(d); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after Quarantine = %v, want ErrNotFound", err)
	}
	if err := s.Verify(ctx, d, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Verify after Quarantine = %v, want ErrNotFound", err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("List after Quarantine = %v", list)
	}
	q := filepath.Join(s.Root(), "quarantine", d.Hex())
	got, err := os.ReadFile(q)
	if err != nil || len(got) != len(content) {
		t.Fatalf("quarantined file: %d bytes, %v", len(got), err)
	}
	if n, err := reader.ReadAt(make([]byte, 6), 0); n != 6 || err != nil {
		t.Errorf("open reader after Quarantine: %d, %v", n, err)
	}
	if err := s.Quarantine(d); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Quarantine = %v, want ErrNotFound", err)
	}

	// Sweep keeps it for QuarantineMaxAge after it was quarantined, even
	// though the bytes are older.
	if _, err := s.Sweep(time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(q); err != nil {
		t.Fatalf("Sweep removed a fresh quarantined blob: %v", err)
	}
	old := time.Now().Add(-QuarantineMaxAge - time.Minute)
	if err := os.Chtimes(q, old, old); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sweep(time.Hour, nil); err != nil || n != 1 {
		t.Errorf("Sweep = %d, %v; want the old quarantined blob removed", n, err)
	}
	if _, err := os.Stat(q); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old quarantined blob survived Sweep: %v", err)
	}
}

func TestVerifyEmptyBlobAndCancel(t *testing.T) {
	s := newTestStore(t)
	empty := putBlob(t, s, nil)
	if err := s.Verify(context.Background(), empty, 1); err != nil {
		t.Fatalf("Verify of the empty blob: %v", err)
	}
	d := putBlob(t, s, bytes.Repeat([]byte("x"), 4<<20))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Verify(ctx, d, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with a cancelled context = %v", err)
	}
	// Cancelled while pacing: 1 byte/s would take weeks.
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Verify(ctx, d, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Verify at 1 byte/s past its deadline = %v", err)
	}
}

// The rate bounds the speed from above: 20 MiB at 10 MiB/s take about two
// seconds. Only the lower bound is asserted; a busy machine may be slower.
func TestVerifyRate(t *testing.T) {
	s := newTestStore(t)
	d := putBlob(t, s, bytes.Repeat([]byte("0123456789abcdef"), 20<<20/16))
	start := time.Now()
	if err := s.Verify(context.Background(), d, 10<<20); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Errorf("Verify of 20 MiB at 10 MiB/s took %v, want at least ~1.5s", el)
	}
}
