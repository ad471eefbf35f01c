package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// Records are the durable truth about base images: one small JSON file per
// base image in records/, beside the blobs (see paths.go). The index holds
// the same BaseRecords for fast lookups, but a blob alone does not say which
// (type, version, arch, URL) it is, so when the index has to be recreated
// the records are what it is rebuilt from, without downloading anything
// again. Index.PutBase writes a record before its index entry and
// Index.DeleteBase removes it after, so every index entry has a record.

// Bounds of a base record; a record outside them is invalid.
const (
	maxKeyPart       = 128      // bytes in each of Type, Version, Arch
	maxRecordURL     = 16 << 10 // bytes in URL
	maxOpenshiftVer  = 128      // bytes in OpenshiftVersion
	maxRecordFileLen = 64 << 10 // bytes in a record file
)

// ValidateRecord checks what PutBase accepts and Store.Records returns:
// key parts non-empty, at most 128 bytes of UTF-8 without control
// characters or path separators; a non-zero digest; a size ≥ 0; a URL of at
// most 16 KiB and an OpenShift version of at most 128 bytes. Errors wrap
// ErrInvalidRecord.
func ValidateRecord(r BaseRecord) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("cache: base record %q: %s: %w", truncate(r.Key.String()), fmt.Sprintf(format, args...), ErrInvalidRecord)
	}
	for _, p := range []struct{ name, v string }{{"type", r.Key.Type}, {"version", r.Key.Version}, {"arch", r.Key.Arch}} {
		switch {
		case p.v == "":
			return bad("empty %s", p.name)
		case len(p.v) > maxKeyPart:
			return bad("%s longer than %d bytes", p.name, maxKeyPart)
		case !utf8.ValidString(p.v):
			return bad("%s is not UTF-8", p.name)
		case strings.ContainsFunc(p.v, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '/' || c == '\\' }):
			return bad("%s holds a control character or path separator", p.name)
		}
	}
	switch {
	case r.Digest.IsZero():
		return bad("no digest")
	case r.Size < 0:
		return bad("negative size %d", r.Size)
	case len(r.URL) > maxRecordURL:
		return bad("URL longer than %d bytes", maxRecordURL)
	case len(r.OpenshiftVersion) > maxOpenshiftVer:
		return bad("OpenShift version longer than %d bytes", maxOpenshiftVer)
	}
	return nil
}

// writeRecord stores r durably in its record file: temp file, fsync,
// rename, fsync of the directory.
func writeRecord(root string, r BaseRecord) error {
	if err := ValidateRecord(r); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("cache: write record %s: %w", r.Key, err)
	}
	dir := recordsDir(root)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("cache: write record %s: %w", r.Key, err)
	}
	if err := writeFileAtomic(dir, recordName(r.Key), b); err != nil {
		return fmt.Errorf("cache: write record %s: %w", r.Key, err)
	}
	return nil
}

// removeRecord deletes k's record file; a missing file is not an error.
func removeRecord(root string, k BaseKey) error {
	err := os.Remove(recordPath(root, k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = syncDir(recordsDir(root))
	}
	if err != nil {
		return fmt.Errorf("cache: remove record %s: %w", k, err)
	}
	return nil
}

// hasRecord reports whether k has a record file.
func hasRecord(root string, k BaseKey) (bool, error) {
	_, err := os.Lstat(recordPath(root, k))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("cache: record %s: %w", k, err)
	}
}

// readRecordFile reads and validates one record file named name.
func readRecordFile(dir, name string) (BaseRecord, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return BaseRecord{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecordFileLen+1))
	if err != nil {
		return BaseRecord{}, err
	}
	if len(b) > maxRecordFileLen {
		return BaseRecord{}, fmt.Errorf("cache: record %s: larger than %d bytes: %w", name, maxRecordFileLen, ErrInvalidRecord)
	}
	var r BaseRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return BaseRecord{}, fmt.Errorf("cache: record %s: %w: %w", name, ErrInvalidRecord, err)
	}
	if dec.More() {
		return BaseRecord{}, fmt.Errorf("cache: record %s: data after the record: %w", name, ErrInvalidRecord)
	}
	if err := ValidateRecord(r); err != nil {
		return BaseRecord{}, fmt.Errorf("cache: record %s: %w", name, err)
	}
	if recordName(r.Key) != name {
		return BaseRecord{}, fmt.Errorf("cache: record %s: holds key %s, which belongs in another file: %w", name, truncate(r.Key.String()), ErrInvalidRecord)
	}
	return r, nil
}

// scanRecords reads every record file. Files that fail validation are
// returned in bad and, if quarantine is set, moved to quarantine/. Read
// errors other than a file vanishing meanwhile fail the scan: a caller that
// sweeps on a partial view could delete blobs still needed.
func scanRecords(root string, quarantine bool) (recs []BaseRecord, bad []error, err error) {
	dir := recordsDir(root)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cache: records: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !isRecordName(name) {
			continue // temp files and strays; Sweep handles temp files
		}
		r, err := readRecordFile(dir, name)
		switch {
		case err == nil:
			recs = append(recs, r)
		case errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, ErrInvalidRecord):
			if quarantine {
				if qerr := quarantineFile(root, filepath.Join(dir, name), quarantineRecordPath(root, name)); qerr != nil {
					err = fmt.Errorf("%w; %w", err, qerr)
				} else {
					err = fmt.Errorf("%w (moved to %s)", err, quarantineRecordPath(root, name))
				}
			}
			bad = append(bad, err)
		default:
			return nil, nil, fmt.Errorf("cache: records: %w", err)
		}
	}
	slices.SortFunc(recs, func(a, b BaseRecord) int { return bytes.Compare(baseKeyRaw(a.Key), baseKeyRaw(b.Key)) })
	return recs, bad, nil
}

// Records returns the valid base records stored beside the blobs, ordered
// by type, version, arch. They outlive the index: after OpenIndex recreated
// it (IndexOpenInfo.Recovered), or whenever a record differs from the
// index entry of its key, the caller re-ingests the record's blob (checks
// it with Verify, rebuilds its metadata) and calls Index.PutBase.
//
// A record file that fails validation is moved to quarantine/ and reported
// in bad, one error (wrapping ErrInvalidRecord) per file, for the log; its
// blob is no longer protected from Sweep. err reports failures to read the
// directory, and then recs and bad are nil.
func (s *Store) Records() (recs []BaseRecord, bad []error, err error) {
	return scanRecords(s.root, true)
}

// writeFileAtomic makes dir/name hold exactly b, or leaves it as it was:
// temp file in dir, write, fsync, rename, fsync dir.
func writeFileAtomic(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	// Another pod's user in the same group reads it after a restart.
	err = f.Chmod(sharedFileMode)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}
