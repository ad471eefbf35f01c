package newc

import (
	"fmt"
	"io"
	"strings"
)

// Entry is one member to write.
type Entry struct {
	Name      string // relative path, e.g. "etc/x"; a leading "/" is dropped
	Mode      uint32 // st_mode: type bits and permissions, e.g. TypeRegular|0o644
	Data      []byte // file content, or a symlink's target
	RDevMajor uint32 // device nodes
	RDevMinor uint32
}

// Writer writes an archive. Every member gets the next inode number
// (starting at 1), nlink 2 for directories and 1 otherwise, and zero uid,
// gid and mtime, so equal input gives equal bytes. The first error is
// sticky.
type Writer struct {
	w    io.Writer
	buf  []byte
	ino  uint32
	n    int64
	dirs map[string]bool // directories written, explicitly or as parents
	err  error
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, dirs: map[string]bool{}} }

// Add writes e, preceded by a directory member (mode 0755) for each
// parent directory not yet written: the kernel's initramfs unpacker skips a
// file whose directory does not exist.
func (w *Writer) Add(e Entry) error {
	if w.err != nil {
		return w.err
	}
	name := strings.TrimPrefix(e.Name, "/")
	if err := checkName(name); err != nil {
		w.err = err
		return err
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' && !w.dirs[name[:i]] {
			w.dirs[name[:i]] = true
			w.member(Header{Name: name[:i], Mode: TypeDir | 0o755}, nil)
		}
	}
	h := Header{Name: name, Mode: e.Mode, Size: int64(len(e.Data)), RDevMajor: e.RDevMajor, RDevMinor: e.RDevMinor}
	if h.IsDir() {
		if len(e.Data) != 0 {
			w.err = fmt.Errorf("%w: directory %q with data", ErrName, name)
			return w.err
		}
		w.dirs[name] = true
	}
	w.member(h, e.Data)
	return w.err
}

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err == nil {
		w.member(Header{Name: TrailerName, NLink: 1}, nil)
	}
	return w.err
}

// Len returns the number of bytes written so far, always a multiple of 4.
func (w *Writer) Len() int64 { return w.n }

// member writes one header and its data; the trailer (mode 0) keeps
// inode 0.
func (w *Writer) member(h Header, data []byte) {
	if w.err != nil {
		return
	}
	if h.Mode != 0 {
		w.ino++
		h.Ino = w.ino
		h.NLink = 1
		if h.IsDir() {
			h.NLink = 2
		}
	}
	var err error
	if w.buf, err = AppendHeader(w.buf[:0], h); err != nil {
		w.err = err
		return
	}
	w.write(h.Name, w.buf)
	w.write(h.Name, data)
	w.write(h.Name, zeros[:pad4(w.n)])
}

var zeros [4]byte

func (w *Writer) write(name string, b []byte) {
	if w.err != nil || len(b) == 0 {
		return
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("newc: write %s: %w", name, err)
	}
}

// checkName accepts clean relative paths: no empty, "." or ".."
// component, no NUL, and not the trailer's name.
func checkName(name string) error {
	if name == "" || name == TrailerName || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%w: %q", ErrName, name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("%w: %q", ErrName, name)
		}
	}
	return nil
}
