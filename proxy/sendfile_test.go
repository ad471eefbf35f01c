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
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/catalog"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"go.uber.org/zap"
)

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
// the base file left through sendfile(2) — none copied through user space —
// that the bytes are right, and that the streams shared one file.
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
	bases := &fakeBases{m: map[string]baseEntry{"4.18/x86_64/full-iso": {base: catalog.Base{Digest: d, Layout: layout}}}, store: store}
	bases.ready.Store(true)
	src := &fakeSource{ignition: `{"ignition":{"version":"3.2.0"}}`}
	set := metrics.NewSet()
	srv := New(Options{Config: &config.Config{MaxConcurrentRequests: 4}, Bases: bases, Source: src, Log: zap.NewNop(), Metrics: set})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sendfiled := set.GetOrCreateCounter(`isoedge_body_bytes_total{path="sendfile"}`)
	copied := set.GetOrCreateCounter(`isoedge_body_bytes_total{path="copy"}`)
	hs := srv.newHTTPServer(srv.Handler(false))
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
			sf0, cp0 := sendfiled.Get(), copied.Get()
			out, err := cmd.CombinedOutput()
			sf1, cp1 := sendfiled.Get(), copied.Get()
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
			viaSendfile, viaCopy := int64(sf1-sf0), int64(cp1-cp0)
			t.Logf("base bytes by sendfile: %d, copied: %d", viaSendfile, viaCopy)
			patches := int64(256 << 10)
			if tc.name == "rootfs" {
				patches = 0
			}
			if viaSendfile != n-patches || viaCopy != 0 {
				t.Fatalf("sendfile carried %d base bytes and %d were copied; want %d and 0", viaSendfile, viaCopy, n-patches)
			}
		})
	}
}
