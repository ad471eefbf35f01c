package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"go.uber.org/zap"
)

// recordingConn is a TCP connection that records how response bytes reach
// it: through ReadFrom with an *io.LimitedReader over an *os.File (which
// net.TCPConn turns into sendfile), or through Write (user-space buffers).
type recordingConn struct {
	*net.TCPConn
	mu        sync.Mutex
	fileBytes int64 // bytes sent by ReadFrom(*io.LimitedReader{R: *os.File})
	other     int64 // bytes sent by ReadFrom with any other reader
	written   int64 // bytes sent by Write
}

func (c *recordingConn) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.TCPConn.ReadFrom(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if lr, ok := r.(*io.LimitedReader); ok {
		if _, ok := lr.R.(*os.File); ok {
			c.fileBytes += n
			return n, err
		}
	}
	c.other += n
	return n, err
}

func (c *recordingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.mu.Lock()
	c.written += int64(n)
	c.mu.Unlock()
	return n, err
}

type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*recordingConn
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recordingConn{TCPConn: c.(*net.TCPConn)}
	l.mu.Lock()
	l.conns = append(l.conns, rc)
	l.mu.Unlock()
	return rc, nil
}

func (l *recordingListener) totals() (file, other, written int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.mu.Lock()
		file, other, written = file+c.fileBytes, other+c.other, written+c.written
		c.mu.Unlock()
	}
	return
}

// TestMain doubles as the download client of
// TestServedFileExtentsUseSendfile, run in a child process so that only the
// server's side of the transfer happens in the test process.
func TestMain(m *testing.M) {
	if u := os.Getenv("ISOEDGE_SENDFILE_URL"); u != "" {
		os.Exit(sendfileClient(u))
	}
	os.Exit(m.Run())
}

func sendfileClient(u string) int {
	resp, err := http.Get(u)
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	fmt.Printf("RESULT %d %d %s\n", resp.StatusCode, n, hex.EncodeToString(h.Sum(nil)))
	return 0
}

// TestServedFileExtentsUseSendfile serves a 64 MiB customized image over
// real TCP to a client in another process, and checks that every byte of
// the base file reached the connection through ReadFrom with an
// *io.LimitedReader over an *os.File — net.TCPConn's sendfile path — while
// only headers and patches were written from memory.
func TestServedFileExtentsUseSendfile(t *testing.T) {
	const size = 64 << 20
	base := make([]byte, size)
	for i := range base {
		base[i] = byte(i*31 + i>>12)
	}
	store, err := cache.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := store.Put(context.Background(), bytes.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	layout := &customize.Layout{
		Size:     size,
		Files:    map[string]customize.Area{customize.PathRootfs: {Off: 1 << 20, Len: size - 2<<20}},
		Ignition: customize.Area{Off: 64 << 10, Len: 256 << 10},
	}
	bases := &fakeBases{m: map[string]baseEntry{"4.18/x86_64/full-iso": {base: Base{Digest: d, Layout: layout}}}}
	bases.ready.Store(true)
	src := &fakeSource{ignition: `{"ignition":{"version":"3.2.0"}}`}
	srv := New(Options{Config: &config.Config{MaxConcurrentRequests: 4}, Bases: bases, Source: src, Store: store, Log: zap.NewNop()})
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &recordingListener{Listener: tcp}
	hs := NewHTTPServer(srv.Handler(false), zap.NewNop())
	go hs.Serve(ln)
	defer hs.Shutdown()

	archive, err := customize.IgnitionArchive([]byte(src.ignition))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(base)
	copy(want[64<<10:], archive)
	clear(want[64<<10+len(archive) : 64<<10+256<<10])
	wantSum := sha256.Sum256(want)

	for _, tc := range []struct{ name, path string }{
		{"full.iso", "/byid/00000000-0000-0000-0000-000000000001/4.18/x86_64/full.iso"},
		{"rootfs", "/boot-artifacts/rootfs?version=4.18"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "ISOEDGE_SENDFILE_URL=http://"+ln.Addr().String()+tc.path)
			file0, other0, written0 := ln.totals()
			out, err := cmd.CombinedOutput()
			file1, other1, written1 := ln.totals()
			if err != nil {
				t.Fatalf("client: %v\n%s", err, out)
			}
			var code int
			var n int64
			var sum string
			i := bytes.Index(out, []byte("RESULT "))
			if i < 0 {
				t.Fatalf("client printed no result:\n%s", out)
			}
			if _, err := fmt.Sscanf(string(out[i:]), "RESULT %d %d %s", &code, &n, &sum); err != nil {
				t.Fatal(err)
			}
			wantN, wantHex := int64(size), hex.EncodeToString(wantSum[:])
			if tc.name == "rootfs" {
				r := sha256.Sum256(base[1<<20 : size-1<<20])
				wantN, wantHex = size-2<<20, hex.EncodeToString(r[:])
			}
			if code != 200 || n != wantN || sum != wantHex {
				t.Fatalf("got status %d, %d bytes, sha256 %s; want 200, %d, %s", code, n, sum, wantN, wantHex)
			}
			file, other, written := file1-file0, other1-other0, written1-written0
			t.Logf("sendfile path: %d bytes, other ReadFrom: %d, Write: %d", file, other, written)
			patches := int64(256 << 10)
			if tc.name == "rootfs" {
				patches = 0
			}
			if file != n-patches || other != 0 {
				t.Fatalf("ReadFrom(*io.LimitedReader{*os.File}) carried %d bytes, other readers %d; want %d and 0", file, other, n-patches)
			}
			if written > patches+4096 {
				t.Fatalf("%d bytes written from memory; want only headers and %d bytes of patches", written, patches)
			}
		})
	}
}
