//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"

	"github.com/isoedge/isoedge/customize/newc"
)

// cpioEntry is one member of a newc archive.
type cpioEntry struct {
	Name  string // relative path, no leading slash
	Mode  uint32 // full st_mode: type bits and permissions
	Data  []byte // file content or symlink target
	Major uint32 // rdev major, for device nodes
	Minor uint32 // rdev minor, for device nodes
}

const (
	modeDir  = newc.TypeDir
	modeFile = newc.TypeRegular
	modeChr  = newc.TypeChar
	modeLink = newc.TypeSymlink
)

// newcArchive returns the newc archive of entries, in order, each missing
// parent directory (0755) emitted before the first name inside it, then
// the trailer. The kernel's initramfs unpacker skips a file whose directory
// does not exist.
func newcArchive(entries []cpioEntry) ([]byte, error) {
	var b bytes.Buffer
	w := newc.NewWriter(&b)
	for _, e := range entries {
		if err := w.Add(newc.Entry{Name: e.Name, Mode: e.Mode, Data: e.Data, RDevMajor: e.Major, RDevMinor: e.Minor}); err != nil {
			return nil, fmt.Errorf("cpio: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("cpio: %w", err)
	}
	return b.Bytes(), nil
}

// gzipBytes compresses b as one gzip member.
func gzipBytes(b []byte) ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
