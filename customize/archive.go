package customize

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

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
	w := newcWriter{w: &raw}
	seen := map[string]bool{}
	for _, f := range files {
		name := strings.TrimPrefix(f.Name, "/")
		if name == "" || strings.Contains(name, "..") {
			return nil, fmt.Errorf("customize: bad archive member name %q", f.Name)
		}
		for i := 0; i < len(name); i++ {
			if name[i] == '/' && !seen[name[:i]] {
				seen[name[:i]] = true
				w.entry(name[:i], 0o040755, nil)
			}
		}
		w.entry(name, 0o100000|f.Mode&0o7777, f.Data)
	}
	w.entry("TRAILER!!!", 0, nil)

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

// newcWriter writes the SVR4 "new ASCII" cpio format (magic 070701) read by
// the Linux initramfs unpacker.
type newcWriter struct {
	w   *bytes.Buffer
	ino uint32
}

func (c *newcWriter) entry(name string, mode uint32, data []byte) {
	nlink := uint32(1)
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	ino := uint32(0)
	if mode != 0 {
		c.ino++
		ino = c.ino
	}
	fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.w.WriteString(name)
	c.w.WriteByte(0)
	c.pad()
	c.w.Write(data)
	c.pad()
}

func (c *newcWriter) pad() {
	for c.w.Len()%4 != 0 {
		c.w.WriteByte(0)
	}
}
