package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
)

// stallingMirror serves one file with Range support. Until released, a
// response stops after stallAfter bytes and hangs, like a mirror whose
// connection stalls mid-download.
type stallingMirror struct {
	data       []byte
	stallAfter int64

	mu       sync.Mutex
	sent     int64    // bytes written by all responses
	ranges   []string // Range header of each request
	released bool
	release  chan struct{}
}

func (m *stallingMirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.ranges = append(m.ranges, r.Header.Get("Range"))
	released := m.released
	m.mu.Unlock()
	w = &countingWriter{ResponseWriter: w, m: m, stall: !released}
	http.ServeContent(w, r, "rhcos.iso", time.Unix(1700000000, 0), bytes.NewReader(m.data))
}

type countingWriter struct {
	http.ResponseWriter
	m       *stallingMirror
	stall   bool
	written int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.stall && c.written+int64(len(p)) > c.m.stallAfter {
		p = p[:max(0, c.m.stallAfter-c.written)]
		n, _ := c.ResponseWriter.Write(p)
		c.ResponseWriter.(http.Flusher).Flush()
		c.account(n)
		<-c.m.release // hang until the test is done with the first process
		return n, fmt.Errorf("stalled")
	}
	n, err := c.ResponseWriter.Write(p)
	c.account(n)
	return n, err
}

func (c *countingWriter) account(n int) {
	c.written += int64(n)
	c.m.mu.Lock()
	c.m.sent += int64(n)
	c.m.mu.Unlock()
}

// TestKilledDownloadResumes kills isoedge (SIGKILL) in the middle of a base
// image download and checks that the next process resumes from the partial
// file with an HTTP Range request, and ends with exactly the mirror's image.
func TestKilledDownloadResumes(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "isoedge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	iso, _ := fixture.Build(t, dir, fixture.Options{RootfsSize: 24 << 20})
	data, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	mirror := &stallingMirror{data: data, stallAfter: int64(len(data)) * 2 / 5, release: make(chan struct{})}
	msrv := &http.Server{Handler: mirror}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go msrv.Serve(mln)
	defer msrv.Close()
	releaseOnce := sync.OnceFunc(func() {
		mirror.mu.Lock()
		mirror.released = true
		mirror.mu.Unlock()
		close(mirror.release)
	})
	defer releaseOnce()

	as := newFakeAS(t)
	id := "0a0b0c0d-0000-4000-8000-000000000004"
	as.set(id, &infraEnv{ignition: ignitionFor("resume")})
	port := freePort(t)
	dataDir := filepath.Join(dir, "data")
	env := append(os.Environ(),
		"DATA_DIR="+dataDir, "DATA_TEMP_DIR="+filepath.Join(dir, "tmp"), "LISTEN_PORT="+port,
		"ASSISTED_SERVICE_HOST="+as.hostPort(), "OS_IMAGE_MIN_ROOTFS_BYTES=1", "OS_IMAGE_MIN_KERNEL_BYTES=1",
		"OS_IMAGES="+osImagesJSON(t, config.OSImage{OpenshiftVersion: "4.19", CPUArchitecture: "x86_64", URL: "http://" + mln.Addr().String() + "/rhcos.iso", Version: "419.96.1"}),
	)
	start := func(logName string) *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env = env
		logf, err := os.Create(filepath.Join(dir, logName))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
		return cmd
	}

	first := start("first.log")
	// Wait until the stall point was sent and the partial file holds it.
	partialGlob := filepath.Join(dataDir, "blobs", "sha256", ".partial-*")
	// The partial itself, not the sidecar naming the source's version.
	partials := func() []string {
		m, _ := filepath.Glob(partialGlob)
		var out []string
		for _, p := range m {
			if !strings.HasSuffix(p, ".validator") {
				out = append(out, p)
			}
		}
		return out
	}
	var partialSize int64
	deadline := time.Now().Add(120 * time.Second)
	for partialSize < mirror.stallAfter {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "first.log"))
			t.Fatalf("partial file never reached %d bytes (has %d)\n%s", mirror.stallAfter, partialSize, log)
		}
		time.Sleep(20 * time.Millisecond)
		if m := partials(); len(m) == 1 {
			if st, err := os.Stat(m[0]); err == nil {
				partialSize = st.Size()
			}
		}
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	releaseOnce()

	start("second.log")
	url := "http://127.0.0.1:" + port
	deadline = time.Now().Add(120 * time.Second)
	for {
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "second.log"))
			t.Fatalf("not ready after restart\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}

	mirror.mu.Lock()
	ranges := append([]string(nil), mirror.ranges...)
	mirror.mu.Unlock()
	if len(ranges) != 2 || ranges[0] != "" {
		t.Fatalf("mirror requests (Range headers) = %q; want a plain GET then one resumed GET", ranges)
	}
	if want := fmt.Sprintf("bytes=%d-", partialSize); ranges[1] != want {
		t.Fatalf("resumed with Range %q, want %q (the partial file's size)", ranges[1], want)
	}
	// The stored image is exactly the mirror's.
	sum := sha256.Sum256(data)
	blob := filepath.Join(dataDir, "blobs", "sha256", hex.EncodeToString(sum[:1]), hex.EncodeToString(sum[:]))
	if st, err := os.Stat(blob); err != nil || st.Size() != int64(len(data)) {
		t.Fatalf("blob %s: %v", blob, err)
	}
	if m, _ := filepath.Glob(partialGlob); len(m) != 0 {
		t.Fatalf("partial files left after commit: %v", m)
	}
	resp, err := http.Get(url + "/boot-artifacts/kernel?version=4.19")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("kernel after resume: %v %v", resp, err)
	}
	resp.Body.Close()
	log, _ := os.ReadFile(filepath.Join(dir, "second.log"))
	if !strings.Contains(string(log), "resuming OS image download") {
		t.Fatalf("second process did not log the resume:\n%s", log)
	}
}
