//go:build abuse

package abuse

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/isoedge/isoedge/internal/fixture"
)

// Item 14. Crafted ISOs (a directory record of 0xFFFFF800 bytes; a DAG of
// directories) fail within about a minute with bounded memory, while
// another image is ready and /health is 200.
func TestCraftedISOsAreBounded(t *testing.T) {
	const huge = 0xFFFFF800
	cases := []struct {
		name  string
		craft func(t *testing.T, b *baseISO) []byte
	}{
		{"root directory record in the volume descriptor", func(t *testing.T, b *baseISO) []byte {
			d := bytes.Clone(b.data)
			putBoth32(d[16*sector+156+10:], huge)
			return d
		}},
		{"root directory's own record", func(t *testing.T, b *baseISO) []byte {
			d := bytes.Clone(b.data)
			lba, _ := rootDirectory(d)
			putBoth32(d[int(lba)*sector+10:], huge) // the "." record readers take the size from
			return d
		}},
		{"subdirectory record", func(t *testing.T, b *baseISO) []byte {
			d := bytes.Clone(b.data)
			lba, size := rootDirectory(d)
			patched := 0
			ext := d[int(lba)*sector : int(lba)*sector+int(size)]
			for i := 0; i < len(ext); {
				n := int(ext[i])
				if n == 0 {
					i = (i/sector + 1) * sector
					continue
				}
				name := string(ext[i+33 : i+33+int(ext[i+32])])
				if ext[i+25]&2 != 0 && strings.EqualFold(name, "images") {
					sub := binary.LittleEndian.Uint32(ext[i+2:])
					putBoth32(ext[i+10:], huge)
					putBoth32(d[int(sub)*sector+10:], huge)
					patched++
				}
				i += n
			}
			if patched == 0 {
				t.Fatal("no IMAGES directory record in the root directory")
			}
			return d
		}},
		{"directory DAG fan-out 40 depth 6", func(t *testing.T, b *baseISO) []byte {
			return dagISO(b.m.VolumeID, 40, 6)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var bad osImage
			r := newRig(t, fixture.Options{}, nil, func(m *mirror, b *baseISO) []osImage {
				m.put("/crafted.iso", c.craft(t, b), `"crafted"`)
				bad = image("4.18", m.url("/crafted.iso"))
				return []osImage{bad}
			})
			r.svc.start()
			start := time.Now()
			failed := false
			r.svc.waitFor(60*time.Second, "the crafted image to fail while the good one is ready", func() (bool, string) {
				code, h, raw, err := r.svc.health()
				if err != nil {
					return false, err.Error()
				}
				switch h.state(bad.Version, "x86_64") {
				case "ready":
					t.Fatalf("the crafted image is ready: %s", raw)
				case "failed":
					failed = true // retries may show it downloading again
				}
				return failed && code == http.StatusOK && h.state(r.img.Version, "x86_64") == "ready", raw
			})
			t.Logf("failed after %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// Item 15. A mirror that stalls after its headers and one that never
// answers make their images fail within a bounded time; /health stays 200
// because another image is ready.
func TestStalledMirrorsFail(t *testing.T) {
	t.Parallel() // waits long when the service misbehaves
	silent := newRawServer(t, "127.0.0.1", silentHandler)
	var stall, never osImage
	r := newRig(t, fixture.Options{}, map[string]string{"OS_IMAGE_STALL_TIMEOUT": "2s", "OS_IMAGE_HEADER_TIMEOUT": "2s"},
		func(m *mirror, b *baseISO) []osImage {
			m.putMode("/stall.iso", b.data, serveStall)
			stall = image("4.18", m.url("/stall.iso"))
			never = image("4.19", "http://"+silent.addr()+"/rhcos.iso")
			return []osImage{stall, never}
		})
	r.svc.start()
	failed := map[string]bool{}
	r.svc.waitFor(60*time.Second, "both stalled images failed while the good one is ready", func() (bool, string) {
		code, h, raw, err := r.svc.health()
		if err != nil {
			return false, err.Error()
		}
		for _, bad := range []osImage{stall, never} {
			switch h.state(bad.Version, "x86_64") {
			case "ready":
				t.Fatalf("image %s is ready: %s", bad.Version, raw)
			case "failed":
				failed[bad.Version] = true
			}
		}
		return failed[stall.Version] && failed[never.Version] && code == http.StatusOK && h.state(r.img.Version, "x86_64") == "ready", raw
	})
}

// Item 16. A mirror sending an endless body cannot grow DATA_DIR past
// OS_IMAGE_MAX_BYTES: the image fails and the partial file stays bounded.
func TestEndlessMirrorBodies(t *testing.T) {
	const maxBytes = 64 << 20
	// The hostile bodies come at 32 MiB/s: fast, yet slow enough for a
	// look at the disk every 50 ms to see any growth past the bound.
	const rate = 32 << 20
	cases := []struct {
		name  string
		serve func(t *testing.T, m *mirror, b *baseISO) string // the hostile image's URL
	}{
		{"no Content-Length", func(t *testing.T, m *mirror, b *baseISO) string {
			m.putMode("/endless.iso", nil, serveEndless)
			m.throttle(rate)
			return m.url("/endless.iso")
		}},
		{"more than its Content-Length", func(t *testing.T, m *mirror, b *baseISO) string {
			raw := newRawServer(t, "127.0.0.1", overlongHandler(80<<20, 256<<20, rate))
			return "http://" + raw.addr() + "/rhcos.iso"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var bad osImage
			r := newRig(t, fixture.Options{}, map[string]string{
				"OS_IMAGE_MAX_BYTES": strconv.Itoa(maxBytes),
				"DATA_DIR_MAX_BYTES": strconv.Itoa(2 * maxBytes),
			}, func(m *mirror, b *baseISO) []osImage {
				bad = image("4.18", c.serve(t, m, b))
				return []osImage{bad}
			})
			// The good image, the index and the bounded partial file.
			bound := int64(maxBytes) + int64(len(r.base.data)) + 4<<20
			r.svc.start()
			var peak int64
			failed := false
			r.svc.waitFor(90*time.Second, "the endless image to fail with DATA_DIR bounded", func() (bool, string) {
				used := dirBytes(r.svc.dataDir) + dirBytes(r.svc.tempDir)
				peak = max(peak, used)
				if used > bound {
					t.Fatalf("DATA_DIR and DATA_TEMP_DIR hold %d bytes, more than OS_IMAGE_MAX_BYTES (%d) + the good image + 4 MiB", used, maxBytes)
				}
				code, h, raw, err := r.svc.health()
				if err != nil {
					return false, err.Error()
				}
				switch h.state(bad.Version, "x86_64") {
				case "ready":
					t.Fatalf("the endless image is ready: %s", raw)
				case "failed":
					failed = true
				}
				return failed && code == http.StatusOK && h.state(r.img.Version, "x86_64") == "ready", fmt.Sprintf("%d bytes on disk; %s", used, raw)
			})
			if used := dirBytes(r.svc.dataDir) + dirBytes(r.svc.tempDir); used > bound {
				t.Fatalf("after the failure DATA_DIR holds %d bytes", used)
			}
			t.Logf("peak %d bytes under DATA_DIR and DATA_TEMP_DIR", peak)
		})
	}
}

// dirBytes is the space the files under dir take: the larger of their size
// and their allocated blocks.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		size := info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			size = max(size, st.Blocks*512)
		}
		n += size
		return nil
	})
	return n
}

// Item 17. Twelve concurrent pxe-initrd downloads with a 60 MB ramdisk and
// distinct credentials keep VmHWM within 128 MiB, and every answer is
// initrd ‖ ignition archive ‖ ramdisk.
func TestConcurrentPXEInitrdsWithBigRamdisk(t *testing.T) {
	r := newRig(t, fixture.Options{}, nil, nil)
	r.startReady(t)
	ramdisk := fixture.PseudoRandom(60_000_000, 17)
	r.as.set(envID, &envBehaviour{ramdisk: ramdisk})
	initrd := r.base.file(t, pathInitrd)

	const n = 12
	lengths := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lengths[i], errs[i] = fetchInitrd(r.svc, fmt.Sprintf("/images/%s/pxe-initrd?version=4.17&arch=x86_64&api_key=KEY-%02d", envID, i), initrd, ramdisk)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("pxe-initrd %d: %v", i, err)
		} else if lengths[i] != lengths[0] {
			t.Errorf("pxe-initrd %d: %d bytes, pxe-initrd 0: %d", i, lengths[i], lengths[0])
		}
	}
}

