package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
	"github.com/isoedge/isoedge/proxy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ---------------------------------------------------------------------------
// Fake assisted-service

const infraEnvPrefix = "/api/assisted-install/v2/infra-envs/"

// infraEnv is how the fake assisted-service answers for one InfraEnv id.
type infraEnv struct {
	ignition     []byte
	lastModified string  // Last-Modified of the ignition response; "" for none
	kargs        *string // kernel_arguments string; nil omits the field
	ramdisk      []byte  // minimal-initrd body; nil answers 204
	ignStatus    int     // non-zero: the ignition call answers this status
	ramStatus    int     // non-zero: the minimal-initrd call answers this status
	envStatus    int     // non-zero: the infra-env call answers this status
	delay        time.Duration
	gate         <-chan struct{} // non-nil: every answer waits until it is closed
}

// recordedReq is one request the fake received.
type recordedReq struct {
	ID     string // InfraEnv id segment of the path
	Kind   string // "ignition", "minimal-initrd", "infra-env" or "other"
	Path   string
	Query  url.Values
	Header http.Header
}

type fakeAS struct {
	srv  *httptest.Server
	mu   sync.Mutex
	envs map[string]*infraEnv
	reqs []recordedReq
}

func newFakeAS(t *testing.T) *fakeAS {
	t.Helper()
	f := &fakeAS{envs: map[string]*infraEnv{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// hostPort is the ASSISTED_SERVICE_HOST value for the fake.
func (f *fakeAS) hostPort() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeAS) set(id string, e *infraEnv) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.envs[id] = e
}

// requests returns the requests received for id.
func (f *fakeAS) requests(id string) []recordedReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recordedReq
	for _, r := range f.reqs {
		if r.ID == id {
			out = append(out, r)
		}
	}
	return out
}

// allRequests returns a copy of everything received.
func (f *fakeAS) allRequests() []recordedReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedReq(nil), f.reqs...)
}

