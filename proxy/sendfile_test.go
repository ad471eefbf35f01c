package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/catalog"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"go.uber.org/zap"
)

// TestMain doubles as the server of TestBaseExtentsLeaveThroughSendfile,
// run in a child process under strace so that only the server's system
// calls are traced.
func TestMain(m *testing.M) {
	if dir := os.Getenv("ISOEDGE_TEST_SENDFILE_SERVER"); dir != "" {
		os.Exit(sendfileServer(dir))
	}
	os.Exit(m.Run())
}

// The child server's image: a base of sendfileSize pseudo-random bytes
// whose ignition embed area is replaced by the archive and zeros.
const sendfileSize = 24 << 20

var (
	sendfileIgnArea  = customize.Area{Off: 5<<20 + 4096, Len: 256 << 10}
	sendfileRootfs   = customize.Area{Off: 8 << 20, Len: 12 << 20}
	sendfileIgnition = `{"ignition":{"version":"3.2.0"}}`
)

// patternBytes are n pseudo-random bytes from seed.
func patternBytes(n int, seed uint64) []byte {
	b := make([]byte, n+8)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

func sendfileLayout() *customize.Layout {
	return &customize.Layout{
		Size:     sendfileSize,
		Files:    map[string]customize.Area{customize.PathRootfs: sendfileRootfs, customize.PathIgnition: sendfileIgnArea},
		Ignition: sendfileIgnArea, IgnitionFile: customize.PathIgnition,
	}
}

// sendfileServer is the child: it serves the image on 127.0.0.1, prints
// its address, and when its standard input closes prints how many base
// bytes its bodies handed to the connection as file extents and how many
// they copied, then exits.
func sendfileServer(dir string) int {
	fail := func(err error) int {
		fmt.Println("ERROR", err)
		return 1
	}
	store, err := cache.OpenStore(dir)
	if err != nil {
		return fail(err)
	}
	d, _, err := store.Put(context.Background(), bytes.NewReader(patternBytes(sendfileSize, 7)))
	if err != nil {
		return fail(err)
	}
	bases := &fakeBases{m: map[string]baseEntry{"4.18/x86_64/full-iso": {base: catalog.Base{Digest: d, Layout: sendfileLayout()}}}, store: store}
	bases.ready.Store(true)
	set := metrics.NewSet()
	srv := New(Options{Config: &config.Config{MaxConcurrentRequests: 8}, Bases: bases, Source: &fakeSource{ignition: sendfileIgnition}, Log: zap.NewNop(), Metrics: set})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	go srv.newHTTPServer(srv.Handler(false)).Serve(ln)
	fmt.Println("ADDR", ln.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	fmt.Println("BODY", srv.stats.file.Get(), srv.stats.copied.Get())
	return 0
}

// TestBaseExtentsLeaveThroughSendfile runs the server in a child process
// under strace, downloads a customized ISO, a boot artifact, a Range across
// the embed area and two ranges at once over plain TCP, checks every byte,
// and checks that sendfile(2) sent at least as many bytes as the responses
// carried from the base image: base extents do not pass through user space.
func TestBaseExtentsLeaveThroughSendfile(t *testing.T) {
	straceBin, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace is needed to watch the server's system calls: %v", err)
	}
	dir := t.TempDir()
	trace := filepath.Join(dir, "strace.out")
	cmd := exec.Command(straceBin, "-f", "--seccomp-bpf", "-qq", "-e", "trace=sendfile", "-o", trace, "--", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ISOEDGE_TEST_SENDFILE_SERVER="+filepath.Join(dir, "store"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	line := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the server exited early")
			}
			if strings.HasPrefix(l, "ERROR") {
				t.Fatalf("server: %s", l)
			}
			return l
		case <-time.After(60 * time.Second):
			t.Fatal("the server printed nothing for 60s")
		}
		return ""
	}
	addr, ok := strings.CutPrefix(line(), "ADDR ")
	if !ok {
		t.Fatal("the server did not print its address")
	}

	base := patternBytes(sendfileSize, 7)
	archive, err := customize.IgnitionArchive([]byte(sendfileIgnition))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(base)
	ign := want[sendfileIgnArea.Off : sendfileIgnArea.Off+sendfileIgnArea.Len]
	clear(ign)
	copy(ign, archive)
	// baseIn is the number of base bytes in [off, off+n) of the ISO.
	baseIn := func(off, n int64) int64 {
		lo, hi := max(off, sendfileIgnArea.Off), min(off+n, sendfileIgnArea.Off+sendfileIgnArea.Len)
		return n - max(0, hi-lo)
	}

	iso := "http://" + addr + "/byid/" + testID + "/4.18/x86_64/full.iso"
	var baseSent, bodies int64
	for _, keepAlive := range []bool{true, false} {
		c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: !keepAlive, DisableCompression: true}}
		get := func(u, rng string, wantCode int) *http.Response {
			t.Helper()
			req, err := http.NewRequest(http.MethodGet, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rng != "" {
				req.Header.Set("Range", rng)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != wantCode {
				resp.Body.Close()
				t.Fatalf("GET %s %s: %d, want %d", u, rng, resp.StatusCode, wantCode)
			}
			return resp
		}
		readAll := func(resp *http.Response) []byte {
			t.Helper()
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			bodies += int64(len(b))
			return b
		}

		if b := readAll(get(iso, "", 200)); !bytes.Equal(b, want) {
			t.Fatalf("full.iso (keep-alive %v): %d bytes differ from the expected ISO", keepAlive, len(b))
		}
		baseSent += baseIn(0, sendfileSize)

		rootfs := "http://" + addr + "/boot-artifacts/rootfs?version=4.18"
		if b := readAll(get(rootfs, "", 200)); !bytes.Equal(b, base[sendfileRootfs.Off:sendfileRootfs.Off+sendfileRootfs.Len]) {
			t.Fatalf("rootfs (keep-alive %v): %d bytes differ from the base's", keepAlive, len(b))
		}
		baseSent += sendfileRootfs.Len

		lo, n := sendfileIgnArea.Off-1<<20, int64(3<<20)
		if b := readAll(get(iso, fmt.Sprintf("bytes=%d-%d", lo, lo+n-1), 206)); !bytes.Equal(b, want[lo:lo+n]) {
			t.Fatalf("range across the embed area (keep-alive %v): wrong bytes", keepAlive)
		}
		baseSent += baseIn(lo, n)

		ranges := [][2]int64{{1 << 20, 2 << 20}, {16 << 20, 2<<20 + 12345}}
		resp := get(iso, fmt.Sprintf("bytes=%d-%d,%d-%d", ranges[0][0], ranges[0][0]+ranges[0][1]-1, ranges[1][0], ranges[1][0]+ranges[1][1]-1), 206)
		_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		mr := multipart.NewReader(bytes.NewReader(readAll(resp)), params["boundary"])
		for i, rg := range ranges {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(p); !bytes.Equal(b, want[rg[0]:rg[0]+rg[1]]) {
				t.Fatalf("multipart part %d (keep-alive %v): wrong bytes", i, keepAlive)
			}
			baseSent += baseIn(rg[0], rg[1])
		}
		c.CloseIdleConnections()
	}

	stdin.Close()
	var fileBytes, copied int64
	if _, err := fmt.Sscanf(line(), "BODY %d %d", &fileBytes, &copied); err != nil {
		t.Fatalf("server's body counters: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("server under strace: %v", err)
	}
	exited = true

	out, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	calls, sent := sendfileTotals(out)
	t.Logf("bodies %d bytes, %d of them base; sendfile: %d calls, %d bytes; body counters: %d as file extents, %d copied",
		bodies, baseSent, calls, sent, fileBytes, copied)
	if sent < baseSent || sent > bodies {
		t.Fatalf("sendfile(2) sent %d bytes in %d calls; want at least the %d base bytes of the bodies (and at most the %d body bytes)", sent, calls, baseSent, bodies)
	}
	if fileBytes != baseSent || copied != 0 {
		t.Fatalf("bodies handed %d base bytes to the connection as file extents and copied %d; want %d and 0", fileBytes, copied, baseSent)
	}
}

var sendfileResult = regexp.MustCompile(`sendfile(?:\(| resumed>).*\) += (\d+)`)

// sendfileTotals counts the successful sendfile calls of an strace log and
// the bytes they sent.
func sendfileTotals(log []byte) (calls int, sent int64) {
	for _, l := range strings.Split(string(log), "\n") {
		m := sendfileResult.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			continue
		}
		calls++
		sent += n
	}
	return calls, sent
}

func TestSendfileTotals(t *testing.T) {
	log := "101 sendfile(7, 9, NULL, 1048576) = 1048576\n" +
		"102 sendfile(8, 10, NULL, 4096 <unfinished ...>\n" +
		"101 sendfile(7, 9, NULL, 1048576) = -1 EAGAIN (Resource temporarily unavailable)\n" +
		"102 <... sendfile resumed>)            = 4096\n" +
		"103 write(1, \"x\", 1) = 1\n"
	if calls, sent := sendfileTotals([]byte(log)); calls != 2 || sent != 1048576+4096 {
		t.Fatalf("sendfileTotals = %d calls, %d bytes; want 2, %d", calls, sent, 1048576+4096)
	}
}