// fetchInitrd downloads one PXE initrd and checks it streaming: it starts
// with initrd, ends with ramdisk and has a small archive between them.
func fetchInitrd(s *service, path string, initrd, ramdisk []byte) (int64, error) {
	resp, err := s.client.Get(s.url(path))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("status %d %q", resp.StatusCode, b)
	}
	size := resp.ContentLength
	if size < int64(len(initrd)+len(ramdisk)) || size > int64(len(initrd)+len(ramdisk))+1<<20 {
		return size, fmt.Errorf("Content-Length %d, want initrd %d + archive + ramdisk %d", size, len(initrd), len(ramdisk))
	}
	br := bufio.NewReaderSize(resp.Body, 1<<20)
	head := make([]byte, len(initrd))
	if _, err := io.ReadFull(br, head); err != nil {
		return size, err
	}
	if !bytes.Equal(head, initrd) {
		return size, fmt.Errorf("does not start with the image's initrd")
	}
	if _, err := io.CopyN(io.Discard, br, size-int64(len(initrd)+len(ramdisk))); err != nil {
		return size, err
	}
	buf := make([]byte, 1<<20)
	for off := 0; off < len(ramdisk); {
		k, err := br.Read(buf[:min(len(buf), len(ramdisk)-off)])
		if k > 0 && !bytes.Equal(buf[:k], ramdisk[off:off+k]) {
			return size, fmt.Errorf("ramdisk differs at its byte %d", off+firstDiff(buf[:k], ramdisk[off:off+k]))
		}
		off += k
		if err != nil {
			return size, fmt.Errorf("ramdisk cut at byte %d: %w", off, err)
		}
	}
	if k, _ := br.Read(buf[:1]); k != 0 {
		return size, fmt.Errorf("bytes after the ramdisk")
	}
	return size, nil
}

