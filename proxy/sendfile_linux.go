package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// rawConnOf returns the raw connection of a plain TCP socket, on which
// sendfile(2) can be called directly; nil for anything else (TLS).
func rawConnOf(c net.Conn) syscall.RawConn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// maxSendfileChunk bounds one sendfile call, as Go's own loop does.
const maxSendfileChunk = 4 << 20

// sendfileAt sends n bytes of f from off to the socket with sendfile(2),
// passing the offset explicitly: f's position is never used, so many
// responses share one *os.File. It waits for the socket as the runtime
// poller does for Write, honouring the connection's write deadline.
func sendfileAt(raw syscall.RawConn, f *os.File, off, n int64) (int64, error) {
	src := int(f.Fd())
	var sent int64
	var opErr error
	for sent < n && opErr == nil {
		err := raw.Write(func(fd uintptr) bool {
			o := off + sent
			m, err := syscall.Sendfile(int(fd), src, &o, int(min(n-sent, maxSendfileChunk)))
			if m > 0 {
				sent += int64(m)
			}
			switch {
			case errors.Is(err, syscall.EAGAIN):
				return false // wait until writable
			case errors.Is(err, syscall.EINTR):
				return false
			case err != nil:
				opErr = err
			case m == 0:
				opErr = io.ErrUnexpectedEOF // file shorter than its extent
			}
			return true
		})
		if err != nil {
			return sent, err
		}
	}
	return sent, opErr
}
