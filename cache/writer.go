package cache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// errWriterDone is returned by a Writer used after Commit or Cancel.
var errWriterDone = errors.New("cache: writer already committed or cancelled")

// Writer writes one blob to a temp file, hashing as it goes. It is not safe
// for concurrent use. Every Writer ends in Commit or Cancel; deferring
// Cancel right after Create covers every error path.
type Writer struct {
	s         *Store
	f         *os.File // nil once closed
	path      string   // temp file, or the partial of key
	key       Digest   // resumable download's key; zero for Create
	resumable bool
	validator string // of the source the partial's bytes came from
	h         hash.Hash
	size      int64
	limit     int64 // < 0: none
	done      bool  // committed or cancelled; the temp file is gone
}

func newWriter(s *Store) (*Writer, error) {
	f, err := os.CreateTemp(blobsDir(s.root), tempPattern)
	if err != nil {
		return nil, fmt.Errorf("cache: create: %w", err)
	}
	return &Writer{s: s, f: f, path: f.Name(), h: sha256.New(), limit: -1}, nil
}

// resumeWriter opens (or creates) the resumable download file of key,
// re-hashes what it already holds, so writing continues where an earlier
// process stopped and Size is what is on disk, and reads its validator.
func resumeWriter(s *Store, key Digest) (*Writer, error) {
	p := partialPath(s.root, key)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, sharedFileMode)
	if err != nil {
		return nil, fmt.Errorf("cache: resume: %w", err)
	}
	w := &Writer{s: s, f: f, path: p, key: key, resumable: true, h: sha256.New(), limit: -1}
	n, err := io.Copy(w.h, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cache: resume: %w", err)
	}
	w.size = n
	if n == 0 {
		// A validator describes bytes; with none there is nothing to
		// resume, and a stale one must not vouch for what comes next.
		err = removeValidator(s.root, key)
	} else {
		w.validator, err = readValidator(s.root, key)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cache: resume: %w", err)
	}
	return w, nil
}

// Reset discards everything written so far and the validator, for a
// download that must start over (the server cannot resume, or the source
// changed). The validator goes first, so a crash in between leaves bytes
// without a validator, which are never resumed.
func (w *Writer) Reset() error {
	if w.done {
		return errWriterDone
	}
	if err := w.clearValidator(); err != nil {
		return fmt.Errorf("cache: reset: %w", err)
	}
	if err := w.f.Truncate(0); err != nil {
		return fmt.Errorf("cache: reset: %w", err)
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("cache: reset: %w", err)
	}
	w.h.Reset()
	w.size = 0
	return nil
}

// Limit makes every later Write that would take the blob past n bytes fail
// with an error wrapping ErrTooLarge, writing none of its bytes, and Commit
// refuse a blob larger than n (a resumed partial may already be). A
// negative n removes the limit; there is none by default.
func (w *Writer) Limit(n int64) {
	if n < 0 {
		n = -1
	}
	w.limit = n
}

// Suspend closes the Writer but keeps what it wrote and its validator, so
// a later Resume with the same key continues from there. After Suspend the
// Writer is finished; a deferred Cancel does nothing.
func (w *Writer) Suspend() error {
	if w.done {
		return nil
	}
	w.done = true
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		return fmt.Errorf("cache: suspend: %w", err)
	}
	return nil
}

// Write appends p to the blob. Errors wrap the cause, so a full disk is
// errors.Is(err, syscall.ENOSPC); see also Limit.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	if w.limit >= 0 && int64(len(p)) > w.limit-w.size {
		return 0, fmt.Errorf("cache: write: %d more bytes would take the blob past its limit of %d: %w", len(p), w.limit, ErrTooLarge)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("cache: write: %w", err)
	}
	return n, nil
}

// Size returns the number of bytes written so far. For a resumed download
// it counts the bytes found on disk, which Resume re-hashed.
func (w *Writer) Size() int64 { return w.size }

// TempPath returns the temp file's path, so a caller can inspect the bytes
// (for example parse an ISO) before committing. The file must not be
// modified or renamed by the caller.
func (w *Writer) TempPath() string { return w.path }

// Sync flushes written bytes to stable storage, typically before a caller
// reads them back through TempPath.
func (w *Writer) Sync() error {
	if w.done {
		return errWriterDone
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("cache: sync: %w", err)
	}
	return nil
}