func (f *fakeAS) serve(w http.ResponseWriter, r *http.Request) {
	rec := recordedReq{Kind: "other", Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()}
	rest, ok := strings.CutPrefix(r.URL.Path, infraEnvPrefix)
	if ok {
		id, suffix, _ := strings.Cut(rest, "/")
		rec.ID = id
		switch suffix {
		case "":
			rec.Kind = "infra-env"
		case "downloads/files":
			rec.Kind = "ignition"
		case "downloads/minimal-initrd":
			rec.Kind = "minimal-initrd"
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	e := f.envs[rec.ID]
	f.mu.Unlock()

	if r.Method != http.MethodGet || e == nil || rec.Kind == "other" {
		http.NotFound(w, r)
		return
	}
	if e.gate != nil {
		select {
		case <-e.gate:
		case <-r.Context().Done():
			return
		}
	}
	if e.delay > 0 {
		t := time.NewTimer(e.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	switch rec.Kind {
	case "ignition":
		if e.ignStatus != 0 {
			w.WriteHeader(e.ignStatus)
			return
		}
		if r.URL.Query().Get("file_name") != "discovery.ign" {
			http.Error(w, "bad file_name", http.StatusBadRequest)
			return
		}
		if e.lastModified != "" {
			w.Header().Set("Last-Modified", e.lastModified)
		}
		w.Header().Set("Content-Disposition", `attachment; filename="discovery.ign"`)
		w.Header().Set("Content-Length", fmt.Sprint(len(e.ignition)))
		_, _ = w.Write(e.ignition)
	case "minimal-initrd":
		if e.ramStatus != 0 {
			w.WriteHeader(e.ramStatus)
			return
		}
		if e.ramdisk == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(e.ramdisk)
	case "infra-env":
		if e.envStatus != 0 {
			w.WriteHeader(e.envStatus)
			return
		}
		doc := map[string]any{"id": rec.ID, "name": "test-infra-env"}
		if e.kargs != nil {
			doc["kernel_arguments"] = *e.kargs
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}
}

// ---------------------------------------------------------------------------
// isoedge instance

// syncBuffer collects log output of an instance.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Sync() error { return nil }

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type instance struct {
	app     *app
	url     string // http://127.0.0.1:port
	client  *http.Client
	dataDir string
	logs    *syncBuffer

	stopOnce sync.Once
	cancel   context.CancelFunc // stops the catalog
	catDone  chan struct{}
	stopSrv  context.CancelFunc // shuts the server down
	srvDone  chan error
}

// baseEnv returns the environment every instance starts from: data dirs
// under root and small minimum sizes (fixtures are small).
func baseEnv(root string) map[string]string {
	return map[string]string{
		"DATA_DIR":                  filepath.Join(root, "data"),
		"DATA_TEMP_DIR":             filepath.Join(root, "tmp"),
		"LOG_LEVEL":                 "debug",
		"OS_IMAGE_MIN_ROOTFS_BYTES": "1",
		"OS_IMAGE_MIN_KERNEL_BYTES": "1",
	}
}

// osImagesJSON returns an OS_IMAGES value.
func osImagesJSON(t *testing.T, images ...config.OSImage) string {
	t.Helper()
	b, err := json.Marshal(images)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startInstance loads the configuration from env (defaults applied by
// config.Load), builds the app, runs its populator and serves it on a real
// TCP listener. It is stopped at cleanup, or earlier with stop.
func startInstance(t *testing.T, env map[string]string) *instance {
	t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	logs := &syncBuffer{}
	enc := zap.NewDevelopmentEncoderConfig()
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), logs, zapcore.DebugLevel))
	a, err := newApp(cfg, log)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{
		app: a, dataDir: cfg.DataDir, logs: logs, cancel: cancel,
		catDone: make(chan struct{}), srvDone: make(chan error, 1),
	}
	go func() {
		defer close(in.catDone)
		a.cat.Run(ctx)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	in.stopSrv = stopSrv
	go func() { in.srvDone <- a.srv.Serve(srvCtx, proxy.Endpoint{Listener: ln}) }()
	in.url = "http://" + ln.Addr().String()
	in.client = &http.Client{
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 8},
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	t.Cleanup(func() {
		in.stop(t)
		if t.Failed() {
			out := in.logs.String()
			if len(out) > 20000 {
				out = "…" + out[len(out)-20000:]
			}
			t.Logf("isoedge log (%s):\n%s", in.url, out)
		}
	})
	return in
}

// stop shuts the instance down: server, populator, index. Idempotent.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.stopOnce.Do(func() {
		in.client.CloseIdleConnections()
		in.stopSrv()
		select {
		case err := <-in.srvDone:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Errorf("server did not shut down")
		}
		in.cancel()
		select {
		case <-in.catDone:
		case <-time.After(10 * time.Second):
			t.Errorf("catalog did not stop")
		}
		if err := in.app.index.Close(); err != nil {
			t.Errorf("index close: %v", err)
		}
	})
}

// healthDoc is the /health body.
type healthDoc struct {
	Ready  bool `json:"ready"`
	Images []struct {
		OpenshiftVersion string `json:"openshift_version"`
		Version          string `json:"version"`
		Arch             string `json:"cpu_architecture"`
		Type             string `json:"type"`
		State            string `json:"state"`
		Error            string `json:"error"`
		Digest           string `json:"digest"`
	} `json:"images"`
}

// waitReady polls /health until 200 and returns the last health document.
func (in *instance) waitReady(t *testing.T, timeout time.Duration) healthDoc {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, body := in.do(t, "GET", "/health", nil)
		if resp.StatusCode == http.StatusOK {
			var h healthDoc
			if err := json.Unmarshal(body, &h); err != nil {
				t.Fatalf("/health body is not JSON: %v: %q", err, body)
			}
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health still %d after %v: %s", resp.StatusCode, timeout, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// do sends one request and reads the whole body.
func (in *instance) do(t *testing.T, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, in.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := in.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, body
}

// get is do("GET") with an expected status.
func (in *instance) get(t *testing.T, path string, hdr map[string]string, want int) (*http.Response, []byte) {
	t.Helper()
	resp, body := in.do(t, "GET", path, hdr)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d; body %.300q", path, resp.StatusCode, want, body)
	}
	return resp, body
}

// ---------------------------------------------------------------------------
// ISO helpers (independent of the code under test)

// span is a byte range [off, off+n) of an ISO.
type span struct {
	name   string
	off, n int64
}

var kargMarkerRE = regexp.MustCompile(`\n#*# COREOS_KARG_EMBED_AREA`)

const markerTail = "# COREOS_KARG_EMBED_AREA"

// kargArea locates the karg embed area of a boot config in the base ISO:
// from the newline ending the kernel command line up to (not including) the
// last '#' before " COREOS_KARG_EMBED_AREA".
func kargArea(t *testing.T, iso string, isoBytes []byte, cfgPath string) span {
	t.Helper()
	off, size := fixture.ISOOffset(t, iso, cfgPath)
	content := isoBytes[off : off+size]
	loc := kargMarkerRE.FindIndex(content)
	if loc == nil {
		t.Fatalf("%s: no COREOS_KARG_EMBED_AREA marker in the base ISO", cfgPath)
	}
	return span{name: "kargs " + cfgPath, off: off + int64(loc[0]), n: int64(loc[1]-loc[0]) - int64(len(markerTail))}
}

// assertSameOutside checks got == base everywhere outside the spans.
func assertSameOutside(t *testing.T, got, base []byte, spans ...span) {
	t.Helper()
	if len(got) != len(base) {
		t.Fatalf("length %d, want %d", len(got), len(base))
	}
	excluded := func(i int64) (int64, bool) {
		for _, s := range spans {
			if i >= s.off && i < s.off+s.n {
				return s.off + s.n, true
			}
		}
		return 0, false
	}
	for i := int64(0); i < int64(len(base)); {
		if end, ok := excluded(i); ok {
			i = end
			continue
		}
		// compare up to the next span start
		next := int64(len(base))
		for _, s := range spans {
			if s.off > i && s.off < next {
				next = s.off
			}
		}
		if !bytes.Equal(got[i:next], base[i:next]) {
			for j := i; j < next; j++ {
				if got[j] != base[j] {
					t.Fatalf("byte %d differs from the base ISO (got %#x, want %#x) outside the embed areas", j, got[j], base[j])
				}
			}
		}
		i = next
	}
}

// gzipMemberEnd returns the length of the gzip member at the start of b,
// found with the standard library (a byte reader keeps flate from reading
// ahead).
func gzipMemberEnd(t *testing.T, b []byte) int {
	t.Helper()
	r := bytes.NewReader(b)
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatalf("not a gzip member: %v", err)
	}
	zr.Multistream(false)
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Fatalf("bad gzip member: %v", err)
	}
	return len(b) - r.Len()
}

// writeTemp writes b to a new file and returns its path.
func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// makeJWT returns an unsigned-looking JWT whose payload is claims.
func makeJWT(claims string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(claims)) + "." +
		enc.EncodeToString([]byte("not-a-real-signature:"+claims))
}

// ignitionFor returns a distinctive ignition config for a test.
func ignitionFor(name string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA%s"]}]},"storage":{"files":[`, name)
	for i := range 40 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"path":"/etc/%s/%d","contents":{"source":"data:,%s-%d"}}`, name, i, name, i*7919)
	}
	b.WriteString("]}}\n")
	return []byte(b.String())
}

func ptr[T any](v T) *T { return &v }
