package main

import (
	"fmt"
	"net/http"
	"net/http/httptrace"
	"time"
)

// ttfbClient opens a new connection per request: a TTFB sample includes the
// TCP connect, as a host starting a download would see it, and closing a
// body early never leaves a half-read connection for the next sample.
var ttfbClient = &http.Client{Transport: &http.Transport{DisableCompression: true, DisableKeepAlives: true}}

// ttfb GETs u and returns the time from sending the request until the
// response headers and the first body byte have arrived. The body is then
// dropped.
func ttfb(u, rangeHeader string) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	want := http.StatusOK
	if rangeHeader != "" {
		req.Header.Set("Range", rangeHeader)
		want = http.StatusPartialContent
	}
	var gotHeaders time.Time
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotFirstResponseByte: func() { gotHeaders = time.Now() },
	}))
	t0 := time.Now()
	resp, err := ttfbClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return 0, fmt.Errorf("GET %s (Range %q): %s", u, rangeHeader, resp.Status)
	}
	var b [1]byte
	if _, err := resp.Body.Read(b[:]); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	if gotHeaders.IsZero() {
		return 0, fmt.Errorf("GET %s: no first response byte traced", u)
	}
	return d, nil
}

// ttfbResult holds TTFB samples in milliseconds.
type ttfbResult struct {
	plainNew, plainCont, edgeNew, edgeCont []float64
	callsPerNew                            float64
}

// runTTFB takes n samples of each: a new download (no Range) and the Range
// request continuing it from the middle, for both servers, interleaved.
func runTTFB(plain, edge *proc, fake *fakeAssisted, plainURL, edgeURL string, size int64, n int) (ttfbResult, error) {
	var r ttfbResult
	mid := fmt.Sprintf("bytes=%d-", size/2)
	c0 := fake.calls()
	for range n {
		for _, s := range []struct {
			u, rh string
			out   *[]float64
		}{
			{edgeURL, "", &r.edgeNew},
			{edgeURL, mid, &r.edgeCont},
			{plainURL, "", &r.plainNew},
			{plainURL, mid, &r.plainCont},
		} {
			d, err := ttfb(s.u, s.rh)
			if err != nil {
				return r, err
			}
			*s.out = append(*s.out, ms(d))
		}
	}
	c1 := fake.calls()
	var calls int64
	for i := range c1 {
		calls += c1[i] - c0[i]
	}
	r.callsPerNew = float64(calls) / float64(n)
	return r, nil
}

func (r ttfbResult) rows(t *table, delay time.Duration) {
	target := ms(delay) + 5
	fmtMS := func(x float64) string { return fmt.Sprintf("%.2f ms", x) }
	nm, np := median(r.edgeNew), percentile(r.edgeNew, 95)
	t.row(fmt.Sprintf("TTFB new download, %d ms upstream: median", delay.Milliseconds()),
		fmtMS(median(r.plainNew)), fmtMS(nm), check(nm <= target, fmt.Sprintf("≤ %.0f ms", target)))
	t.row("TTFB new download: p95", fmtMS(percentile(r.plainNew, 95)), fmtMS(np), check(np <= target, fmt.Sprintf("≤ %.0f ms", target)))
	cm, cp := median(r.edgeCont), percentile(r.edgeCont, 95)
	t.row("TTFB continuing Range (mid-): median", fmtMS(median(r.plainCont)), fmtMS(cm), check(cm <= 2, "≤ 2 ms"))
	t.row("TTFB continuing Range (mid-): p95", fmtMS(percentile(r.plainCont, 95)), fmtMS(cp), check(cp <= 2, "≤ 2 ms"))
	t.row("assisted-service calls per new download", "-", fmt.Sprintf("%.2f", r.callsPerNew), "")
}
