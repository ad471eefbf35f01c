package customize

import (
	"bytes"
	"fmt"
	"io"
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
	size := 64
	for _, f := range files {
		size += len(f.Data)
	}
	var out bytes.Buffer
	out.Grow(size/4 + 64)
	if _, err := WriteArchive(&out, files...); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// WriteIgnitionArchive writes IgnitionArchive(config) to w, streaming: the
// archive is never held in memory, so a large one can go straight to a
// file. It returns the bytes written.
func WriteIgnitionArchive(w io.Writer, config []byte) (int64, error) {
	return WriteArchive(w, ArchiveFile{Name: "config.ign", Mode: 0o644, Data: config})
}

// WriteArchive writes Archive(files...) to w, streaming.
func WriteArchive(w io.Writer, files ...ArchiveFile) (int64, error) {
	cw := &countingWriter{w: w}
	// A gzip writer holds about a megabyte of state; archives are built for
	// every new download, so writers are reused.
	zw, _ := gzipWriters.Get().(*gzip.Writer)
	if zw == nil {
		var err error
		if zw, err = gzip.NewWriterLevel(cw, gzip.DefaultCompression); err != nil {
			return 0, err
		}
	} else {
		zw.Reset(cw)
	}
	defer gzipWriters.Put(zw)
	nw := newc.NewWriter(zw)
	for _, f := range files {
		name := strings.TrimPrefix(f.Name, "/")
		if name == "" || strings.Contains(name, "..") {
			return cw.n, fmt.Errorf("customize: bad archive member name %q", f.Name)
		}
		if err := nw.Add(newc.Entry{Name: name, Mode: newc.TypeRegular | f.Mode&0o7777, Data: f.Data}); err != nil {
			return cw.n, fmt.Errorf("customize: archive: %w", err)
		}
	}
	if err := nw.Close(); err != nil {
		return cw.n, fmt.Errorf("customize: archive: %w", err)
	}
	if err := zw.Close(); err != nil {
		return cw.n, err
	}
	if pad := (4 - cw.n%4) % 4; pad > 0 {
		if _, err := cw.Write(make([]byte, pad)); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var gzipWriters sync.Pool
