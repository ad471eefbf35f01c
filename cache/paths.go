package cache

import (
	"path/filepath"
	"strings"
)

// On-disk layout. This file is the only place that joins paths; every other
// file asks these functions.
//
//	<root>/
//	├── index.db                          bbolt index (see Index)
//	└── blobs/
//	    └── sha256/                       blobsDir
//	        ├── .tmp-<random>             a blob being written (Writer)
//	        ├── .partial-<64 hex>         a resumable download, named by its key (Resume)
//	        ├── 3a/                       fan-out: first two hex characters
//	        │   └── 3a7bd3e2…<64 hex>     committed blob, mode 0444
//	        └── ff/
//	            └── ff01…<64 hex>
//
// Temp files live in blobsDir, on the same filesystem as their final
// address, so Commit can rename them atomically. The two-character fan-out
// keeps directories small. A blob path is only ever built from a Digest, so
// no caller-supplied string reaches the filesystem.

const (
	indexFile  = "index.db"
	tempPrefix = ".tmp-"
	// tempPattern is the os.CreateTemp pattern for blobs being written.
	tempPattern = tempPrefix + "*"
	// partialPrefix names resumable downloads; they survive restarts.
	partialPrefix = ".partial-"
)

// partialPath is the resumable download file of key.
func partialPath(root string, key Digest) string {
	return filepath.Join(blobsDir(root), partialPrefix+key.Hex())
}

// isPartialName reports whether a blobsDir entry is a resumable download.
func isPartialName(name string) bool {
	return strings.HasPrefix(name, partialPrefix)
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

// isTempName reports whether a blobsDir entry is a blob being written.
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
