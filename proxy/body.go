package proxy

import (
	"io"
	"net"
	"os"
	"reflect"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/customize"
)

// planBody is the response body of a plan. fasthttp calls WriteTo with its
// connection writer (SupportsBodyWriteTo); on a plain TCP connection the
// body then goes to the socket directly: base extents with sendfile(2) at
// explicit offsets of the blob's shared file, patches with write(2). On
// other connections (TLS) it goes through fasthttp's writer. Read is the
// fallback for callers that only read. Close runs when fasthttp is done
// with the body, sent or not, and ends the stream (file, metrics, slot).
type planBody struct {
	plan   customize.Plan
	f      *os.File      // shared; nil when the plan has no base segments
	conn   net.Conn      // nil in tests without one
	stall  time.Duration // write deadline per chunk
	stats  *bodyStats
	r      *customize.Reader
	done   func(written int64, err error)
	n      int64
	err    error
	closed bool
}

// bodyStats counts how body bytes left the process.
type bodyStats struct {
	sendfile *metrics.Counter // base bytes sent by sendfile(2)
	copied   *metrics.Counter // base bytes copied through user space
}

func newBodyStats(set *metrics.Set) *bodyStats {
	return &bodyStats{
		sendfile: set.GetOrCreateCounter(`isoedge_body_bytes_total{path="sendfile"}`),
		copied:   set.GetOrCreateCounter(`isoedge_body_bytes_total{path="copy"}`),
	}
}

func (b *planBody) SupportsBodyWriteTo() bool { return true }

// Streams are written in chunks, each with a fresh write deadline: a
// client that takes no data for the stall timeout (half-open, or stopped
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
	out := b.sink(w)
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
		for _, s := range part.Segs {
			n, err := out.segment(b.f, s)
			total += n
			b.n += n
			off += n
			if err == nil && n != s.Len {
				err = io.ErrShortWrite
			}
			if err != nil {
				b.err = err
				return total, err
			}
		}
	}
	return total, nil
}

// sink chooses where the body goes. Writing to the socket directly is
// only safe once fasthttp's buffer (the response header) is flushed; its
// fixed-size body writer flushes when handed a file to copy, so an empty
// copy from the file flushes it. Any other writer keeps the buffered path.
func (b *planBody) sink(w io.Writer) bodySink {
	raw := rawConnOf(b.conn)
	if raw == nil || b.f == nil || b.plan.Size <= fasthttpSmallFile || !isFasthttpBodyWriter(w) {
		return bufferedSink{w: w, stats: b.stats}
	}
	if _, err := w.(io.ReaderFrom).ReadFrom(&io.LimitedReader{R: b.f, N: 0}); err != nil {
		return bufferedSink{w: w, stats: b.stats}
	}
	return directSink{conn: b.conn, raw: raw, stats: b.stats}
}

// fasthttpSmallFile is the body size up to which fasthttp's body writer
// does not flush before copying a file (maxSmallFileSize).
const fasthttpSmallFile = 8 << 10

// isFasthttpBodyWriter reports whether w is the writer fasthttp hands
// WriteTo for bodies of known size, whose flushing sink relies on. The
// sendfile test fails if a fasthttp upgrade changes it.
func isFasthttpBodyWriter(w io.Writer) bool {
	t := reflect.TypeOf(w)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "github.com/valyala/fasthttp" && t.Elem().Name() == "fixedSizeBodyWriter"
}

// bodySink writes one segment.
type bodySink interface {
	segment(f *os.File, s customize.Segment) (int64, error)
}

// directSink writes to the socket: base extents with sendfile(2).
type directSink struct {
	conn  net.Conn
	raw   syscall.RawConn
	stats *bodyStats
}

func (d directSink) segment(f *os.File, s customize.Segment) (int64, error) {
	switch s.Kind {
	case customize.FromBase:
		n, err := sendfileAt(d.raw, f, s.Off, s.Len)
		if d.stats != nil {
			d.stats.sendfile.AddInt64(n)
		}
		return n, err
	case customize.FromData:
		n, err := d.conn.Write(s.Data[s.Off : s.Off+s.Len])
		return int64(n), err
	}
	return writeZeros(d.conn, s.Len)
}

// bufferedSink writes through fasthttp's writer, reading base extents
// with pread, so the shared file's position is never used.
type bufferedSink struct {
	w     io.Writer
	stats *bodyStats
}

func (b bufferedSink) segment(f *os.File, s customize.Segment) (int64, error) {
	switch s.Kind {
	case customize.FromBase:
		n, err := io.Copy(b.w, io.NewSectionReader(f, s.Off, s.Len))
		if b.stats != nil {
			b.stats.copied.AddInt64(n)
		}
		return n, err
	case customize.FromData:
		n, err := b.w.Write(s.Data[s.Off : s.Off+s.Len])
		return int64(n), err
	}
	return writeZeros(b.w, s.Len)
}

var zeros [64 << 10]byte

func writeZeros(w io.Writer, n int64) (int64, error) {
	var done int64
	for done < n {
		m, err := w.Write(zeros[:min(int64(len(zeros)), n-done)])
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
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

// Close ends the stream. The shared file is released by done, not closed.
func (b *planBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if b.done != nil {
		e := b.err
		if e == nil && b.n != b.plan.Size {
			e = io.ErrUnexpectedEOF
		}
		b.done(b.n, e)
	}
	return nil
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
