package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Sweep tidies the store; it returns the number of files removed, and keeps
// going past individual failures, returning them joined. It removes:
//
//   - files being written (.tmp-* in blobs/sha256 and records/) and copies
//     OpenIndex was checking, last modified more than olderThan ago;
//   - resumable downloads untouched for PartialMaxAge, with their
//     validators, and validators whose partial is gone;
//   - quarantined blobs and records, and indexes OpenIndex moved aside,
//     QuarantineMaxAge after they were moved;
//   - every committed blob for which keep returns false, unless a valid
//     record (see Store.Records) names it. A nil keep keeps every blob. If
//     the records cannot be read, no blob is removed.
//
// keep usually comes from Index.Referenced, which covers the index only;
// Sweep adds the records itself, so blobs survive an index that was
// recreated and not yet rebuilt. A blob committed but not yet recorded is
// unreferenced, and so is a temp file of a write in progress if olderThan
// is small: run Sweep when no ingest is in flight (at startup), or make
// keep account for them.
func (s *Store) Sweep(olderThan time.Duration, keep func(Digest) bool) (int, error) {
	sw := sweeper{}
	now := time.Now()
	cutoff := now.Add(-olderThan)
	sw.blobsDir(s.root, cutoff, now.Add(-PartialMaxAge))
	sw.tempFiles(recordsDir(s.root), cutoff)
	sw.root(s.root, cutoff, now.Add(-QuarantineMaxAge))
	sw.quarantine(s.root, now.Add(-QuarantineMaxAge))
	if keep != nil {
		sw.blobs(s, keep)
	}
	return sw.removed, errors.Join(sw.errs...)
}

// sweeper counts what Sweep removed and collects its errors.
type sweeper struct {
	removed int
	errs    []error
}

func (sw *sweeper) fail(err error) {
	sw.errs = append(sw.errs, fmt.Errorf("cache: sweep: %w", err))
}

func (sw *sweeper) remove(p string) {
	err := os.Remove(p)
	switch {
	case err == nil:
		sw.removed++
	case !errors.Is(err, fs.ErrNotExist): // gone already: someone else won
		sw.fail(err)
	}
}

// list reads dir; a missing directory is empty.
func (sw *sweeper) list(dir string) []fs.DirEntry {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		sw.fail(err)
	}
	return entries
}

// modTime returns e's modification time; ok is false if e vanished or
// cannot be read (reported).
func (sw *sweeper) modTime(e fs.DirEntry) (time.Time, bool) {
	fi, err := e.Info()
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			sw.fail(err)
		}
		return time.Time{}, false
	}
	return fi.ModTime(), true
}

// blobsDir removes old temp files, partials and validators.
func (sw *sweeper) blobsDir(root string, cutoff, partialCutoff time.Time) {
	dir := blobsDir(root)
	type sidecar struct {
		key  Digest
		name string
		mod  time.Time
	}
	var sidecars []sidecar
	live := map[Digest]bool{}
	for _, e := range sw.list(dir) {
		name := e.Name()
		key, isSidecar, isPartial := partialKeyFromName(name)
		if !isTempName(name) && !isPartial {
			continue
		}
		mod, ok := sw.modTime(e)
		switch {
		case !ok:
		case isSidecar:
			sidecars = append(sidecars, sidecar{key, name, mod})
		case isPartial && mod.After(partialCutoff):
			live[key] = true
		case isPartial:
			sw.remove(filepath.Join(dir, name))
		case !mod.After(cutoff):
			sw.remove(filepath.Join(dir, name))
		}
	}
	// A validator goes with its partial. Resume creates the partial before
	// a validator can be set, so one without a partial describes nothing.
	for _, sc := range sidecars {
		if !live[sc.key] {
			sw.remove(filepath.Join(dir, sc.name))
		}
	}
}

// tempFiles removes files being written in dir, older than cutoff.
func (sw *sweeper) tempFiles(dir string, cutoff time.Time) {
	for _, e := range sw.list(dir) {
		if !isTempName(e.Name()) {
			continue
		}
		if mod, ok := sw.modTime(e); ok && !mod.After(cutoff) {
			sw.remove(filepath.Join(dir, e.Name()))
		}
	}
}

// root removes stale index check copies and old moved-aside indexes.
func (sw *sweeper) root(root string, cutoff, quarantineCutoff time.Time) {
	for _, e := range sw.list(root) {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if isCheckCopyName(name) {
			if mod, ok := sw.modTime(e); ok && !mod.After(cutoff) {
				sw.remove(filepath.Join(root, name))
			}
			continue
		}
		// The time in the name says when it was moved aside; its
		// modification time is when it was last written, maybe long ago.
		if t, ok := corruptIndexTime(name); ok && !t.After(quarantineCutoff) {
			sw.remove(filepath.Join(root, name))
		}
	}
}

// quarantine removes files quarantined before cutoff.
func (sw *sweeper) quarantine(root string, cutoff time.Time) {
	dir := quarantineDir(root)
	for _, e := range sw.list(dir) {
		if !e.Type().IsRegular() {
			continue
		}
		if mod, ok := sw.modTime(e); ok && !mod.After(cutoff) {
			sw.remove(filepath.Join(dir, e.Name()))
		}
	}
}

// blobs removes committed blobs neither keep nor a record wants.
func (sw *sweeper) blobs(s *Store, keep func(Digest) bool) {
	recs, _, err := scanRecords(s.root, false)
	if err != nil {
		sw.fail(fmt.Errorf("keeping every blob: %w", err))
		return
	}
	named := make(map[Digest]bool, len(recs))
	for _, r := range recs {
		named[r.Digest] = true
	}
	err = s.walkBlobs(func(d Digest) error {
		if !keep(d) && !named[d] {
			sw.remove(s.BlobPath(d))
		}
		return nil
	})
	if err != nil {
		sw.errs = append(sw.errs, err)
	}
}
