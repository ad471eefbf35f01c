package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// client is the download client of the throughput scenarios: no
// compression, keep-alive, large reads so the client spends as little of
// the machine's two CPUs as it can.
var client = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// onlyWriter hides io.Discard's ReaderFrom, which would read in 8 KiB steps.
type onlyWriter struct{ io.Writer }

// download GETs u (with an optional Range) and reads the whole body; it
// checks the status and length.
func download(u, rangeHeader string) (int64, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	want := http.StatusOK
	if rangeHeader != "" {
		req.Header.Set("Range", rangeHeader)
		want = http.StatusPartialContent
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := io.CopyBuffer(onlyWriter{io.Discard}, resp.Body, *bp)
	if err == nil && n != resp.ContentLength {
		err = fmt.Errorf("GET %s: got %d of %d bytes", u, n, resp.ContentLength)
	}
	return n, err
}

// result is one measured batch of downloads.
type result struct {
	cpu   time.Duration
	bytes int64
	wall  time.Duration
}

func (r result) cpuPerGB() float64 { return r.cpu.Seconds() / (float64(r.bytes) / 1e9) }
func (r result) gbps() float64     { return float64(r.bytes) / 1e9 / r.wall.Seconds() }

// measure downloads u count times, par at a time, and reads the server's
// CPU time around the batch.
func measure(p *proc, u string, par, count int) (result, error) {
	c0, err := p.cpu()
	if err != nil {
		return result{}, err
	}
	t0 := time.Now()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		total    int64
		firstErr error
		next     = make(chan struct{}, count)
	)
	for range count {
		next <- struct{}{}
	}
	close(next)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				n, err := download(u, "")
				mu.Lock()
				total += n
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	c1, err := p.cpu()
	if err != nil {
		return result{}, err
	}
	return result{cpu: c1 - c0, bytes: total, wall: wall}, firstErr
}

// tpScenario is one throughput comparison.
type tpScenario struct {
	name            string
	target          string  // shown with the ratio, e.g. "≤ 1.10"
	limit           float64 // the ratio target: median paired ratio ≤ limit
	plainURL        string
	edgeURL         string
	par, count      int // downloads in flight, downloads per batch
	plainR, edgeR   []result
	ratios          []float64 // paired per-round CPU/GB ratios
	plainGB, edgeGB []float64
}

// runThroughput measures every scenario in rounds; within a round the
// baseline and isoedge batches alternate, and the order flips each round.
func runThroughput(plain, edge *proc, scs []*tpScenario, rounds int) error {
	for i := range rounds {
		for _, sc := range scs {
			var pr, er result
			var err error
			order := []bool{false, true}
			if i%2 == 1 {
				order = []bool{true, false}
			}
			for _, isEdge := range order {
				if isEdge {
					er, err = measure(edge, sc.edgeURL, sc.par, sc.count)
				} else {
					pr, err = measure(plain, sc.plainURL, sc.par, sc.count)
				}
				if err != nil {
					return fmt.Errorf("%s: %w", sc.name, err)
				}
			}
			sc.plainR = append(sc.plainR, pr)
			sc.edgeR = append(sc.edgeR, er)
			sc.ratios = append(sc.ratios, er.cpuPerGB()/pr.cpuPerGB())
			fmt.Fprintf(logw, "  round %d %-28s plain %.3f CPU-s/GB %.2f GB/s | isoedge %.3f CPU-s/GB %.2f GB/s\n",
				i+1, sc.name, pr.cpuPerGB(), pr.gbps(), er.cpuPerGB(), er.gbps())
		}
	}
	return nil
}

func (sc *tpScenario) rows(t *table) {
	var pc, ec, pg, eg []float64
	for i := range sc.plainR {
		pc = append(pc, sc.plainR[i].cpuPerGB())
		ec = append(ec, sc.edgeR[i].cpuPerGB())
		pg = append(pg, sc.plainR[i].gbps())
		eg = append(eg, sc.edgeR[i].gbps())
	}
	r := median(sc.ratios)
	t.row(sc.name+": server CPU-s/GB", f3(median(pc)), f3(median(ec)), fmt.Sprintf("%.2f %s", r, check(r <= sc.limit, sc.target)))
	t.row(sc.name+": GB/s", f2(median(pg)), f2(median(eg)), fmt.Sprintf("%.2f", median(eg)/median(pg)))
}
