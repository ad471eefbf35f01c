//go:build abuse

package abuse

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// rawResult is the answer to a hand-written request.
type rawResult struct {
	status int
	header http.Header
	body   []byte // at most the limit given
	more   bool   // the body went on past the limit
	err    error
}

// rawExchange sends request (bytes written as given: nothing normalizes the
// path) on a new TCP connection to addr and reads one response, keeping at
// most limit body bytes. method tells the response reader whether a body
// follows (HEAD). With closeWrite the client half-closes after the request,
// so a server waiting for more of a malformed request sees the end.
func rawExchange(addr, request, method string, limit int64, closeWrite bool) rawResult {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return rawResult{err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	// A server may answer and close before it read everything (an
	// oversized request): the answer is still read.
	_, werr := io.WriteString(c, request)
	if closeWrite && werr == nil {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	r, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		if werr != nil {
			err = fmt.Errorf("%w (writing the request: %v)", err, werr)
		}
		return rawResult{err: err}
	}
	defer r.Body.Close()
	body, err := io.ReadAll(io.LimitReader(r.Body, limit))
	res := rawResult{status: r.StatusCode, header: r.Header, body: body, err: err}
	var one [1]byte
	if n, _ := r.Body.Read(one[:]); n > 0 {
		res.more = true
	}
	return res
}
