package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Store is a content-addressed blob store rooted at a directory; see
// paths.go for the layout. Blobs are immutable once committed. A Store is
// safe for concurrent use, also by several Writers committing the same
// content at once.
type Store struct {
	root string
}

// OpenStore creates the directory tree under root if needed and returns a
// Store for it. It does not open the index; see OpenIndex(s.IndexPath()).
func OpenStore(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("cache: open store: empty root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("cache: open store %s: %w", root, err)
	}
	if err := os.MkdirAll(blobsDir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("cache: open store: %w", err)
	}
	return &Store{root: abs}, nil
}

// Root returns the absolute root directory.
func (s *Store) Root() string { return s.root }

// BlobPath returns where the blob for d lives (or would live).
func (s *Store) BlobPath(d Digest) string { return blobPath(s.root, d) }

// IndexPath returns <root>/index.db.
func (s *Store) IndexPath() string { return indexPath(s.root) }

// Stat returns the size of the committed blob d, or an error wrapping
// ErrNotFound.
func (s *Store) Stat(d Digest) (int64, error) {
	fi, err := os.Stat(s.BlobPath(d))
	if err != nil {
		return 0, notFound("stat", d, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("cache: stat %s: not a regular file", d)
	}
	return fi.Size(), nil
}

// Open opens the committed blob d for reading and returns it with its size.
// Every call returns a new *os.File with its own file position: sendfile
// reads from that position, so files must never be shared between readers.
// The caller closes it.
func (s *Store) Open(d Digest) (*os.File, int64, error) {
	f, err := os.Open(s.BlobPath(d))
	if err != nil {
		return nil, 0, notFound("open", d, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("cache: open %s: %w", d, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("cache: open %s: not a regular file", d)
	}
	return f, fi.Size(), nil
}

// Create starts a new blob. The caller writes to the Writer and then calls
// Commit; deferring Cancel cleans up on every other path.
func (s *Store) Create() (*Writer, error) {
	return newWriter(s)
}

// Put stores everything r yields and returns its digest and size. It is
// meant for small values and tests; large downloads should use Create so
// they can check the expected size and digest.
func (s *Store) Put(ctx context.Context, r io.Reader) (Digest, int64, error) {
	w, err := s.Create()
	if err != nil {
		return Digest{}, 0, err
	}
	defer w.Cancel()
	if _, err := io.Copy(w, ctxReader{ctx: ctx, r: r}); err != nil {
		return Digest{}, 0, fmt.Errorf("cache: put: %w", err)
	}
	d, err := w.Commit(ctx, -1, Digest{})
	if err != nil {
		return Digest{}, 0, err
	}
	return d, w.Size(), nil
}

// Remove deletes the committed blob d. It returns an error wrapping
// ErrNotFound if there is no such blob. Readers that already opened the blob
// keep reading it until they close it.
func (s *Store) Remove(d Digest) error {
	if err := os.Remove(s.BlobPath(d)); err != nil {
		return notFound("remove", d, err)
	}
	return nil
}

// List returns the digests of all committed blobs, in hex order. Temp files
// and stray names are skipped.
func (s *Store) List() ([]Digest, error) {
	var out []Digest
	err := s.walkBlobs(func(d Digest) error {
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PartialMaxAge is how long an untouched resumable download is kept.
const PartialMaxAge = 7 * 24 * time.Hour

// Resume returns a Writer for the resumable download named key (for
// example a digest of the source URL). It continues the file an earlier
// Writer of the same key left behind with Suspend, or after a crash; its
// Size says how much is there. Commit and Cancel work as for Create.
func (s *Store) Resume(key Digest) (*Writer, error) { return resumeWriter(s, key) }

// Sweep removes temp files (abandoned writes) last modified more than
// olderThan ago, and every committed blob for which keep returns false; a
// nil keep keeps every blob. It returns the number of files removed, and
// keeps going past individual failures, returning them joined.
//
// A blob committed but not yet recorded in the index is unreferenced, and
// so is a temp file of a write in progress if olderThan is small. Run Sweep
// when no ingest is in flight (at startup), or make keep account for them.
// Resumable downloads are removed only after PartialMaxAge untouched.
func (s *Store) Sweep(olderThan time.Duration, keep func(Digest) bool) (int, error) {
	removed := 0
	var errs []error
	remove := func(p string) {
		err := os.Remove(p)
		switch {
		case err == nil:
			removed++
		case !errors.Is(err, fs.ErrNotExist): // gone already: someone else won
			errs = append(errs, fmt.Errorf("cache: sweep: %w", err))
		}
	}

	dir := blobsDir(s.root)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("cache: sweep: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	partialCutoff := time.Now().Add(-PartialMaxAge)
	for _, e := range entries {
		partial := isPartialName(e.Name())
		if !isTempName(e.Name()) && !partial {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("cache: sweep: %w", err))
			}
			continue
		}
		if (!partial && !fi.ModTime().After(cutoff)) || (partial && !fi.ModTime().After(partialCutoff)) {
			remove(filepath.Join(dir, e.Name()))
		}
	}

	if keep != nil {
		err := s.walkBlobs(func(d Digest) error {
			if !keep(d) {
				remove(s.BlobPath(d))
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// walkBlobs calls fn for every committed blob, in hex order.
func (s *Store) walkBlobs(fn func(Digest) error) error {
	dir := blobsDir(s.root)
	fans, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cache: list blobs: %w", err)
	}
	for _, fan := range fans {
		if !fan.IsDir() || !isFanoutName(fan.Name()) {
			continue
		}
		blobs, err := os.ReadDir(filepath.Join(dir, fan.Name()))
		if err != nil {
			return fmt.Errorf("cache: list blobs: %w", err)
		}
		for _, b := range blobs {
			if !b.Type().IsRegular() {
				continue
			}
			d, ok := digestFromBlobName(fan.Name(), b.Name())
			if !ok {
				continue
			}
			if err := fn(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// notFound turns a missing file into ErrNotFound and wraps other errors.
func notFound(op string, d Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache: %s %s: %w", op, d, ErrNotFound)
	}
	return fmt.Errorf("cache: %s %s: %w", op, d, err)
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
