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
// records/ and quarantine/ are created when first written.
func OpenStore(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("cache: open store: empty root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("cache: open store %s: %w", root, err)
	}
	if err := os.MkdirAll(blobsDir(abs), dirMode); err != nil {
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
// Writer of the same key left behind with Suspend, or after a crash: Size
// says how many bytes are on disk (Resume re-hashes them) and Validator
// which version of the source they came from. Continue only when both are
// set; otherwise Reset. Commit and Cancel work as for Create. Use at most
// one Writer per key at a time.
func (s *Store) Resume(key Digest) (*Writer, error) { return resumeWriter(s, key) }

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