// Item 18. ISO requests waiting on a hung assisted-service do not hold up
// boot artifacts, and upstream waiters are bounded separately
// (MAX_CONCURRENT_UPSTREAM_REQUESTS; over it 503 + Retry-After).
func TestBootArtifactsDoNotWaitForAssistedService(t *testing.T) {
	hung := newRawServer(t, "127.0.0.1", silentHandler)
	r := newRig(t, fixture.Options{}, map[string]string{
		"ASSISTED_SERVICE_HOST":            hung.addr(),
		"ASSISTED_SERVICE_TIMEOUT":         "30s",
		"MAX_CONCURRENT_REQUESTS":          "4",
		"MAX_CONCURRENT_UPSTREAM_REQUESTS": "8",
	}, nil)
	r.startReady(t)
	kernel := r.base.file(t, pathKernel)

	type result struct {
		status     int
		retryAfter string
		err        error
	}
	const n = 20
	results := make(chan result, n)
	for i := 0; i < n; i++ {
		go func() {
			res, err := r.svc.do("GET", isoPath("full.iso")+fmt.Sprintf("?api_key=WAIT-%02d", i), nil)
			results <- result{res.status, res.header.Get("Retry-After"), err}
		}()
	}
	r.svc.waitFor(20*time.Second, "ISO requests to wait on assisted-service", func() (bool, string) {
		return hung.accepted.Load() >= 4, fmt.Sprintf("%d connections to assisted-service", hung.accepted.Load())
	})
	quick := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	sent := time.Now()
	res, err := doURL(quick, "GET", r.svc.url("/boot-artifacts/kernel?version=4.17&arch=x86_64"), nil)
	switch {
	case err != nil:
		t.Errorf("kernel while assisted-service hangs: %v after %v", err, time.Since(sent).Round(time.Millisecond))
	case res.status != http.StatusOK:
		t.Errorf("kernel while assisted-service hangs: %d %q after %v, want 200 at once", res.status, res.body, time.Since(sent).Round(time.Millisecond))
	case !bytes.Equal(res.body, kernel):
		t.Errorf("kernel while assisted-service hangs: wrong bytes")
	}

	// Over the upstream bound, requests are refused instead of queued.
	var got []result
	refused := 0
	deadline := time.After(20 * time.Second)
collect:
	for refused < n-8 {
		select {
		case x := <-results:
			got = append(got, x)
			if x.status == http.StatusServiceUnavailable && x.retryAfter != "" {
				refused++
			}
		case <-deadline:
			break collect
		}
	}
	if refused < n-8 {
		t.Errorf("with MAX_CONCURRENT_UPSTREAM_REQUESTS=8 and assisted-service hung, %d of %d ISO requests were refused with 503 + Retry-After, want at least %d", refused, n, n-8)
	}
	hung.shut()
	for len(got) < n {
		select {
		case x := <-results:
			got = append(got, x)
		case <-time.After(60 * time.Second):
			t.Fatalf("%d of %d ISO requests still unanswered 60 s after assisted-service went away", n-len(got), n)
		}
	}
	for _, x := range got {
		if x.err != nil || (x.status != http.StatusBadGateway && x.status != http.StatusServiceUnavailable) {
			t.Errorf("ISO request with assisted-service hung, then gone: %d %v, want 502 or 503", x.status, x.err)
		}
	}
}

