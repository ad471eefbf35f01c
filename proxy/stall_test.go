package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
)

// TestStalledClientsLoseTheirSlot opens downloads over HTTP and HTTPS that
// stop reading after a few KB, and checks that each is cut off after the
// stall timeout: its slot and its file are given back and the connection is
// closed.
func TestStalledClientsLoseTheirSlot(t *testing.T) {
	h := newHarness(t, harnessOpts{image: sendfileImage, config: func(c *config.Config) {
		c.StreamStallTimeout = 300 * time.Millisecond
	}})
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	for _, useTLS := range []bool{false, true} {
		addr := h.plainAddr
		if useTLS {
			addr = h.tlsAddr
		}
		c, err := dialer.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if useTLS {
			c = tls.Client(c, &tls.Config{RootCAs: testCert(t).pool, ServerName: "isoedge.test"})
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /byid/"+testID+"/4.18/x86_64/full.iso HTTP/1.1\r\nHost: isoedge.test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		if _, err := io.ReadFull(c, buf); err != nil || !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) {
			t.Fatalf("tls=%v: first bytes %q, %v", useTLS, buf[:min(len(buf), 20)], err)
		}
		// Generous: the cut-off itself takes the stall timeout once the
		// socket buffers are full; the rest is a busy machine.
		for deadline := time.Now().Add(10 * time.Second); h.srv.limit.inUse() != 0 || h.bases.inUse(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("tls=%v: the stalled stream still holds its slot or file after 10s", useTLS)
			}
		}
		// Whatever the kernel buffered arrives, then the end: the server
		// closed the connection.
		n, err := io.Copy(io.Discard, c)
		if err == nil && n+4096 >= sendfileSize {
			t.Fatalf("tls=%v: the whole image arrived from a stalled stream", useTLS)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("tls=%v: the connection was not closed after %d more bytes", useTLS, n)
		}
	}
	if !bytes.Contains([]byte(h.logText()), []byte("stream ended early")) {
		t.Fatal("no stream ended early in the log")
	}
}
