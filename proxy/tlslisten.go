package proxy

import (
	"crypto/tls"
	"net"
	"sync"
)

// NewTLSListener returns a listener of TLS server connections over ln with
// cfg, as tls.NewListener does, except that a large Write reaches the
// socket in few write(2) calls: crypto/tls seals a Write into records of
// at most 16 KiB and writes each to the connection beneath it, one system
// call per record; here the records of one Write are collected in a buffer
// and written together when the TLS Write has sealed them all. Handshake
// messages, small writes and alerts go straight through.
//
// The service's HTTPS listener must be made with it: pair it with
// planBody's big chunks (chunks.go), which give TLS one Write of 256 KiB
// or more of plaintext.
func NewTLSListener(ln net.Listener, cfg *tls.Config) net.Listener {
	return newTLSListener(ln, cfg, nil)
}

// newTLSListener is NewTLSListener with a hook told the plaintext length
// of each Write (tests).
func newTLSListener(ln net.Listener, cfg *tls.Config, onWrite func(n int)) net.Listener {
	return &tlsListener{Listener: ln, cfg: cfg, onWrite: onWrite}
}

type tlsListener struct {
	net.Listener
	cfg     *tls.Config
	onWrite func(n int)
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	under := &batchConn{Conn: c}
	return &tlsConn{Conn: tls.Server(under, l.cfg), under: under, onWrite: l.onWrite}, nil
}

// tlsConn is a *tls.Conn (fasthttp's RequestCtx.IsTLS sees it as one)
// whose large Writes are batched beneath it.
type tlsConn struct {
	*tls.Conn
	under   *batchConn
	onWrite func(n int)
}

// minBatched is the smallest Write worth batching: one that TLS seals into
// more than one record.
const minBatched = 16<<10 + 1

func (c *tlsConn) Write(p []byte) (int, error) {
	if c.onWrite != nil {
		c.onWrite(len(p))
	}
	if len(p) < minBatched {
		return c.Conn.Write(p)
	}
	// A handshake waits for the peer's answers: its flights must not wait
	// in a batch.
	if err := c.Conn.Handshake(); err != nil {
		return 0, err
	}
	c.under.begin()
	n, err := c.Conn.Write(p)
	if ferr := c.under.end(); err == nil {
		err = ferr
	}
	return n, err
}

// A batch holds the records of one big chunk (256 KiB + 8 KiB of
// plaintext) with their headers and tags; TLS's first records on a
// connection are small, so the margin is generous. A Write whose records do
// not fit is written in several batches. Batches are bounded in number
// like big chunks, since a stalled client keeps its batch while blocked;
// with none free, records go straight to the socket.
const (
	batchSize  = bigChunk + 16<<10
	maxBatches = maxBigChunks
)

var (
	batchSlots = make(chan struct{}, maxBatches)
	batchPool  = sync.Pool{New: func() any { b := make([]byte, batchSize); return &b }}
)

// batchConn is the TCP connection beneath a tlsConn. Between begin and end
// it collects what is written to it; otherwise it writes through. A write
// error is kept: TLS records lost halfway leave nothing to continue.
type batchConn struct {
	net.Conn
	mu  sync.Mutex // guards buf, n, err: TLS may write alerts from Read
	buf *[]byte    // the batch; nil when writing through
	n   int
	err error
}

func (c *batchConn) begin() {
	select {
	case batchSlots <- struct{}{}:
	default:
		return
	}
	c.mu.Lock()
	c.buf = batchPool.Get().(*[]byte)
	c.n = 0
	c.mu.Unlock()
}

// end writes the batch and goes back to writing through.
func (c *batchConn) end() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return c.err
	}
	err := c.flushLocked()
	batchPool.Put(c.buf)
	c.buf = nil
	<-batchSlots
	return err
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.buf != nil {
		b := *c.buf
		if c.n+len(p) > len(b) {
			if err := c.flushLocked(); err != nil {
				return 0, err
			}
		}
		if len(p) <= len(b) {
			c.n += copy(b[c.n:], p)
			return len(p), nil
		}
	}
	n, err := c.Conn.Write(p)
	c.err = err
	return n, err
}

// flushLocked writes the batch; c.mu must be held.
func (c *batchConn) flushLocked() error {
	if c.err != nil || c.n == 0 {
		return c.err
	}
	_, err := c.Conn.Write((*c.buf)[:c.n])
	c.n = 0
	c.err = err
	return err
}