// Item 19. A client that pipelines 3,000 GET /metrics and never reads is
// disconnected within a bounded time: every connection has a write
// deadline.
func TestUnreadPipelinedResponsesAreCut(t *testing.T) {
	t.Parallel() // waits long when the service misbehaves
	// A stall timeout, if it is what bounds writes, makes this quick.
	r := newRig(t, fixture.Options{}, map[string]string{"STREAM_STALL_TIMEOUT": "5s"}, nil)
	r.startReady(t)
	// Traffic on every route fills /metrics with series, so 3,000 answers
	// are far more than socket buffers hold: the server's writes block.
	for _, p := range []string{
		isoPath("full.iso"), isoPath("minimal.iso"), isoPath("nothing.iso"), "/byid/x/4.17/x86_64/full.iso",
		"/images/" + envID + "/pxe-initrd?version=4.17", "/images/" + envID + "/s390x-initrd-addrsize?version=4.17",
		"/images/" + envID + "?version=4.17&type=full-iso", "/images/" + envID + "?version=9.9&type=full-iso",
		"/boot-artifacts/kernel?version=4.17", "/boot-artifacts/rootfs?version=4.17", "/boot-artifacts/nothing?version=4.17",
		"/health", "/live", "/nothing",
	} {
		for _, m := range []string{"GET", "HEAD", "POST"} {
			_, _ = r.svc.do(m, p, map[string]string{"Range": "bytes=0-9"})
		}
	}
	metrics := r.svc.mustGet("/metrics", nil, http.StatusOK)
	t.Logf("/metrics is %d bytes: 3,000 answers are %d MB", len(metrics.body), 3000*len(metrics.body)>>20)
	// A small receive buffer set before connecting, so the window the
	// server sees stays small: its writes block soon.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", r.svc.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		req := []byte("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetWriteDeadline(time.Now().Add(120 * time.Second))
		for i := 0; i < 3000; i++ {
			if _, err := c.Write(req); err != nil {
				return
			}
		}
	}()
	serverPort := r.svc.env["LISTEN_PORT"]
	clientPort := strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
	start := time.Now()
	r.svc.waitFor(75*time.Second, "the server to close the connection of a client that never reads", func() (bool, string) {
		held, state := serverHoldsConn(t, serverPort, clientPort)
		return !held, state
	})
	t.Logf("connection closed by the server after %v", time.Since(start).Round(time.Millisecond))
}

// serverHoldsConn reports whether a process still holds the server side of
// the TCP connection between the two loopback ports (an ESTABLISHED socket
// with an inode; a closed one is orphaned, inode 0, or gone).
func serverHoldsConn(t *testing.T, serverPort, clientPort string) (bool, string) {
	t.Helper()
	sp, _ := strconv.Atoi(serverPort)
	cp, _ := strconv.Atoi(clientPort)
	want := fmt.Sprintf(":%04X", sp)
	peer := fmt.Sprintf(":%04X", cp)
	var seen []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || !strings.HasSuffix(fields[1], want) || !strings.HasSuffix(fields[2], peer) {
				continue
			}
			seen = append(seen, fmt.Sprintf("state %s queues %s inode %s", fields[3], fields[4], fields[9]))
			if fields[3] == "01" && fields[9] != "0" {
				return true, strings.Join(seen, "; ")
			}
		}
	}
	return false, strings.Join(seen, "; ")
}

// Red-team finding F1: 12 concurrent PXE initrds whose ignition is close
// to the 16 MiB bound, with distinct credentials: the answers held from
// assisted-service are bounded by UPSTREAM_MEMORY_MAX_BYTES (over it, 503
// + Retry-After) and large archives wait on disk, so VmHWM stays under the
// bound; every 200 carries the whole ignition.
func TestConcurrentPXEInitrdsWithBigIgnition(t *testing.T) {
	r := newRig(t, fixture.Options{}, nil, nil)
	r.startReady(t)
	// JSON with ~14.7 MB of random base64: it hardly compresses.
	payload := base64.StdEncoding.EncodeToString(fixture.PseudoRandom(11_000_000, 23))
	big := []byte(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/big","contents":{"source":"data:;base64,` + payload + `"}}]}}`)
	r.as.mu.Lock()
	r.as.ignition = func(string) []byte { return big }
	r.as.mu.Unlock()
	initrd := r.base.file(t, pathInitrd)

	const n = 12
	var wg sync.WaitGroup
	var ok, busy atomic.Int32
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := r.svc.client.Get(r.svc.url(fmt.Sprintf("/images/%s/pxe-initrd?version=4.17&arch=x86_64&api_key=BIG-%02d", envID, i)))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusServiceUnavailable:
				if resp.Header.Get("Retry-After") == "" {
					errs[i] = fmt.Errorf("503 without Retry-After")
				}
				busy.Add(1)
			case http.StatusOK:
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					errs[i] = err
					return
				}
				if !bytes.HasPrefix(body, initrd) || int64(len(body)) < int64(len(initrd))+int64(len(big))/2 {
					errs[i] = fmt.Errorf("%d bytes, not initrd + the big ignition's archive", len(body))
				}
				ok.Add(1)
			default:
				errs[i] = fmt.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if ok.Load() == 0 {
		t.Error("no request was served")
	}
	t.Logf("%d served, %d refused with 503", ok.Load(), busy.Load())
}
