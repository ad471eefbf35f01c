// Command bench measures isoedge against a plain sendfile file server in
// the same run: both serve the same base ISO from separate processes, and
// the server CPU time per GB served is read from /proc. Run it with
// `make bench`.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isoedge/isoedge/internal/fixture"
)

const imageID = "6f1b8e0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

func main() {
	rootfsMiB := flag.Int64("rootfs-mib", 1024, "size of the base ISO's rootfs in MiB")
	rounds := flag.Int("rounds", 4, "downloads per server and scenario")
	keep := flag.Bool("keep", false, "keep the work directory")
	flag.Parse()
	if err := run(*rootfsMiB, *rounds, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(rootfsMiB int64, rounds int, keep bool) error {
	work, err := os.MkdirTemp("", "isoedge-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	t := &tb{dir: work}
	defer t.cleanup()

	fmt.Fprintf(os.Stderr, "building binaries and a %d MiB-rootfs base ISO in %s\n", rootfsMiB, work)
	bin := filepath.Join(work, "bin")
	for _, b := range [][2]string{{"isoedge", "."}, {"plainserver", "./internal/bench/plainserver"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, b[0]), b[1])
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", b[1], err)
		}
	}
	iso, _ := fixture.Build(t, work, fixture.Options{KernelSize: 8 << 20, RootfsSize: rootfsMiB << 20})
	if t.failed != "" {
		return fmt.Errorf("%s", t.failed)
	}
	st, err := os.Stat(iso)
	if err != nil {
		return err
	}

	as := newFakeAssisted(0)
	defer as.Close()

	edge, err := startIsoedge(bin, work, iso, as.addr)
	if err != nil {
		return err
	}
	defer edge.stop()
	plain, err := startPlain(bin, iso)
	if err != nil {
		return err
	}
	defer plain.stop()

	edgeURL := "http://" + edge.addr + "/byid/" + imageID + "/4.19/x86_64/full.iso"
	plainURL := "http://" + plain.addr + "/file"
	// Warm the page cache and both servers.
	for _, u := range []string{edgeURL, plainURL} {
		if _, err := download(u); err != nil {
			return err
		}
	}

	fmt.Printf("\nisoedge bench — %s, Go %s, %d CPUs, base ISO %.2f GB\n", time.Now().UTC().Format(time.RFC3339), goVersion(), cpus(), float64(st.Size())/1e9)
	fmt.Printf("reproduce: make bench   (go run ./internal/bench -rootfs-mib %d -rounds %d)\n\n", rootfsMiB, rounds)
	fmt.Printf("%-34s %14s %14s %10s %10s %8s\n", "scenario", "plain CPU-s/GB", "edge CPU-s/GB", "plain GB/s", "edge GB/s", "ratio")
	for _, par := range []int{1, 8} {
		var pr, er result
		for i := 0; i < rounds; i++ {
			r, err := measure(plain, plainURL, par)
			if err != nil {
				return err
			}
			pr.add(r)
			r, err = measure(edge, edgeURL, par)
			if err != nil {
				return err
			}
			er.add(r)
		}
		fmt.Printf("%-34s %14.3f %14.3f %10.2f %10.2f %8.2f\n", fmt.Sprintf("full.iso, %d parallel", par),
			pr.cpuPerGB(), er.cpuPerGB(), pr.gbps(), er.gbps(), er.cpuPerGB()/pr.cpuPerGB())
	}
	return nil
}

// result accumulates server CPU time and bytes over downloads.
type result struct {
	cpu   time.Duration
	bytes int64
	wall  time.Duration
}

func (r *result) add(o result) { r.cpu += o.cpu; r.bytes += o.bytes; r.wall += o.wall }
func (r result) cpuPerGB() float64 {
	return r.cpu.Seconds() / (float64(r.bytes) / 1e9)
}
func (r result) gbps() float64 { return float64(r.bytes) / 1e9 / r.wall.Seconds() }

// measure downloads u par times in parallel and reads the server's CPU time.
func measure(p *proc, u string, par int) (result, error) {
	c0, err := p.cpu()
	if err != nil {
		return result{}, err
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	var firstErr error
	for i := 0; i < par; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := download(u)
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil && firstErr == nil {
				firstErr = err
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

var client = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}

func download(u string) (int64, error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && n != resp.ContentLength {
		err = fmt.Errorf("GET %s: got %d of %d bytes", u, n, resp.ContentLength)
	}
	return n, err
}

// proc is a server process under test.
type proc struct {
	cmd  *exec.Cmd
	addr string
}

func (p *proc) stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// cpu returns the process's user+system CPU time from /proc/<pid>/stat.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

func startPlain(bin, iso string) (*proc, error) {
	cmd := exec.Command(filepath.Join(bin, "plainserver"), "-file", iso)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("plainserver: %w", err)
	}
	return &proc{cmd: cmd, addr: strings.TrimSpace(line)}, nil
}

func startIsoedge(bin, work, iso, assisted string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(bin, "isoedge"))
	cmd.Env = append(os.Environ(),
		"DATA_DIR="+filepath.Join(work, "data"),
		"DATA_TEMP_DIR="+filepath.Join(work, "tmp"),
		"LISTEN_PORT="+port,
		"LOG_LEVEL=warn",
		"ASSISTED_SERVICE_HOST="+assisted,
		`OS_IMAGES=[{"openshift_version":"4.19","cpu_architecture":"x86_64","url":"file://`+iso+`","version":"419.96.202501010000-0"}]`,
	)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, addr: "127.0.0.1:" + port}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("isoedge did not become ready within 60s")
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

func goVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func cpus() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

// fakeAssisted answers assisted-service's three calls with a fixed
// ignition, after an optional delay.
type fakeAssisted struct {
	srv  *http.Server
	addr string
}

func newFakeAssisted(delay time.Duration) *fakeAssisted {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ign := []byte(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/bench","contents":{"source":"data:,bench"}}]}}`)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/assisted-install/v2/infra-envs/", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		switch {
		case strings.HasSuffix(r.URL.Path, "/downloads/files"):
			w.Header().Set("Last-Modified", "Wed, 25 Nov 2026 10:00:00 GMT")
			w.Write(ign)
		case strings.HasSuffix(r.URL.Path, "/downloads/minimal-initrd"):
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Write([]byte(`{"kernel_arguments":"[{\"operation\":\"append\",\"value\":\"bench=1\"}]"}`))
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	return &fakeAssisted{srv: srv, addr: ln.Addr().String()}
}

func (f *fakeAssisted) Close() { f.srv.Shutdown(context.Background()) }

// tb lets the bench use the test fixture builder outside a test.
type tb struct {
	testing.TB
	dir      string
	n        int
	failed   string
	cleanups []func()
}

func (t *tb) Helper()                           {}
func (t *tb) Logf(format string, args ...any)   {}
func (t *tb) Errorf(format string, args ...any) { t.failed = fmt.Sprintf(format, args...) }
func (t *tb) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
func (t *tb) Fatal(args ...any) { panic(fmt.Sprint(args...)) }
func (t *tb) Cleanup(f func())  { t.cleanups = append(t.cleanups, f) }
func (t *tb) TempDir() string {
	t.n++
	d := filepath.Join(t.dir, "t"+strconv.Itoa(t.n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		panic(err)
	}
	return d
}
func (t *tb) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
