package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"time"
)

const (
	stormRequests = 2000
	stormChunk    = 256 << 10
)

// stormResult is one range storm against one server.
type stormResult struct {
	wall  time.Duration
	cpu   time.Duration
	conns int      // TCP connections the client opened
	calls [3]int64 // assisted-service calls during the storm (isoedge only)
}

// storm sends stormRequests sequential stormChunk Range requests for u on
// one keep-alive connection, walking the file from byte 0 as a BMC
// mounting the ISO would.
func storm(p *proc, u string, size int64, fake *fakeAssisted) (stormResult, error) {
	var r stormResult
	c := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	defer c.CloseIdleConnections()
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if !info.Reused {
			r.conns++
		}
	}}
	var calls0 [3]int64
	if fake != nil {
		calls0 = fake.calls()
	}
	cpu0, err := p.cpu()
	if err != nil {
		return r, err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:stormChunk]
	t0 := time.Now()
	for i := range stormRequests {
		off := int64(i) * stormChunk % (size - stormChunk)
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return r, err
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+stormChunk-1))
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, err := c.Do(req)
		if err != nil {
			return r, err
		}
		n, err := readFull(resp, buf)
		resp.Body.Close()
		if err != nil {
			return r, err
		}
		if resp.StatusCode != http.StatusPartialContent || n != stormChunk {
			return r, fmt.Errorf("range storm request %d: %s, %d bytes", i, resp.Status, n)
		}
	}
	r.wall = time.Since(t0)
	cpu1, err := p.cpu()
	if err != nil {
		return r, err
	}
	r.cpu = cpu1 - cpu0
	if fake != nil {
		c1 := fake.calls()
		for i := range c1 {
			r.calls[i] = c1[i] - calls0[i]
		}
	}
	return r, nil
}

// readFull reads the body into buf and checks that nothing follows.
func readFull(resp *http.Response, buf []byte) (int, error) {
	n, err := io.ReadFull(resp.Body, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return n, nil // short: the caller checks the length
	}
	if err != nil {
		return n, err
	}
	var b [1]byte
	if m, _ := resp.Body.Read(b[:]); m != 0 {
		return n + m, fmt.Errorf("range response longer than %d bytes", len(buf))
	}
	return n, nil
}

// runStorm runs rounds storms on each server, alternating.
func runStorm(plain, edge *proc, fake *fakeAssisted, plainURL, edgeURL string, size int64, rounds int) (ps, es []stormResult, err error) {
	for i := range rounds {
		p, err := storm(plain, plainURL, size, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("plain: %w", err)
		}
		e, err := storm(edge, edgeURL, size, fake)
		if err != nil {
			return nil, nil, fmt.Errorf("isoedge: %w", err)
		}
		fmt.Fprintf(logw, "  storm round %d: plain %.3fs cpu %.3fs conns %d | isoedge %.3fs cpu %.3fs conns %d calls ign/ramdisk/infra-env %v\n",
			i+1, p.wall.Seconds(), p.cpu.Seconds(), p.conns, e.wall.Seconds(), e.cpu.Seconds(), e.conns, e.calls)
		ps, es = append(ps, p), append(es, e)
	}
	return ps, es, nil
}

func stormRows(t *table, ps, es []stormResult) {
	col := func(rs []stormResult, f func(stormResult) float64) float64 {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	wall := func(r stormResult) float64 { return r.wall.Seconds() }
	rps := func(r stormResult) float64 { return stormRequests / r.wall.Seconds() }
	cpu := func(r stormResult) float64 { return r.cpu.Seconds() }
	pw, ew := col(ps, wall), col(es, wall)
	t.row(fmt.Sprintf("range storm %d×256KiB, 1 conn: total s", stormRequests), f3(pw), f3(ew), fmt.Sprintf("%.2f", ew/pw))
	pr, er := col(ps, rps), col(es, rps)
	t.row("range storm: requests/s", fmt.Sprintf("%.0f", pr), fmt.Sprintf("%.0f", er), fmt.Sprintf("%.2f", er/pr))
	pc, ec := col(ps, cpu), col(es, cpu)
	t.row("range storm: server CPU-s", f3(pc), f3(ec), fmt.Sprintf("%.2f", ec/pc))
	conns, callsOK := 0, true
	var calls []string
	for _, e := range append(ps, es...) {
		conns = max(conns, e.conns)
	}
	for _, e := range es {
		calls = append(calls, fmt.Sprintf("%d", e.calls[0]+e.calls[1]+e.calls[2]))
		// One set for full.iso: one ignition and one infra-env call.
		callsOK = callsOK && e.calls == [3]int64{1, 0, 1}
	}
	t.row("range storm: assisted-service calls per storm", "-", fmt.Sprint(calls), check(callsOK && conns == 1, "1 set (ign+infra-env), 1 conn"))
}
