package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// streamResult is the server's footprint while n slow downloads are open.
type streamResult struct {
	n               int
	tls             bool
	idleRSS, maxRSS float64 // MB
	idleFDs, maxFDs int
	drained         time.Duration // until the fd count was back to idle after the clients closed
	drainedOK       bool
}

func (r streamResult) fdsPerStream() float64 { return float64(r.maxFDs-r.idleFDs) / float64(r.n) }

// slowDialer keeps each client's receive buffer small, so a stalled stream
// parks a bounded amount of data in the kernel.
var slowDialer = &net.Dialer{
	Timeout: 10 * time.Second,
	Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		})
		if err != nil {
			return err
		}
		return serr
	},
}

const slowReadBytes = 4 << 10

// openSlow sends a GET for path (over TLS if useTLS) and reads the status
// line, the headers and the first few KB of the body, then stops reading.
func openSlow(addr, path string, useTLS bool) (net.Conn, error) {
	c, err := slowDialer.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if useTLS {
		c = tls.Client(c, clientTLS)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nUser-Agent: isoedge-bench-slow\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	buf := make([]byte, slowReadBytes)
	n, err := io.ReadAtLeast(c, buf, len(buf))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("slow stream: read %d bytes: %w", n, err)
	}
	if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) {
		c.Close()
		line, _, _ := bytes.Cut(buf, []byte("\r\n"))
		return nil, fmt.Errorf("slow stream: %q", line)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// slowStreams opens n concurrent downloads of path that stop reading after
// a few KB, samples the server's RSS and open fds for hold, then closes every
// client connection and waits (bounded) for the server's fds to drain: back
// to their idle count plus at most keep (files a server keeps open for the
// next request: isoedge keeps up to 4 per image).
func slowStreams(p *proc, path string, n int, hold time.Duration, useTLS bool, keep int) (streamResult, error) {
	r := streamResult{n: n, tls: useTLS}
	var err error
	if r.idleRSS, err = p.rssMB(); err != nil {
		return r, err
	}
	if r.idleFDs, err = p.fds(); err != nil {
		return r, err
	}
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	// Open with a bounded number of dialers.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int, n)
	)
	for i := range n {
		next <- i
	}
	close(next)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := openSlow(p.addr, path, useTLS)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				conns[i] = c
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return r, fmt.Errorf("opening %d slow streams: %w", n, firstErr)
	}
	r.maxRSS, r.maxFDs = r.idleRSS, r.idleFDs
	for deadline := time.Now().Add(hold); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rss, err := p.rssMB()
		if err != nil {
			return r, err
		}
		fds, err := p.fds()
		if err != nil {
			return r, err
		}
		r.maxRSS, r.maxFDs = max(r.maxRSS, rss), max(r.maxFDs, fds)
	}
	for i, c := range conns {
		c.Close()
		conns[i] = nil
	}
	t0 := time.Now()
	for time.Since(t0) < 20*time.Second {
		fds, err := p.fds()
		if err != nil {
			return r, err
		}
		if fds <= r.idleFDs+keep {
			r.drained, r.drainedOK = time.Since(t0), true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !r.drainedOK {
		r.drained = time.Since(t0)
	}
	return r, nil
}

// streamRows reports one slow-stream run. With targets, the plain-HTTP
// targets (RSS ≤ 64 MB, ≤ 2.1 fds per stream: its socket and its file);
// otherwise ratios to the baseline.
func streamRows(t *table, plain, edge streamResult, targets bool) {
	rssCheck, fdCheck := "", ""
	if targets {
		rssCheck = check(edge.maxRSS <= 64, "≤ 64 MB")
		fdCheck = check(edge.fdsPerStream() <= 2.1, "≤ 2.1")
	} else {
		rssCheck = fmt.Sprintf("%.2f", edge.maxRSS/plain.maxRSS)
		fdCheck = fmt.Sprintf("%.2f", edge.fdsPerStream()/plain.fdsPerStream())
	}
	kind := ""
	if edge.tls {
		kind = " HTTPS"
	}
	t.row(fmt.Sprintf("%d slow%s full.iso streams: RSS MB (max)", edge.n, kind), f1(plain.maxRSS), f1(edge.maxRSS), rssCheck)
	t.row(fmt.Sprintf("%d slow%s streams: open fds per stream", edge.n, kind), f2(plain.fdsPerStream()), f2(edge.fdsPerStream()), fdCheck)
	drain := func(r streamResult) string {
		if !r.drainedOK {
			return fmt.Sprintf("NOT in %.0fs", r.drained.Seconds())
		}
		return fmt.Sprintf("%.2f s", r.drained.Seconds())
	}
	t.row(fmt.Sprintf("%d slow%s streams: fds back to idle after close", edge.n, kind), drain(plain), drain(edge), check(edge.drainedOK && plain.drainedOK, "all closed"))
}
