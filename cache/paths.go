package cache

import (
	"path/filepath"
	"strings"
	"time"
)

// On-disk layout. This file is the only place that joins paths; every other
// file asks these functions.
//
//	<root>/                                   DATA_DIR
//	├── index.db                              bbolt index (see Index): a cache of records/ and the blobs
//	├── index.db.corrupt-20261126T140102Z     an index OpenIndex could not use, moved aside (UTC time);
//	│                                         Sweep removes it after QuarantineMaxAge
//	├── .index-check-<random>                 copy of index.db that OpenIndex checks, unlinked at once;
//	│                                         only where memfd_create is unavailable
//	├── records/                              recordsDir: one durable record per base image
//	│   ├── .tmp-<random>                     a record being written
//	│   └── <64 hex>.json                     BaseRecord as JSON; hex = SHA-256 of type NUL version NUL arch
//	├── quarantine/                           quarantineDir: kept for inspection, never served;
//	│   ├── <64 hex>                          a blob that failed Store.Verify (Store.Quarantine)
//	│   └── record-<64 hex>.json              a record file that failed validation (Store.Records)
//	│                                         Sweep removes both QuarantineMaxAge after they got here
//	└── blobs/
//	    └── sha256/                           blobsDir
//	        ├── .tmp-<random>                 a blob or validator being written
//	        ├── .partial-<64 hex>             a resumable download, named by its key (Resume)
//	        ├── .partial-<64 hex>.validator   its source's ETag or Last-Modified (SetValidator)
//	        ├── 3a/                           fan-out: first two hex characters
//	        │   └── 3a7bd3e2…<64 hex>         committed blob, mode 0444
//	        └── ff/
//	            └── ff01…<64 hex>
//
// Order of writes, so that a crash at any point leaves a state the next
// start repairs (records ⊇ index, and every record names a blob unless the
// blob was quarantined):
//
//	store a base:   blob committed ─▶ records/<key>.json ─▶ index entry   (Index.PutBase)
//	drop a base:    index entry ─▶ records/<key>.json ─▶ blob             (Index.DeleteBase, Store.Remove)
//	resume reset:   .validator removed ─▶ .partial truncated
//	cancel:         .validator removed ─▶ .partial removed
//	commit partial: .partial renamed to its address ─▶ .validator removed
//
// A validator is thus never left beside bytes it does not describe; at worst
// a partial loses its validator and the download starts over.
//
// Temp files live in the directory of their final name, on the same
// filesystem, so a rename publishes them atomically. The two-character
// fan-out keeps directories small. A blob, record or quarantine path is only
// ever built from a Digest, so no caller-supplied string reaches the
// filesystem.

const (
	indexFile  = "index.db"
	tempPrefix = ".tmp-"
	// tempPattern is the os.CreateTemp pattern for files being written.
	tempPattern = tempPrefix + "*"
	// partialPrefix names resumable downloads; they survive restarts.
	partialPrefix = ".partial-"
	// validatorSuffix names the sidecar holding a partial's validator.
	validatorSuffix = ".validator"
	// corruptInfix joins index.db and the UTC time it was moved aside.
	corruptInfix = ".corrupt-"
	// corruptTimeLayout is the time in a moved-aside index's name.
	corruptTimeLayout = "20060102T150405Z"
	// checkCopyPattern is the os.CreateTemp pattern of the copy of the
	// index that OpenIndex checks, when it cannot use a memfd.
	checkCopyPattern = ".index-check-*"
	recordSuffix     = ".json"
	// quarantineRecordPrefix marks a quarantined record file.
	quarantineRecordPrefix = "record-"
)

// partialPath is the resumable download file of key.
func partialPath(root string, key Digest) string {
	return filepath.Join(blobsDir(root), partialPrefix+key.Hex())
}

// validatorPath is the sidecar holding the validator of key's partial.
func validatorPath(root string, key Digest) string {
	return partialPath(root, key) + validatorSuffix
}

