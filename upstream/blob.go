package upstream

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
)

// Blob holds a ramdisk from assisted-service, in memory or spilled to an
// unlinked temporary file read through one descriptor. ReadAt may be called
// concurrently. The holder must Close it, which returns its share of the
// MemoryBudget or closes the file; the bytes Bytes returned stay valid after
// Close, but are then no longer accounted for. A nil *Blob is "no ramdisk":
// Len 0, Bytes nil, Close nil.
type Blob struct {
	data   []byte   // in memory; nil when spilled
	file   *os.File // spilled; nil when in memory
	size   int64
	budget *MemoryBudget // what held is returned to, nil when unaccounted
	held   int64
	closed atomic.Bool
}

var _ io.ReaderAt = (*Blob)(nil)

// BytesBlob returns a Blob over b, which the caller no longer modifies. It is
// not accounted in any MemoryBudget.
func BytesBlob(b []byte) *Blob {
	if b == nil {
		b = []byte{}
	}
	return &Blob{data: b, size: int64(len(b))}
}

// Len returns the blob's size in bytes.
func (b *Blob) Len() int64 {
	if b == nil {
		return 0
	}
	return b.size
}

// Bytes returns the bytes of an in-memory blob (empty, not nil, when the
// ramdisk is empty), and nil when the blob is spilled to a file or b is nil.
func (b *Blob) Bytes() []byte {
	if b == nil {
		return nil
	}
	return b.data
}

// ReadAt implements io.ReaderAt; after Close it fails with os.ErrClosed.
func (b *Blob) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case b == nil || b.closed.Load():
		return 0, os.ErrClosed
	case off < 0:
		return 0, errors.New("upstream: blob: negative offset")
	case b.file != nil:
		return b.file.ReadAt(p, off)
	case off >= b.size:
		return 0, io.EOF
	}
	n := copy(p, b.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Close releases the blob's memory budget or closes its file. Further calls
// do nothing and return nil.
func (b *Blob) Close() error {
	if b == nil || !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	if b.budget != nil {
		b.budget.Release(b.held)
	}
	if b.file != nil {
		return b.file.Close()
	}
	return nil
}
