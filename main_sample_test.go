package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSampleModeHappyPath is `make run` as a new user meets it: the binary
// with nothing but a data directory and a port. Within a minute /health is
// 200, the README's curl line, the minimal ISO and the PXE initrd answer
// 200, and the log has no warning or error.
func TestSampleModeHappyPath(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "isoedge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	data := filepath.Join(tmp, "data")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + tmp, "TMPDIR=" + tmp, "DATA_DIR=" + data, "DATA_TEMP_DIR=" + filepath.Join(data, "tmp"), "LISTEN_PORT=" + port}
	var logs lockedLog
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	}()
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health not 200 within a minute (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	const id = "00000000-0000-0000-0000-000000000000"
	for _, p := range []string{
		"/byid/" + id + "/4.99/x86_64/full.iso", // the README's curl line
		"/byid/" + id + "/4.99/x86_64/minimal.iso",
		"/images/" + id + "/pxe-initrd?version=4.99",
	} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n == 0 {
			t.Errorf("%s: %d, %d bytes", p, resp.StatusCode, n)
		}
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
			t.Errorf("a warning or error on the happy path: %s", line)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"starting isoedge"`) {
		t.Error("no start line")
	}
}

// lockedLog collects a child's output.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
