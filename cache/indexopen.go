package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"
)

// IndexOpenInfo says what OpenIndex found, for one log line.
type IndexOpenInfo struct {
	// Recovered is set when the index file could not be used: it was
	// moved to MovedTo and an empty index created in its place. The caller
	// logs that (with Reason) and rebuilds the index from Store.Records.
	Recovered bool
	MovedTo   string
	Reason    string // why the file was unusable; bounded, free of secrets
	// RecordsWritten counts record files written for index entries that
	// had none: the first start of a build that keeps records.
	RecordsWritten int
}

// OpenIndex opens the index at path (Store.IndexPath), or creates it.
// Base records are kept as files in the directory of path (see paths.go),
// so pass the store's index path.
//
// It locks the file first, so that a second process fails within about
// two seconds with an error wrapping ErrIndexLocked instead of waiting.
// It then checks the file before bbolt uses it: a copy is opened read-only
// in a short-lived child process (this executable again, see
// indexcheck.go) that runs bbolt's consistency check, reads the schema
// version and decodes every record; a file that makes bbolt panic, fault,
// loop or run out of memory there costs that child, not this process.
//
// A file that is empty, is not a bbolt database, fails the check, or has
// another schema version is unusable. The index only describes blobs that
// are still there, so rather than failing on every start, OpenIndex moves
// such a file aside to index.db.corrupt-<UTC time>, creates an empty index
// and says so in IndexOpenInfo; the caller then rebuilds. Errors that a
// new file would not cure (permissions, a full disk, the lock) are
// returned instead.
//
// Finally it writes the missing record files of index entries, so that
// every entry has one. On error, info still reports a file moved aside.
func OpenIndex(path string) (*Index, IndexOpenInfo, error) {
	var info IndexOpenInfo
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, info, fmt.Errorf("cache: open index %s: %w", path, err)
	}
	ix, err := openIndexFile(abs)
	if ce := (*unusableIndexError)(nil); errors.As(err, &ce) {
		info = IndexOpenInfo{Recovered: true, MovedTo: ce.movedTo, Reason: ce.reason}
		ix, err = openIndexFile(abs)
	}
	if err != nil {
		return nil, info, err
	}
	n, err := ix.backfillRecords()
	info.RecordsWritten = n
	if err != nil {
		ix.Close()
		return nil, info, fmt.Errorf("cache: open index %s: %w", abs, err)
	}
	return ix, info, nil
}

// unusableIndexError reports an index file that was moved aside.
type unusableIndexError struct {
	path, movedTo, reason string
}

func (e *unusableIndexError) Error() string {
	return fmt.Sprintf("cache: open index %s: %s (moved to %s)", e.path, e.reason, e.movedTo)
}

func (e *unusableIndexError) Unwrap() error { return ErrIndexCorrupt }

// openIndexFile opens path once: lock, check, bbolt, schema. An unusable
// file is moved aside while still locked, and reported as an
// *unusableIndexError.
func openIndexFile(path string) (*Index, error) {
	f, created, err := lockIndexFile(path)
	if err != nil {
		return nil, err
	}
	if !created {
		reason, err := checkIndexFile(f, filepath.Dir(path))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("cache: open index %s: %w", path, err)
		}
		if reason != "" {
			return nil, setIndexAside(path, reason, f.Close)
		}
	}

	// bbolt opens the file through OpenFile: handing it the locked file
	// keeps the lock held throughout, as flock(2) locks belong to the open
	// file and bbolt's own flock on it then succeeds at once.
	var db *bolt.DB
	p, err := protect(func() error {
		var err error
		db, err = bolt.Open(path, sharedFileMode, &bolt.Options{
			Timeout:  openTimeout,
			OpenFile: func(string, int, fs.FileMode) (*os.File, error) { return f, nil },
		})
		return err
	})
	switch {
	case p != nil:
		return nil, setIndexAside(path, fmt.Sprintf("bbolt panicked opening it: %v", clip(fmt.Sprint(p), maxReason)), f.Close)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		// bbolt closed f.
		return nil, setIndexAside(path, "bbolt cannot open it: "+err.Error(), func() error { return nil })
	case err != nil:
		return nil, fmt.Errorf("cache: open index %s: %w", path, err)
	}

	ix := &Index{db: db, path: path, root: filepath.Dir(path)}
	p, err = protect(func() error { return db.Update(initSchema) })
	if p != nil {
		ix.broken.Store(true)
		return nil, setIndexAside(path, fmt.Sprintf("bbolt panicked reading it: %v", clip(fmt.Sprint(p), maxReason)), ix.closeDB)
	}
	if se := (*schemaError)(nil); errors.As(err, &se) {
		return nil, setIndexAside(path, se.Error(), ix.closeDB)
	}
	if err != nil {
		ix.closeDB()
		return nil, fmt.Errorf("cache: open index %s: %w", path, err)
	}
	return ix, nil
}

