package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/catalog"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const (
	testID       = "0d5a9f4e-3c1b-4d2a-9e8f-7a6b5c4d3e2f"
	testIgnition = `{"ignition":{"version":"3.1.0"}}`
	testUpstream = "Tue, 07 May 2024 10:11:12 GMT" // Last-Modified from the fake assisted-service
)

var testBaseModTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// Extents of the hand-made base image. Every file has its own bytes, so a
// body can be compared with the slice of the base it should come from.
var (
	extInitrd   = customize.Area{Off: 4096, Len: 1500}
	extVmlinuz  = customize.Area{Off: 8192, Len: 700}
	extRootfs   = customize.Area{Off: 10240, Len: 3000}
	extIns      = customize.Area{Off: 14336, Len: 40}
	extAddrsize = customize.Area{Off: 16384, Len: 16}
	extIgnImg   = customize.Area{Off: 18432, Len: 8192}
	extRamdisk  = customize.Area{Off: 28672, Len: 2048}
	extGrub     = customize.Area{Off: 32768, Len: 256}
	extKargs    = customize.Area{Off: 32768 + 64, Len: 128}
	extKernel   = customize.Area{Off: 36864, Len: 900}
	baseSize    = int64(40960)
	addrsizeHd  = []byte{1, 2, 3, 4, 5, 6, 7, 8}
)

// testBaseBytes returns the base image: pseudo-random bytes with a
// readable generic.ins and initrd.addrsize where a real ISO has them.
func testBaseBytes() []byte {
	b := make([]byte, baseSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b[extIns.Off:extIns.Off+extIns.Len], fmt.Sprintf("%-40s", "images/kernel.img 0x00000000"))
	copy(b[extAddrsize.Off:], append(append([]byte{}, addrsizeHd...), addrsizeHd...))
	return b
}

func testLayout() *customize.Layout {
	return &customize.Layout{
		Size:     baseSize,
		VolumeID: "rhcos-418.94.202401010000-0",
		Files: map[string]customize.Area{
			customize.PathInitrd:        extInitrd,
			customize.PathVmlinuz:       extVmlinuz,
			customize.PathRootfs:        extRootfs,
			customize.PathGenericIns:    extIns,
			customize.PathAddrsize:      extAddrsize,
			customize.PathIgnition:      extIgnImg,
			customize.PathCustomRamdisk: extRamdisk,
			"EFI/redhat/grub.cfg":       extGrub,
		},
		Ignition:     extIgnImg,
		IgnitionFile: customize.PathIgnition,
		KargAreas:    []customize.KargArea{{Path: "EFI/redhat/grub.cfg", Area: extKargs}},
		AddrsizeHead: addrsizeHd,
	}
}

// testLayoutS390x is an older s390x image: kernel.img, no vmlinuz.
func testLayoutS390x() *customize.Layout {
	l := testLayout()
	files := map[string]customize.Area{}
	for k, v := range l.Files {
		files[k] = v
	}
	delete(files, customize.PathVmlinuz)
	files[customize.PathKernelImg] = extKernel
	l.Files = files
	return l
}

// testLayoutTiny has an ignition area too small for any archive.
func testLayoutTiny() *customize.Layout {
	l := testLayout()
	l.Ignition = customize.Area{Off: extIgnImg.Off, Len: 32}
	return l
}

type baseEntry struct {
	base catalog.Base
	err  error
}

// fakeBases is a Bases over a fixed map "version/arch/type" whose blobs
// are in store; each Open opens the blob anew.
type fakeBases struct {
	m     map[string]baseEntry
	store *cache.Store
	ready atomic.Bool
	lent  atomic.Int32 // files opened and not released
}

func (f *fakeBases) Base(_ context.Context, version, arch, imageType string) (catalog.Base, bool, error) {
	e, ok := f.m[version+"/"+arch+"/"+imageType]
	if !ok {
		return catalog.Base{}, false, nil
	}
	return e.base, true, e.err
}

func (f *fakeBases) Open(d cache.Digest) (*os.File, func(), error) {
	file, _, err := f.store.Open(d)
	if err != nil {
		return nil, nil, err
	}
	f.lent.Add(1)
	var once sync.Once
	return file, func() {
		once.Do(func() {
			file.Close()
			f.lent.Add(-1)
		})
	}, nil
}

// inUse reports whether a response holds a file.
func (f *fakeBases) inUse() bool { return f.lent.Load() != 0 }

func (f *fakeBases) Ready() bool    { return f.ready.Load() }
func (f *fakeBases) Health() []byte { return []byte(`{"images":[]}`) }

type srcCall struct {
	op, imageID, isoType string
	cred                 upstream.Credential
}

// fakeSource is an upstream.Source that records its calls.
type fakeSource struct {
	mu       sync.Mutex
	calls    []srcCall
	ignErr   error
	ramErr   error
	kargErr  error
	ramdisk  []byte
	kargs    []string
	ignition string
	lastMod  string
	block    chan struct{} // when set, Ignition waits for it to close
}

func (f *fakeSource) record(c srcCall) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