// partialKeyFromName parses a blobsDir entry name as a resumable download
// (".partial-<hex>") or its validator sidecar. ok is false for any other
// name.
func partialKeyFromName(name string) (key Digest, sidecar, ok bool) {
	rest, found := strings.CutPrefix(name, partialPrefix)
	if !found {
		return Digest{}, false, false
	}
	rest, sidecar = strings.CutSuffix(rest, validatorSuffix)
	if len(rest) != 64 || !isLowerHex(rest) {
		return Digest{}, false, false
	}
	key, err := ParseDigest(rest)
	return key, sidecar, err == nil
}

// blobsDir is the directory holding fan-out directories and temp files.
func blobsDir(root string) string {
	return filepath.Join(root, "blobs", "sha256")
}

// fanoutDir is the directory holding the blob for d.
func fanoutDir(root string, d Digest) string {
	return filepath.Join(blobsDir(root), d.Hex()[:2])
}

// blobPath is the content address of d.
func blobPath(root string, d Digest) string {
	h := d.Hex()
	return filepath.Join(blobsDir(root), h[:2], h)
}

// indexPath is the bbolt file.
func indexPath(root string) string {
	return filepath.Join(root, indexFile)
}

// corruptIndexPath is where an unusable index at path is moved at time t.
func corruptIndexPath(path string, t time.Time) string {
	return path + corruptInfix + t.UTC().Format(corruptTimeLayout)
}

// corruptIndexTime parses the time from a root entry name made by
// corruptIndexPath (possibly with a "-<n>" suffix added to make it unique).
func corruptIndexTime(name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, indexFile+corruptInfix)
	if !ok || len(rest) < len(corruptTimeLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(corruptTimeLayout, rest[:len(corruptTimeLayout)])
	return t, err == nil
}

// isCheckCopyName reports whether a root entry is a copy made by OpenIndex.
func isCheckCopyName(name string) bool {
	return strings.HasPrefix(name, checkCopyPattern[:len(checkCopyPattern)-1])
}

// recordsDir holds one record file per base image.
func recordsDir(root string) string {
	return filepath.Join(root, "records")
}

// recordName is the file name of k's record.
func recordName(k BaseKey) string {
	return DigestOf(baseKeyRaw(k)).Hex() + recordSuffix
}

// recordPath is the record file of k.
func recordPath(root string, k BaseKey) string {
	return filepath.Join(recordsDir(root), recordName(k))
}

// isRecordName reports whether a recordsDir entry is a record file.
func isRecordName(name string) bool {
	h, ok := strings.CutSuffix(name, recordSuffix)
	return ok && len(h) == 64 && isLowerHex(h)
}

// quarantineDir holds blobs and records taken out of service.
func quarantineDir(root string) string {
	return filepath.Join(root, "quarantine")
}

// quarantinePath is where the blob d goes when it is quarantined.
func quarantinePath(root string, d Digest) string {
	return filepath.Join(quarantineDir(root), d.Hex())
}

// quarantineRecordPath is where the record file name goes when it is
// quarantined. name must satisfy isRecordName.
func quarantineRecordPath(root, name string) string {
	return filepath.Join(quarantineDir(root), quarantineRecordPrefix+name)
}

// isTempName reports whether a directory entry is a file being written.
func isTempName(name string) bool {
	return strings.HasPrefix(name, tempPrefix)
}

// isFanoutName reports whether a blobsDir entry name is a fan-out directory.
func isFanoutName(name string) bool {
	return len(name) == 2 && isLowerHex(name)
}

// digestFromBlobName parses a file name found in the fan-out directory
// named fanout. It is the inverse of blobPath.
func digestFromBlobName(fanout, name string) (Digest, bool) {
	if len(name) != 64 || !strings.HasPrefix(name, fanout) {
		return Digest{}, false
	}
	d, err := ParseDigest(name)
	return d, err == nil
}

// isLowerHex reports whether s consists only of 0-9 and a-f.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// File modes. Under OpenShift's restricted-v2 SCC each pod runs with a
// random UID and GID 0, and a later pod (another UID) must go on writing
// the same volume: directories and the files it must write again (index,
// partial downloads) are group-writable, the rest group-readable. Blobs
// are read-only for everyone once committed. The process umask must let
// the group bits through (main sets 002).
const (
	dirMode        = 0o775
	sharedFileMode = 0o664
)
