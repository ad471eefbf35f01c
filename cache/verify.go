package cache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// verifyChunk is how much Verify hashes between two pacing decisions.
const verifyChunk = 1 << 20

// QuarantineMaxAge is how long Sweep keeps what was quarantined (and
// indexes moved aside by OpenIndex) for someone to inspect.
const QuarantineMaxAge = 24 * time.Hour

// Verify re-reads the committed blob d and checks that its bytes still hash
// to d, for a background scrub. It reads at most bytesPerSecond on average
// (0 or less: as fast as the disk goes), sleeping between 1 MiB chunks, so a
// scrub does not starve the readers being served. It returns nil when the
// blob is intact, an error wrapping ErrDigestMismatch when its content
// rotted (then Quarantine it), ErrNotFound when there is no such blob, and
// ctx's error when ctx ends first.
func (s *Store) Verify(ctx context.Context, d Digest, bytesPerSecond int64) error {
	f, _, err := s.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, verifyChunk)
	start := time.Now()
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cache: verify %s: %w", d, err)
		}
		n, err := io.ReadFull(f, buf)
		h.Write(buf[:n])
		done += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("cache: verify %s: %w", d, err)
		}
		if err := pace(ctx, start, done, bytesPerSecond); err != nil {
			return fmt.Errorf("cache: verify %s: %w", d, err)
		}
	}
	var got Digest
	h.Sum(got[:0])
	if got != d {
		return fmt.Errorf("cache: verify %s: content hashes to %s: %w", d, got, ErrDigestMismatch)
	}
	return nil
}

// pace sleeps until done bytes are due at rate bytes per second since
// start, or until ctx ends.
func pace(ctx context.Context, start time.Time, done, rate int64) error {
	if rate <= 0 {
		return nil
	}
	due := start.Add(time.Duration(float64(done) / float64(rate) * float64(time.Second)))
	wait := time.Until(due)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Quarantine takes the blob d out of service: it moves it from the blob
// tree to quarantine/<hex> in one rename, so Open and Stat report
// ErrNotFound from then on and the bytes stay for inspection. Readers that
// already have it open keep reading it. Sweep deletes it QuarantineMaxAge
// later. It returns an error wrapping ErrNotFound if there is no such blob.
// The caller also drops what refers to d (Index.DeleteBase, metadata).
func (s *Store) Quarantine(d Digest) error {
	if err := quarantineFile(s.root, s.BlobPath(d), quarantinePath(s.root, d)); err != nil {
		return notFound("quarantine", d, err)
	}
	return nil
}

// quarantineFile moves src to dst in quarantine/ and dates it now, since
// Sweep ages quarantined files by their modification time.
func quarantineFile(root, src, dst string) error {
	dir := quarantineDir(root)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	now := time.Now()
	if err := os.Chtimes(dst, now, now); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, d := range []string{filepath.Dir(src), dir} {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}
