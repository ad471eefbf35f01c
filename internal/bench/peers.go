package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

// pacedMirror serves one file at a fixed rate, as a mirror behind a
// limited link does, and counts the GETs of it. It answers every GET with
// the whole file (200).
type pacedMirror struct {
	srv  *http.Server
	addr string
	gets atomic.Int64
}

func newPacedMirror(file string, bytesPerSecond int64) (*pacedMirror, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m := &pacedMirror{addr: ln.Addr().String()}
	m.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		w.Header().Set("ETag", `"bench-mirror"`)
		if r.Method != http.MethodGet {
			return
		}
		m.gets.Add(1)
		buf := make([]byte, 256<<10)
		t0 := time.Now()
		var sent int64
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				sent += int64(n)
				// Hold the average at the rate: wait until the bytes sent
				// so far are due.
				if due := time.Duration(float64(sent) / float64(bytesPerSecond) * float64(time.Second)); due > time.Since(t0) {
					time.Sleep(due - time.Since(t0))
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				return
			}
		}
	})}
	go m.srv.Serve(ln)
	return m, nil
}

func (m *pacedMirror) Close() { m.srv.Close() }

// imageSources reads /health's image sources of a started isoedge.
func imageSources(addr string) ([]string, error) {
	resp, err := readyClient.Get("http://" + addr + "/health")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var h struct {
		Images []struct {
			Source string `json:"source"`
		} `json:"images"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h); err != nil {
		return nil, err
	}
	var out []string
	for _, im := range h.Images {
		out = append(out, im.Source)
	}
	return out, nil
}

// runPeerFill measures 7: the time to ready of a replica whose base image
// comes from a mirror paced to rate, then of replicas started with PEERS
// naming it, each on an empty DATA_DIR (median of rounds). Target: peer ≤
// 0.5 × mirror, and the mirror sees one download in all.
func runPeerFill(bin, work, iso, assisted string, rate int64, rounds int, t *table) error {
	mirror, err := newPacedMirror(iso, rate)
	if err != nil {
		return err
	}
	defer mirror.Close()
	osImages := fmt.Sprintf(`[{"openshift_version":"4.19","cpu_architecture":"x86_64","url":"http://%s/rhcos-live.iso","version":"419.96.202501010000-0"}]`, mirror.addr)
	portA, err := freePort()
	if err != nil {
		return err
	}
	ecA := edgeConfig{bin: bin, work: filepath.Join(work, "peer-a"), port: portA, assisted: assisted, osImages: osImages, maxConcurrent: 400}
	fmt.Fprintf(logw, "7. replica A from a mirror paced to %d MB/s\n", rate/1e6)
	a, err := startIsoedge(ecA, 30*time.Minute)
	if err != nil {
		return err
	}
	defer a.stop()
	fromMirror := a.ready
	fmt.Fprintf(logw, "  replica A ready after %.2fs (mirror GETs %d)\n", fromMirror.Seconds(), mirror.gets.Load())
	a.waitIdle(60 * time.Second)

	var fromPeer []float64
	for i := range rounds {
		portB, err := freePort()
		if err != nil {
			return err
		}
		ecB := edgeConfig{bin: bin, work: filepath.Join(work, fmt.Sprintf("peer-b%d", i)), port: portB, assisted: assisted, osImages: osImages, maxConcurrent: 400,
			env: []string{"PEERS=http://" + a.addr}}
		b, err := startIsoedge(ecB, 10*time.Minute)
		if err != nil {
			return err
		}
		src, err := imageSources(b.addr)
		b.terminate(40 * time.Second)
		os.RemoveAll(ecB.work)
		if err != nil {
			return err
		}
		if len(src) != 1 || src[0] != "peer" {
			return fmt.Errorf("replica B %d: image sources %q, want [peer]", i+1, src)
		}
		fmt.Fprintf(logw, "  replica B%d (PEERS=A, empty DATA_DIR) ready after %.2fs\n", i+1, b.ready.Seconds())
		fromPeer = append(fromPeer, b.ready.Seconds())
		a.waitIdle(30 * time.Second)
	}
	gets := mirror.gets.Load()
	peer := median(fromPeer)
	ratio := peer / fromMirror.Seconds()
	t.row(fmt.Sprintf("2nd replica exec→ready: mirror at %d MB/s vs peer, s", rate/1e6), f2(fromMirror.Seconds()), f2(peer), f2(ratio)+" "+check(ratio <= 0.5, "≤ 0.5"))
	t.row(fmt.Sprintf("mirror downloads for %d replicas", rounds+1), "-", strconv.FormatInt(gets, 10), check(gets == 1, "1"))
	return nil
}