// Commit makes the written bytes a blob and returns their digest. In order:
// fsync; check the size (expectedSize < 0 accepts any) and the digest
// (a zero expected accepts any), returning errors wrapping ErrSizeMismatch
// or ErrDigestMismatch; mark the file read-only; rename it to its content
// address; fsync the directories. If an intact blob with that digest already
// exists, the temp file is removed instead, so Commit is idempotent and
// concurrent writers of the same content end with one blob. A resumable
// download's validator is removed after the rename. A blob larger than the
// Writer's Limit is refused with ErrTooLarge. On any error the temp file
// (and validator) is removed and the Writer is finished.
func (w *Writer) Commit(ctx context.Context, expectedSize int64, expected Digest) (Digest, error) {
	if w.done {
		return Digest{}, errWriterDone
	}
	d, err := w.commit(ctx, expectedSize, expected)
	if err != nil {
		w.Cancel()
		return Digest{}, err
	}
	w.done = true
	if w.resumable {
		// The blob is stored: a validator left behind by a failure here
		// describes no bytes. Resume ignores it for an empty partial and
		// Sweep removes it.
		_ = removeValidator(w.s.root, w.key)
	}
	return d, nil
}

func (w *Writer) commit(ctx context.Context, expectedSize int64, expected Digest) (Digest, error) {
	if err := ctx.Err(); err != nil {
		return Digest{}, fmt.Errorf("cache: commit: %w", err)
	}
	var d Digest
	w.h.Sum(d[:0])
	if expectedSize >= 0 && w.size != expectedSize {
		return Digest{}, fmt.Errorf("cache: commit %s: got %d bytes, want %d: %w", d, w.size, expectedSize, ErrSizeMismatch)
	}
	if !expected.IsZero() && d != expected {
		return Digest{}, fmt.Errorf("cache: commit: got %s, want %s: %w", d, expected, ErrDigestMismatch)
	}
	if w.limit >= 0 && w.size > w.limit {
		return Digest{}, fmt.Errorf("cache: commit %s: %d bytes, limit %d: %w", d, w.size, w.limit, ErrTooLarge)
	}
	if err := w.f.Sync(); err != nil {
		return Digest{}, fmt.Errorf("cache: commit %s: %w", d, err)
	}
	if err := w.f.Chmod(0o444); err != nil {
		return Digest{}, fmt.Errorf("cache: commit %s: %w", d, err)
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return Digest{}, fmt.Errorf("cache: commit %s: %w", d, err)
	}
	if err := ctx.Err(); err != nil {
		return Digest{}, fmt.Errorf("cache: commit %s: %w", d, err)
	}

	target := blobPath(w.s.root, d)
	if fi, err := os.Lstat(target); err == nil && fi.Mode().IsRegular() && fi.Size() == w.size {
		// Already stored (by an earlier or concurrent writer). A file of the
		// wrong size is damaged and gets replaced by the rename below.
		if err := os.Remove(w.path); err != nil {
			return Digest{}, fmt.Errorf("cache: commit %s: %w", d, err)
		}
		w.done = true
		return d, nil
	}

	fan := fanoutDir(w.s.root, d)
	if err := os.MkdirAll(fan, dirMode); err != nil {
		return Digest{}, fmt.Errorf("cache: commit %s: %w", d, err)
	}
	// Rename atomically replaces a target that appeared meanwhile; with
	// identical content that is harmless, and readers keep their inode.
	if err := os.Rename(w.path, target); err != nil {
		return Digest{}, fmt.Errorf("cache: commit %s: %w", d, err)
	}
	w.done = true // the temp file no longer exists under its name
	// Persist the new directory entry, and the fan-out directory's own
	// entry in case MkdirAll just created it.
	for _, dir := range []string{fan, filepath.Dir(fan)} {
		if err := syncDir(dir); err != nil {
			return Digest{}, fmt.Errorf("cache: commit %s: %w", d, err)
		}
	}
	return d, nil
}

// Cancel abandons the blob and removes the temp file; for a resumable
// download, its validator and then the partial. It is harmless after
// Commit, Suspend or a previous Cancel, so callers defer it.
func (w *Writer) Cancel() error {
	var errs []error
	if w.f != nil {
		if err := w.f.Close(); err != nil && !errors.Is(err, fs.ErrClosed) {
			errs = append(errs, err)
		}
		w.f = nil
	}
	if !w.done {
		w.done = true
		if w.resumable {
			if err := removeValidator(w.s.root, w.key); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cache: cancel: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory so renames and new entries in it survive a
// crash.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