func (f *fakeSource) Calls() []srcCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]srcCall(nil), f.calls...)
}

func (f *fakeSource) Ignition(ctx context.Context, imageID, isoType string, cred upstream.Credential) (upstream.Ignition, error) {
	f.record(srcCall{"ignition", imageID, isoType, cred})
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return upstream.Ignition{}, ctx.Err()
		}
	}
	if f.ignErr != nil {
		return upstream.Ignition{}, f.ignErr
	}
	ign := f.ignition
	if ign == "" {
		ign = testIgnition
	}
	return upstream.Ignition{Data: []byte(ign), LastModified: f.lastMod}, nil
}

func (f *fakeSource) MinimalInitrd(ctx context.Context, imageID string, cred upstream.Credential) (*upstream.Blob, error) {
	f.record(srcCall{"minimal-initrd", imageID, "", cred})
	if f.ramdisk == nil {
		return nil, f.ramErr
	}
	return upstream.BytesBlob(f.ramdisk), f.ramErr
}

func (f *fakeSource) KernelArgs(ctx context.Context, imageID string, cred upstream.Credential) ([]string, error) {
	f.record(srcCall{"infra-env", imageID, "", cred})
	return f.kargs, f.kargErr
}

type harness struct {
	t      *testing.T
	src    *fakeSource
	bases  *fakeBases
	cfg    *config.Config
	base   []byte
	digest cache.Digest
	layout *customize.Layout // of the 4.18/x86_64 full, minimal and disconnected ISOs
	logs   *observer.ObservedLogs
	set    *metrics.Set
	srv    *Server
	client *http.Client // plain HTTP, keep-alive

	plainAddr, tlsAddr string    // the two listeners, both on 127.0.0.1
	tlsWrites          *writeLog // plaintext length of every Write on a TLS connection
	tlsRawWrites       *writeLog // length of every Write on the TCP connections beneath TLS
	transports         []*http.Transport
}

type harnessOpts struct {
	plainHTTP bool
	server    func(*Server) // adjusts the server before it serves
	config    func(*config.Config)
	src       func(*fakeSource)
	tcp       bool // kept for tests written before every harness used TCP
	metered   bool // wrap the fake source with upstream.Metered on the server's set
	// image replaces the base image and layout of the 4.18/x86_64 full,
	// minimal and disconnected ISOs.
	image func() ([]byte, *customize.Layout)
}

// writeLog records the lengths of writes.
type writeLog struct {
	mu    sync.Mutex
	sizes []int
}

func (w *writeLog) add(n int) {
	w.mu.Lock()
	w.sizes = append(w.sizes, n)
	w.mu.Unlock()
}

// take returns the lengths recorded since the last take.
func (w *writeLog) take() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.sizes
	w.sizes = nil
	return s
}

// newHarness serves a Server over real TCP on 127.0.0.1, on two listeners:
// plain HTTP and HTTPS (NewTLSListener's connections, with a test
// certificate for isoedge.test), as the service does.
func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	store, err := cache.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base, layout := testBaseBytes(), testLayout()
	if o.image != nil {
		base, layout = o.image()
	}
	d, n, err := store.Put(context.Background(), bytes.NewReader(base))
	if err != nil || n != int64(len(base)) {
		t.Fatalf("store.Put: %d bytes, %v", n, err)
	}
	std := catalog.Base{Digest: d, Layout: layout, ModTime: testBaseModTime}
	small, _, err := store.Put(context.Background(), bytes.NewReader(testBaseBytes()))
	if err != nil {
		t.Fatal(err)
	}
	s390 := catalog.Base{Digest: small, Layout: testLayoutS390x(), ModTime: testBaseModTime}
	tiny := catalog.Base{Digest: small, Layout: testLayoutTiny(), ModTime: testBaseModTime}
	notReady := baseEntry{err: fmt.Errorf("%w: downloading", catalog.ErrNotReady)}
	fb := &fakeBases{m: map[string]baseEntry{
		"4.18/x86_64/full-iso":         {base: std},
		"4.18/x86_64/minimal-iso":      {base: std},
		"4.18/x86_64/disconnected-iso": {base: std},
		"4.18/s390x/full-iso":          {base: s390},
		"4.18/s390x/disconnected-iso":  {base: s390},
		"4.19/x86_64/full-iso":         notReady,
		"4.19/x86_64/minimal-iso":      notReady,
		"4.19/s390x/full-iso":          notReady,
		"tiny/x86_64/full-iso":         {base: tiny},
	}, store: store}
	fb.ready.Store(true)
	src := &fakeSource{lastMod: testUpstream}
	if o.src != nil {
		o.src(src)
	}
	// A stream's slot is given back when fasthttp closes its body, just
	// after the client has read it, so the next request of a test may
	// wait for it: RequestWait is generous (it only costs time when a slot
	// leaks, and then the request still fails).
	cfg := &config.Config{MaxConcurrentRequests: 4, RequestWait: 10 * time.Second}
	if o.config != nil {
		o.config(cfg)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	set := metrics.NewSet()
	var source upstream.Source = src
	if o.metered {
		source = upstream.Metered(src, set)
	}
	srv := New(Options{Config: cfg, Bases: fb, Source: source, Log: log, Metrics: set})
	if o.server != nil {
		o.server(srv)
	}

	h := &harness{
		t: t, src: src, bases: fb, cfg: cfg, base: base, digest: d, layout: layout, logs: logs, set: set, srv: srv,
		tlsWrites: &writeLog{}, tlsRawWrites: &writeLog{},
	}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		plainLn.Close()
		t.Fatal(err)
	}
	tlsLn := newTLSListener(countingListener{tcpLn, h.tlsRawWrites}, &tls.Config{Certificates: []tls.Certificate{testCert(t).cert}, MinVersion: tls.VersionTLS12}, h.tlsWrites.add)
	h.plainAddr, h.tlsAddr = plainLn.Addr().String(), tcpLn.Addr().String()
	var served sync.WaitGroup
	for _, ln := range []net.Listener{plainLn, tlsLn} {
		hs := srv.newHTTPServer(srv.Handler(o.plainHTTP))
		served.Add(1)
		go func(hs *fasthttp.Server, ln net.Listener) {
			defer served.Done()
			_ = hs.Serve(ln)
		}(hs, ln)
	}
	t.Cleanup(func() {
		// Closing the listeners ends Serve at once; Shutdown would poll
		// for idle connections.
		for _, tr := range h.transports {
			tr.CloseIdleConnections()
		}
		_ = plainLn.Close()
		_ = tlsLn.Close()
		served.Wait()
	})
	h.client = h.newClient(false, true)
	return h
}

