package customize

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/isoedge/isoedge/customize/newc"
	"github.com/klauspost/compress/gzip"
)

// ArchiveFile is one regular file of an initramfs archive.
type ArchiveFile struct {
	Name string // relative path inside the initramfs, e.g. "config.ign"
	Mode uint32 // permission bits, e.g. 0o644
	Data []byte
}

// IgnitionArchive returns a gzip-compressed newc cpio archive holding
// config.ign (mode 0644), NUL-padded to a multiple of 4 bytes so that an
// uncompressed archive may follow it in an initramfs.
func IgnitionArchive(config []byte) ([]byte, error) {
	return Archive(ArchiveFile{Name: "config.ign", Mode: 0o644, Data: config})
}

// Archive returns a gzip-compressed newc cpio archive of files, padded to a
// multiple of 4 bytes. Parent directories of nested names are emitted first:
// the kernel's initramfs unpacker skips a file whose directory does not exist.
func Archive(files ...ArchiveFile) ([]byte, error) {
	var raw bytes.Buffer
	w := newc.NewWriter(&raw)
	for _, f := range files {
		name := strings.TrimPrefix(f.Name, "/")
		if name == "" || strings.Contains(name, "..") {
			return nil, fmt.Errorf("customize: bad archive member name %q", f.Name)
		}
		if err := w.Add(newc.Entry{Name: name, Mode: newc.TypeRegular | f.Mode&0o7777, Data: f.Data}); err != nil {
			return nil, fmt.Errorf("customize: archive: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("customize: archive: %w", err)
	}

	var out bytes.Buffer
	out.Grow(raw.Len()/4 + 64)
	// A gzip writer holds about a megabyte of state; archives are built for
	// every new download, so writers are reused.
	zw, _ := gzipWriters.Get().(*gzip.Writer)
	if zw == nil {
		var err error
		if zw, err = gzip.NewWriterLevel(&out, gzip.DefaultCompression); err != nil {
			return nil, err
		}
	} else {
		zw.Reset(&out)
	}
	defer gzipWriters.Put(zw)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	for out.Len()%4 != 0 {
		out.WriteByte(0)
	}
	return out.Bytes(), nil
}

var gzipWriters sync.Pool