// setIndexAside moves the unusable index at path aside, then calls
// release, which gives up the lock.
func setIndexAside(path, reason string, release func() error) error {
	movedTo, err := moveIndexAside(path)
	release()
	if err != nil {
		return fmt.Errorf("cache: open index %s: %s; moving it aside: %w", path, reason, err)
	}
	return &unusableIndexError{path: path, movedTo: movedTo, reason: reason}
}

// moveIndexAside renames path to a free index.db.corrupt-<time> name and
// makes the rename durable.
func moveIndexAside(path string) (string, error) {
	base := corruptIndexPath(path, time.Now())
	dst := base
	for i := 2; ; i++ {
		_, err := os.Lstat(dst)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", err
		}
		if i > 100 {
			return "", fmt.Errorf("%s: no free name", base)
		}
		dst = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	return dst, syncDir(filepath.Dir(path))
}

// schemaError marks a schema that is not this build's.
type schemaError struct{ err error }

func (e *schemaError) Error() string { return e.err.Error() }

// closeDB closes the database, waiting at most closeTimeout if a panic may
// have left bbolt's locks held.
func (ix *Index) closeDB() error {
	done := make(chan error, 1)
	go func() {
		p, err := protect(ix.db.Close)
		if p != nil {
			err = fmt.Errorf("%w: %v", ErrIndexCorrupt, p)
		}
		done <- err
	}()
	if !ix.broken.Load() {
		return <-done
	}
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return errCloseStuck
	}
}

var errCloseStuck = errors.New("bbolt still busy after a recovered panic")

// lockIndexFile opens path, creating it if missing, and takes an exclusive
// flock on it, retrying until openTimeout. created reports that this call
// made the (empty) file. The returned file is the one at path once locked:
// a file moved aside by another process while this one waited is let go.
func lockIndexFile(path string) (f *os.File, created bool, err error) {
	deadline := time.Now().Add(openTimeout)
	for {
		f, created, err = openOrCreate(path)
		if err != nil {
			return nil, false, fmt.Errorf("cache: open index %s: %w", path, err)
		}
		locked, err := tryLock(f, deadline)
		if err != nil {
			f.Close()
			return nil, false, fmt.Errorf("cache: open index %s: %w", path, err)
		}
		if !locked {
			f.Close()
			return nil, false, fmt.Errorf("cache: open index %s: %w (waited %v)", path, ErrIndexLocked, openTimeout)
		}
		same, err := isFileAt(f, path)
		if err != nil {
			f.Close()
			return nil, false, fmt.Errorf("cache: open index %s: %w", path, err)
		}
		if same {
			return f, created, nil
		}
		f.Close()
		if time.Now().After(deadline) {
			return nil, false, fmt.Errorf("cache: open index %s: %w (waited %v)", path, ErrIndexLocked, openTimeout)
		}
	}
}

// openOrCreate opens the regular file at path for reading and writing, or
// creates it, reporting which.
func openOrCreate(path string) (*os.File, bool, error) {
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err == nil {
			fi, err := f.Stat()
			if err == nil && !fi.Mode().IsRegular() {
				err = fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
			}
			if err != nil {
				f.Close()
				return nil, false, err
			}
			return f, false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, err
		}
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, sharedFileMode)
		if err == nil {
			return f, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
		// Created by someone else meanwhile: open theirs.
	}
	return nil, false, errors.New("created and removed again and again")
}

// tryLock takes an exclusive flock on f, polling until deadline, since
// flock(2) itself waits without a bound.
func tryLock(f *os.File, deadline time.Time) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EWOULDBLOCK), errors.Is(err, unix.EINTR):
		default:
			return false, fmt.Errorf("lock: %w", err)
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// isFileAt reports whether f is the file now at path.
func isFileAt(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	pi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, pi), nil
}
