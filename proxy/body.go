package proxy

import (
	"io"
	"net"
	"os"
	"time"

	"github.com/isoedge/isoedge/customize"
)

// planBody is the response body of a plan. fasthttp calls WriteTo with the
// connection's writer (SupportsBodyWriteTo), so base extents reach the
// socket through ReadFrom, i.e. sendfile; Read is the fallback. Close runs
// when fasthttp is done with the body, whether or not it was sent: it closes
// the file and ends the stream (metrics, request slot).
type planBody struct {
	plan   customize.Plan
	f      *os.File      // nil when the plan has no base segments
	conn   net.Conn      // for write deadlines; nil in tests without one
	stall  time.Duration // write deadline per chunk
	r      *customize.Reader
	done   func(written int64, err error)
	n      int64
	err    error
	closed bool
}

func (b *planBody) SupportsBodyWriteTo() bool { return true }

// Streams are written in chunks, each with a fresh write deadline: a
// client that takes no data for stallTimeout (half-open, or stopped
// reading) loses its connection and frees its request slot, while a slow
// but steady one (at least streamChunk per STREAM_STALL_TIMEOUT) is never
// cut off.
const streamChunk = 1 << 20

func (b *planBody) WriteTo(w io.Writer) (int64, error) {
	if b.conn != nil {
		// The connection is kept alive for the next request: leave no
		// deadline behind.
		defer b.conn.SetWriteDeadline(time.Time{})
	}
	var total int64
	for off := int64(0); off < b.plan.Size; {
		part, err := b.plan.Slice(off, min(streamChunk, b.plan.Size-off))
		if err != nil {
			b.err = err
			return total, err
		}
		if b.conn != nil && b.stall > 0 {
			b.conn.SetWriteDeadline(time.Now().Add(b.stall))
		}
		n, err := part.WriteTo(w, b.f)
		total += n
		b.n += n
		off += n
		if err != nil {
			b.err = err
			return total, err
		}
	}
	return total, nil
}

func (b *planBody) Read(p []byte) (int, error) {
	if b.r == nil {
		b.r = customize.NewReader(b.plan, b.f)
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *planBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	var err error
	if b.f != nil {
		err = b.f.Close()
	}
	if b.done != nil {
		e := b.err
		if e == nil && b.n != b.plan.Size {
			e = io.ErrUnexpectedEOF
		}
		b.done(b.n, e)
	}
	return err
}

// needsBase reports whether a plan reads from its base file.
func needsBase(p customize.Plan) bool {
	for _, s := range p.Segs {
		if s.Kind == customize.FromBase {
			return true
		}
	}
	return false
}
