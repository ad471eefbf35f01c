package proxy

import (
	"io"
	"net"
	"os"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/customize"
)

// planBody is the response body of a plan, a fasthttp.BodyWriterTo:
// fasthttp calls WriteTo with its writer for the connection, and Close when
// it is done with the body, sent or not.
//
// Two ways out, chosen only from documented interfaces:
//
//   - On a plain connection whose writer is an io.ReaderFrom, each base
//     extent is handed to ReadFrom as an *io.LimitedReader over the
//     stream's own file, positioned with Seek. fasthttp's writer passes a
//     LimitedReader over a file on to the connection, and Go's TCP
//     connection sends it with sendfile(2), so base bytes do not pass
//     through user space. Patches are written from memory.
//   - Over TLS (tls is set from ctx.IsTLS()), or when the writer has no
//     ReadFrom, the body is read in large chunks — one pread per base
//     extent in a chunk — and each chunk is given to one Write, so TLS
//     seals it into full records in one call (see tlslisten.go).
//
// Whatever the writer does with what it is given, the bytes are the plan's:
// a writer that cannot take the fast path is slower, never wrong.
type planBody struct {
	plan   customize.Plan
	f      *os.File      // lent to this stream alone (filePool); nil when the plan has no base segments
	conn   net.Conn      // for write deadlines; nil in tests without one
	tls    bool          // the connection is TLS: write in large chunks
	stall  time.Duration // write deadline per chunk
	stats  *bodyStats
	r      *customize.Reader
	done   func(written int64, err error)
	n      int64
	err    error
	closed bool
}

// bodyStats counts how base bytes left the process.
type bodyStats struct {
	file   *metrics.Counter // handed to the connection as file extents (sendfile on plain TCP)
	copied *metrics.Counter // read into user space and written (TLS, or a writer without ReadFrom)
}

func newBodyStats(set *metrics.Set) *bodyStats {
	return &bodyStats{
		file:   set.GetOrCreateCounter(`isoedge_body_bytes_total{path="file"}`),
		copied: set.GetOrCreateCounter(`isoedge_body_bytes_total{path="copy"}`),
	}
}

// SupportsBodyWriteTo tells fasthttp that WriteTo writes exactly what Read
// would (fasthttp.BodyWriterTo).
func (b *planBody) SupportsBodyWriteTo() bool { return true }

// Streams are written in chunks, each with a fresh write deadline: a
// client that takes no data for the stall timeout (half-open, or stopped
// reading) loses its connection and frees its request slot, while a slow
// but steady one (at least a chunk per STREAM_STALL_TIMEOUT) is never cut
// off. streamChunk is the chunk of the extent path, the size of the copying
// path's buffer (chunks.go): a client must take about 256 KiB per
// STREAM_STALL_TIMEOUT (4 KiB/s at the default 60 s) to stay connected.
const streamChunk = 256 << 10

func (b *planBody) WriteTo(w io.Writer) (int64, error) {
	if b.conn != nil {
		// The connection is kept alive for the next request: leave no
		// deadline behind.
		defer b.conn.SetWriteDeadline(time.Time{})
	}
	var n int64
	var err error
	if rf, ok := w.(io.ReaderFrom); ok && !b.tls && b.f != nil {
		n, err = b.writeExtents(w, rf)
	} else {
		n, err = b.writeChunks(w)
	}
	b.n += n
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *planBody) deadline() {
	if b.conn != nil && b.stall > 0 {
		b.conn.SetWriteDeadline(time.Now().Add(b.stall))
	}
}

// writeExtents hands base extents to rf as file extents.
func (b *planBody) writeExtents(w io.Writer, rf io.ReaderFrom) (int64, error) {
	var total int64
	for total < b.plan.Size {
		part, err := b.plan.Slice(total, min(streamChunk, b.plan.Size-total))
		if err != nil {
			return total, err
		}
		b.deadline()
		for _, s := range part.Segs {
			var n int64
			short := io.ErrShortWrite
			switch s.Kind {
			case customize.FromBase:
				short = io.ErrUnexpectedEOF // the file ended inside the extent
				if _, err = b.f.Seek(s.Off, io.SeekStart); err == nil {
					n, err = rf.ReadFrom(&io.LimitedReader{R: b.f, N: s.Len})
				}
				if b.stats != nil {
					b.stats.file.AddInt64(n)
				}
			case customize.FromData:
				var m int
				m, err = w.Write(s.Data[s.Off : s.Off+s.Len])
				n = int64(m)
			case customize.FromFile:
				n, err = io.Copy(w, io.NewSectionReader(s.Src, s.Off, s.Len))
			default:
				n, err = writeZeros(w, s.Len)
			}
			total += n
			if err == nil && n != s.Len {
				err = short
			}
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// writeChunks reads the plan into chunk buffers and writes each with one
// Write.
func (b *planBody) writeChunks(w io.Writer) (int64, error) {
	src := &countingReaderAt{f: b.f}
	if b.stats != nil {
		defer func() { b.stats.copied.AddInt64(src.n) }()
	}
	r := customize.NewReader(b.plan, src)
	var total int64
	for total < b.plan.Size {
		c := getChunk()
		n := min(int64(len(c.buf)), b.plan.Size-total)
		_, err := io.ReadFull(r, c.buf[:n])
		if err == nil {
			b.deadline()
			var m int
			m, err = w.Write(c.buf[:n])
			total += int64(m)
			if err == nil && int64(m) != n {
				err = io.ErrShortWrite
			}
		}
		c.put()
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// countingReaderAt counts the base bytes read through it.
type countingReaderAt struct {
	f *os.File
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.f.ReadAt(p, off)
	c.n += int64(n)
	return n, err
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

// Read is the fallback for callers that only read; it uses pread, never
// the file position.
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

// Close ends the stream: done releases the file, the slot and the metrics.
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