// countingListener records the length of every Write on its connections.
type countingListener struct {
	net.Listener
	log *writeLog
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.log}, nil
}

type countingConn struct {
	net.Conn
	log *writeLog
}

func (c countingConn) Write(p []byte) (int, error) {
	c.log.add(len(p))
	return c.Conn.Write(p)
}

// newClient returns a client of the harness's HTTPS (useTLS) or plain
// listener, with or without keep-alive. Requests name the host
// isoedge.test; the client dials the listener.
func (h *harness) newClient(useTLS, keepAlive bool) *http.Client {
	addr := h.plainAddr
	tr := &http.Transport{DisableCompression: true, DisableKeepAlives: !keepAlive, ForceAttemptHTTP2: false}
	if useTLS {
		addr = h.tlsAddr
		tr.TLSClientConfig = &tls.Config{RootCAs: testCert(h.t).pool, ServerName: "isoedge.test"}
	}
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	h.transports = append(h.transports, tr)
	return &http.Client{
		Transport:     tr,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// dial opens a new connection to the plain listener.
func (h *harness) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", h.plainAddr)
}

// url is the URL of path on the plain or the HTTPS listener.
func (h *harness) url(useTLS bool, path string) string {
	if useTLS {
		return "https://isoedge.test" + path
	}
	return "http://isoedge.test" + path
}

type result struct {
	code   int
	header http.Header
	body   []byte
}

func (h *harness) do(method, path string, hdr map[string]string) result {
	h.t.Helper()
	return h.doWith(h.client, method, h.url(false, path), hdr)
}

// doWith sends a request with client c to url u.
func (h *harness) doWith(c *http.Client, method, u string, hdr map[string]string) result {
	h.t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return result{resp.StatusCode, resp.Header, body}
}

func (h *harness) get(path string) result { return h.do(http.MethodGet, path, nil) }

// logText is every observed log entry, message and fields, as text.
func (h *harness) logText() string {
	var sb strings.Builder
	for _, e := range h.logs.All() {
		fmt.Fprintf(&sb, "%s %s %v\n", e.Level, e.Message, e.ContextMap())
	}
	return sb.String()
}

// waitFor polls cond for up to 30 seconds (a failure bound, generous for a
// busy machine): stream ends (slot release, metrics) run when fasthttp
// closes the body, just after the client has read it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testJWT is an (unsigned) image token for testID with the given signature.
func testJWT(sig string) string {
	payload := base64.RawStdEncoding.EncodeToString([]byte(`{"exp":1700000000,"sub":"` + testID + `"}`))
	return jwtHeader + "." + payload + "." + sig
}

// wantISO is the expected customized ISO, built from the base bytes
// directly rather than through a plan.
func wantISO(t *testing.T, base []byte, ignition string, kargs []string, ramdisk []byte) []byte {
	t.Helper()
	out := bytes.Clone(base)
	archive, err := customize.IgnitionArchive([]byte(ignition))
	if err != nil {
		t.Fatal(err)
	}
	area := out[extIgnImg.Off : extIgnImg.Off+extIgnImg.Len]
	clear(area)
	copy(area, archive)
	if ramdisk != nil {
		copy(out[extRamdisk.Off:], ramdisk)
	}
	if len(kargs) > 0 {
		copy(out[extKargs.Off:], " "+strings.Join(kargs, " ")+"\n")
	}
	return out
}

func slice(b []byte, a customize.Area) []byte { return b[a.Off : a.Off+a.Len] }
