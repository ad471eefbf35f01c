package customize

import (
	"fmt"
	"io"
	"os"
)

var zeroBlock [64 << 10]byte

// WriteTo writes the plan's output to w, reading base extents from f.
//
// When w implements io.ReaderFrom, each base extent is handed to it as an
// *io.LimitedReader over f, positioned at the extent: a socket's ReadFrom
// turns that into sendfile, so base bytes never pass through user space.
// Because sendfile reads from the file position, f must not be shared with
// another concurrent writer.
func (p Plan) WriteTo(w io.Writer, f *os.File) (int64, error) {
	rf, zeroCopy := w.(io.ReaderFrom)
	var total int64
	for _, s := range p.Segs {
		var n int64
		var err error
		switch s.Kind {
		case FromData:
			var m int
			m, err = w.Write(s.Data[s.Off : s.Off+s.Len])
			n = int64(m)
		case FromZero:
			for n < s.Len && err == nil {
				var m int
				m, err = w.Write(zeroBlock[:min(int64(len(zeroBlock)), s.Len-n)])
				n += int64(m)
			}
		case FromFile:
			n, err = io.Copy(w, io.NewSectionReader(s.Src, s.Off, s.Len))
		case FromBase:
			if zeroCopy {
				if _, err = f.Seek(s.Off, io.SeekStart); err == nil {
					n, err = rf.ReadFrom(&io.LimitedReader{R: f, N: s.Len})
				}
			} else {
				n, err = io.Copy(w, io.NewSectionReader(f, s.Off, s.Len))
			}
		}
		total += n
		if err != nil {
			return total, err
		}
		if n != s.Len {
			return total, fmt.Errorf("customize: short segment: wrote %d of %d bytes: %w", n, s.Len, io.ErrUnexpectedEOF)
		}
	}
	return total, nil
}

// Reader reads a plan's output sequentially. It is the fallback for
// writers that cannot take file extents directly.
type Reader struct {
	p   Plan
	f   io.ReaderAt
	seg int   // current segment
	off int64 // bytes of it already read
}

// NewReader returns a Reader of p's output, reading base extents from f.
func NewReader(p Plan, f io.ReaderAt) *Reader { return &Reader{p: p, f: f} }

func (r *Reader) Read(b []byte) (int, error) {
	for r.seg < len(r.p.Segs) && r.off == r.p.Segs[r.seg].Len {
		r.seg++
		r.off = 0
	}
	if r.seg == len(r.p.Segs) {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	s := r.p.Segs[r.seg]
	b = b[:min(int64(len(b)), s.Len-r.off)]
	var n int
	var err error
	switch s.Kind {
	case FromData:
		n = copy(b, s.Data[s.Off+r.off:])
	case FromZero:
		clear(b)
		n = len(b)
	case FromBase, FromFile:
		src := r.f
		if s.Kind == FromFile {
			src = s.Src
		}
		n, err = src.ReadAt(b, s.Off+r.off)
		if err == io.EOF && n == len(b) {
			err = nil
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	r.off += int64(n)
	return n, err
}
