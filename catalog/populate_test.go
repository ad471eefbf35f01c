package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/goroutines"
	"github.com/isoedge/isoedge/upstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Messages the populator logs that the tests synchronise on.
const (
	msgDownloadFailed = "OS image download failed"
	msgBudgetStuck    = "disk budget exceeded, nothing can be evicted"
	msgBudgetEvictErr = "disk budget: evicting"
	msgFirstPassDone  = "first pass over OS images done"
)

// Where the populator's goroutines wait, for goroutines.Wait.
const (
	fnAcquireSlot = "github.com/isoedge/isoedge/catalog.(*Catalog).acquireSlot"
	fnEnsure      = "github.com/isoedge/isoedge/catalog.(*Catalog).Ensure"
)

// popBlob returns n pseudo-random bytes, the same for the same seed.
func popBlob(seed uint64, n int) []byte {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func popImage(ocp, rhcos, arch, url string) config.OSImage {
	return config.OSImage{OpenshiftVersion: ocp, Version: rhcos, CPUArchitecture: arch, URL: url}
}

// popServer serves one image body and records every request's Range header.
type popServer struct {
	body   []byte
	srv    *httptest.Server
	mu     sync.Mutex
	ranges []string // Range header of each request, "" when absent
	// handle answers request number n (1-based); nil serves body with
	// support for "Range: bytes=N-".
	handle func(n int, w http.ResponseWriter, r *http.Request)
}

func newPopServer(t *testing.T, body []byte, handle func(n int, w http.ResponseWriter, r *http.Request)) *popServer {
	t.Helper()
	s := &popServer{body: body, handle: handle}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		n := len(s.ranges)
		h := s.handle
		s.mu.Unlock()
		if h == nil {
			serveRange(w, r, s.body)
			return
		}
		h(n, w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *popServer) url(name string) string { return s.srv.URL + "/" + name }

func (s *popServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ranges)
}

func (s *popServer) rangeLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// setHandler replaces the handler and forgets the requests seen so far.
func (s *popServer) setHandler(h func(n int, w http.ResponseWriter, r *http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handle = h
	s.ranges = nil
}

// popETag is the validator every popServer answer carries for body.
func popETag(body []byte) string { return `"` + cache.DigestOf(body).Hex()[:16] + `"` }

// serveRange answers "Range: bytes=N-" with 206 when If-Range, if sent,
// names body's ETag, and anything else with the whole body.
func serveRange(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("ETag", popETag(body))
	ir := r.Header.Get("If-Range")
	if spec, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes="); ok && strings.HasSuffix(spec, "-") && (ir == "" || ir == popETag(body)) {
		off, err := strconv.Atoi(strings.TrimSuffix(spec, "-"))
		if err == nil && off >= 0 && off < len(body) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(body)-1, len(body)))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)-off))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body[off:])
			return
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// cutResponse answers 200 with body's full Content-Length (and etag, if
// not empty) but sends only its first n bytes, then closes the connection:
// a download cut in the middle.
func cutResponse(w http.ResponseWriter, etag string, body []byte, n int) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	buf.WriteString("HTTP/1.1 200 OK\r\n")
	if etag != "" {
		fmt.Fprintf(buf, "ETag: %s\r\n", etag)
	}
	fmt.Fprintf(buf, "Content-Length: %d\r\n\r\n", len(body))
	buf.Write(body[:n])
	buf.Flush()
}

func serveStatus(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, http.StatusText(code), code)
	}
}

// fakeInspector stands in for the ISO parser.
type fakeInspector struct {
	mu     sync.Mutex
	reject error
	calls  []time.Time
	seen   []cache.Digest // digest of the file each call was given
}

func (f *fakeInspector) inspect(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, time.Now())
	if err != nil {
		return nil, err
	}
	f.seen = append(f.seen, cache.DigestOf(b))
	if f.reject != nil {
		return nil, f.reject
	}
	return []byte(`{}`), nil
}

func (f *fakeInspector) setReject(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reject = err
}

func (f *fakeInspector) callTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

// popEnv is one DATA_DIR: store, index, fetcher and inspector.
type popEnv struct {
	store   *cache.Store
	index   *cache.Index
	fetcher *upstream.Fetcher
	insp    *fakeInspector
}

func newPopEnv(t *testing.T) *popEnv {
	t.Helper()
	store, err := cache.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	index, _, err := cache.OpenIndex(store.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { index.Close() })
	fetcher, err := upstream.NewFetcher(upstream.FetcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &popEnv{store: store, index: index, fetcher: fetcher, insp: &fakeInspector{}}
}

func (e *popEnv) config(t *testing.T, imgs ...config.OSImage) Config {
	return Config{
		Images:     imgs,
		Store:      e.store,
		Index:      e.index,
		Fetcher:    e.fetcher,
		Inspect:    e.insp.inspect,
		TempDir:    t.TempDir(),
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
		// Nothing derives from the fake images these tests store.
		Derive: func(context.Context, cache.BaseRecord) error { return nil },
	}
}

// mustNew returns a Catalog for cfg.
func mustNew(t *testing.T, cfg Config) *Catalog {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// blobsDir is DATA_DIR/blobs/sha256.
func (e *popEnv) blobsDir() string { return filepath.Join(e.store.Root(), "blobs", "sha256") }

// strays lists what lies in blobs/sha256 besides fan-out directories:
// temp files and resumable downloads.
func (e *popEnv) strays(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(e.blobsDir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ent := range ents {
		if !ent.IsDir() || len(ent.Name()) != 2 {
			out = append(out, ent.Name())
		}
	}
	return out
}

func (e *popEnv) blobs(t *testing.T) []cache.Digest {
	t.Helper()
	ds, err := e.store.List()
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// checkBlob asserts the store holds d with exactly want as content.
func (e *popEnv) checkBlob(t *testing.T, d cache.Digest, want []byte) {
	t.Helper()
	f, size, err := e.store.Open(d)
	if err != nil {
		t.Errorf("blob %s: %v", d, err)
		return
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(want)) || !bytes.Equal(got, want) {
		t.Errorf("blob %s: %d bytes, want the %d served bytes", d, len(got), len(want))
	}
}

// newPopLogger returns a logger recording every entry; hook, if not nil,
// runs synchronously for each entry, in the goroutine that logs it.
func newPopLogger(hook func(zapcore.Entry)) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	var opts []zap.Option
	if hook != nil {
		opts = append(opts, zap.Hooks(func(e zapcore.Entry) error {
			hook(e)
			return nil
		}))
	}
	return zap.New(core, opts...), logs
}

// runPopulator runs p until the test ends (or the returned stop is
// called) and checks that Run returns within 5 s of its context ending.
func runPopulator(t *testing.T, p *Catalog) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not return within 5s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func isReady(p *Catalog, img config.OSImage) bool {
	_, _, err := p.Lookup(img.Version, img.CPUArchitecture, config.TypeFullISO)
	return err == nil
}

func waitReady(t *testing.T, p *Catalog, timeout time.Duration, imgs ...config.OSImage) {
	t.Helper()
	waitFor(t, timeout, "images ready", func() bool {
		for _, img := range imgs {
			if !isReady(p, img) {
				return false
			}
		}
		return true
	})
}

type popHealth struct {
	Ready  bool          `json:"ready"`
	Images []ImageStatus `json:"images"`
	Scrub  ScrubStatus   `json:"scrub"`
}

func parseHealth(t *testing.T, b []byte) popHealth {
	t.Helper()
	var h popHealth
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("Health() is not JSON: %v: %s", err, b)
	}
	return h
}

func (h popHealth) image(version string) (ImageStatus, bool) {
	for _, s := range h.Images {
		if s.Version == version {
			return s, true
		}
	}
	return ImageStatus{}, false
}

// eagerTwo runs an eager populator over two images until both are ready.
func eagerTwo(t *testing.T) (env *popEnv, a, b *popServer, imgs []config.OSImage, p *Catalog, stop func()) {
	t.Helper()
	env = newPopEnv(t)
	a = newPopServer(t, popBlob(1, 384<<10), nil)
	b = newPopServer(t, popBlob(2, 1536<<10+7), nil)
	imgs = []config.OSImage{
		popImage("4.16", "416.94.202406251923-0", "x86_64", a.url("rhcos-416.iso")),
		popImage("4.17", "417.94.202409120353-0", "aarch64", b.url("rhcos-417.iso")),
	}
	p = mustNew(t, env.config(t, imgs...))
	stop = runPopulator(t, p)
	waitReady(t, p, 10*time.Second, imgs...)
	return env, a, b, imgs, p, stop
}

func TestPopulatorEagerFetchesEveryImage(t *testing.T) {
	env, a, b, imgs, p, _ := eagerTwo(t)

	waitFor(t, 30*time.Second, "Ready()", p.Ready)
	if a.requests() != 1 || b.requests() != 1 {
		t.Errorf("requests: a=%d b=%d, want one each", a.requests(), b.requests())
	}

	bodies := map[string][]byte{imgs[0].Version: a.body, imgs[1].Version: b.body}

	// By RHCOS version, by OpenShift version; minimal-iso resolves to full-iso.
	for _, tc := range []struct {
		version, arch, typ, want string
	}{
		{imgs[0].Version, "x86_64", config.TypeFullISO, imgs[0].Version},
		{"4.16", "x86_64", config.TypeFullISO, imgs[0].Version},
		{imgs[1].Version, "aarch64", config.TypeFullISO, imgs[1].Version},
		{"4.17", "aarch64", "minimal-iso", imgs[1].Version},
	} {
		rec, configured, err := p.Lookup(tc.version, tc.arch, tc.typ)
		if err != nil || !configured {
			t.Errorf("Lookup(%q, %q, %q) = configured %v, %v", tc.version, tc.arch, tc.typ, configured, err)
			continue
		}
		body := bodies[tc.want]
		if rec.Key.Version != tc.want || rec.Digest != cache.DigestOf(body) || rec.Size != int64(len(body)) {
			t.Errorf("Lookup(%q, %q): got %s %s %d bytes, want %s %s %d bytes",
				tc.version, tc.arch, rec.Key.Version, rec.Digest, rec.Size, tc.want, cache.DigestOf(body), len(body))
		}
		env.checkBlob(t, rec.Digest, body)
	}

	for _, tc := range []struct{ version, arch string }{
		{"4.18", "x86_64"},
		{"416.94.0-0", "x86_64"},
		{"4.16", "aarch64"}, // configured version, other architecture
		{"4.17", "x86_64"},
	} {
		rec, configured, err := p.Lookup(tc.version, tc.arch, config.TypeFullISO)
		if configured || err != nil || rec != (cache.BaseRecord{}) {
			t.Errorf("Lookup(%q, %q) = %+v, configured %v, %v; want nothing configured", tc.version, tc.arch, rec, configured, err)
		}
	}
	if _, configured, _ := p.Lookup("4.16", "x86_64", config.TypeDisconnectedISO); configured {
		t.Errorf("disconnected-iso Lookup found the full-iso entry")
	}

	h := parseHealth(t, p.Health())
	if !h.Ready || len(h.Images) != 2 {
		t.Fatalf("health: %+v", h)
	}
	for _, img := range imgs {
		s, ok := h.image(img.Version)
		if !ok {
			t.Errorf("health lacks %s", img.Version)
			continue
		}
		want := cache.DigestOf(bodies[img.Version]).String()
		if s.State != StateReady || s.Digest != want || s.OpenshiftVersion != img.OpenshiftVersion ||
			s.Arch != img.CPUArchitecture || s.Type != config.TypeFullISO || s.Error != "" || !s.RetryAt.IsZero() {
			t.Errorf("health of %s: %+v, want ready with digest %s", img.Version, s, want)
		}
	}

	if got := env.blobs(t); len(got) != 2 {
		t.Errorf("store holds %d blobs, want 2", len(got))
	}
	for _, img := range imgs {
		rec, err := env.index.Base(baseKey(img))
		if err != nil {
			t.Errorf("index lacks %s: %v", img.Version, err)
			continue
		}
		// The record keeps the URL's digest, never the URL (it may carry a token).
		if rec.URL != sourceID(img.URL) || strings.Contains(rec.URL, "http") || rec.Digest != cache.DigestOf(bodies[img.Version]) || rec.OpenshiftVersion != img.OpenshiftVersion {
			t.Errorf("index record %+v", rec)
		}
	}
	if s := env.strays(t); len(s) != 0 {
		t.Errorf("blobs/sha256 holds leftovers %v", s)
	}
}

func TestPopulatorRestartRestoresWithoutDownload(t *testing.T) {
	env, a, b, imgs, _, stop := eagerTwo(t)
	stop()

	for _, s := range []*popServer{a, b} {
		s.setHandler(serveStatus(http.StatusInternalServerError))
	}
	p := mustNew(t, env.config(t, imgs...))
	if p.Ready() {
		t.Errorf("Ready() before Run")
	}
	stop = runPopulator(t, p)
	waitFor(t, 30*time.Second, "Ready() after restart", p.Ready)
	for _, img := range imgs {
		if !isReady(p, img) {
			t.Errorf("%s not ready after restart", img.Version)
		}
	}
	h := parseHealth(t, p.Health())
	for _, img := range imgs {
		if s, _ := h.image(img.Version); s.State != StateReady {
			t.Errorf("health after restart: %s is %q", img.Version, s.State)
		}
	}
	// Run has returned once stop does: whatever it started (a download
	// started anyway) is over and would show in the counts.
	stop()
	if a.requests() != 0 || b.requests() != 0 {
		t.Errorf("restart made requests: a=%d b=%d, want none", a.requests(), b.requests())
	}

	// The second entry now points elsewhere, with other content: it alone
	// is fetched again.
	newBody := popBlob(3, 640<<10)
	a.setHandler(nil)
	b.setHandler(func(_ int, w http.ResponseWriter, r *http.Request) { serveRange(w, r, newBody) })
	moved := append([]config.OSImage(nil), imgs...)
	moved[1].URL = b.url("rhcos-417-respin.iso")
	p = mustNew(t, env.config(t, moved...))
	runPopulator(t, p)
	waitFor(t, 30*time.Second, "moved image fetched", func() bool {
		rec, _, err := p.Lookup(moved[1].Version, moved[1].CPUArchitecture, config.TypeFullISO)
		return err == nil && rec.URL == sourceID(moved[1].URL)
	})
	if a.requests() != 0 {
		t.Errorf("unchanged image was requested %d times", a.requests())
	}
	if got := b.rangeLog(); len(got) != 1 || got[0] != "" {
		t.Errorf("moved image requests (Range headers) %q, want one plain GET", got)
	}
	rec, _, _ := p.Lookup(moved[1].Version, moved[1].CPUArchitecture, config.TypeFullISO)
	if rec.Digest != cache.DigestOf(newBody) {
		t.Errorf("moved image digest %s, want %s", rec.Digest, cache.DigestOf(newBody))
	}
	env.checkBlob(t, rec.Digest, newBody)
	if ir, err := env.index.Base(baseKey(moved[1])); err != nil || ir.URL != sourceID(moved[1].URL) || ir.Digest != rec.Digest {
		t.Errorf("index record after URL change: %+v, %v", ir, err)
	}
}

func TestPopulatorRetriesAfterServerErrors(t *testing.T) {
	env := newPopEnv(t)
	body := popBlob(4, 700<<10)
	srv := newPopServer(t, body, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		serveRange(w, r, body)
	})
	img := popImage("4.16", "416.94.1-0", "x86_64", srv.url("a.iso"))

	// Snapshot /health at the moment each failure is logged: the entry is
	// failed then, and stays so until the backoff ends.
	var pp atomic.Pointer[Catalog]
	var mu sync.Mutex
	var failures []ImageStatus
	log, _ := newPopLogger(func(e zapcore.Entry) {
		if e.Message != msgDownloadFailed {
			return
		}
		var h popHealth
		if err := json.Unmarshal(pp.Load().Health(), &h); err == nil && len(h.Images) == 1 {
			mu.Lock()
			failures = append(failures, h.Images[0])
			mu.Unlock()
		}
	})
	cfg := env.config(t, img)
	cfg.Log = log
	p := mustNew(t, cfg)
	pp.Store(p)
	start := time.Now()
	runPopulator(t, p)
	waitReady(t, p, 10*time.Second, img)
	// Servable (what derives from it built): no longer failing.
	waitFor(t, 10*time.Second, "servable", p.Ready)

	mu.Lock()
	defer mu.Unlock()
	if len(failures) != 2 {
		t.Fatalf("%d failures logged, want 2", len(failures))
	}
	for i, s := range failures {
		if s.State != StateFailed || !strings.Contains(s.Error, "503") || s.RetryAt.Before(start) || s.Digest != "" {
			t.Errorf("health after failure %d: %+v, want failed, a reason naming 503 and retry_at", i+1, s)
		}
	}
	if !failures[1].RetryAt.After(failures[0].RetryAt) {
		t.Errorf("retry_at did not move on: %v then %v", failures[0].RetryAt, failures[1].RetryAt)
	}
	if got := srv.requests(); got != 3 {
		t.Errorf("%d requests, want 3", got)
	}

	s, _ := parseHealth(t, p.Health()).image(img.Version)
	if s.State != StateReady || s.Error != "" || !s.RetryAt.IsZero() || s.Digest != cache.DigestOf(body).String() {
		t.Errorf("health once ready: %+v", s)
	}
	rec, _, _ := p.Lookup(img.Version, img.CPUArchitecture, config.TypeFullISO)
	env.checkBlob(t, rec.Digest, body)
	if st := env.strays(t); len(st) != 0 {
		t.Errorf("blobs/sha256 holds leftovers after success: %v", st)
	}
}

func TestPopulatorWrongDigestNeverReady(t *testing.T) {
	env := newPopEnv(t)
	body := popBlob(5, 300<<10)
	srv := newPopServer(t, body, nil)
	img := popImage("4.16", "416.94.1-0", "x86_64", srv.url("a.iso"))
	img.SHA256 = cache.DigestOf(append([]byte("x"), body...)).Hex()

	// At each logged failure the attempt is over: its file must be gone.
	var mu sync.Mutex
	var leftovers [][]string
	log, _ := newPopLogger(func(e zapcore.Entry) {
		if e.Message != msgDownloadFailed {
			return
		}
		ents, _ := os.ReadDir(env.blobsDir())
		var names []string
		for _, ent := range ents {
			if !ent.IsDir() {
				names = append(names, ent.Name())
			}
		}
		mu.Lock()
		leftovers = append(leftovers, names)
		mu.Unlock()
	})
	cfg := env.config(t, img)
	cfg.Log = log
	p := mustNew(t, cfg)
	runPopulator(t, p)

	// Two attempts fail (the second a retry after backoff); the image is
	// never ready meanwhile.
	waitFor(t, 30*time.Second, "two failed attempts", func() bool {
		if isReady(p, img) || p.Ready() {
			t.Fatal("image with a wrong sha256 became ready")
		}
		mu.Lock()
		defer mu.Unlock()
		return len(leftovers) >= 2
	})
	s, _ := parseHealth(t, p.Health()).image(img.Version)
	if s.State != StateFailed && s.State != StateDownloading {
		t.Errorf("state %q", s.State)
	}
	if got := env.blobs(t); len(got) != 0 {
		t.Errorf("store holds %v, want nothing committed", got)
	}
	if _, err := env.index.Base(baseKey(img)); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("index has a record: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leftovers) < 2 {
		t.Fatalf("%d failed attempts, want retries", len(leftovers))
	}
	for i, names := range leftovers {
		if len(names) != 0 {
			t.Errorf("after failed attempt %d blobs/sha256 holds %v, want the partial removed", i+1, names)
		}
	}
	if srv.requests() < 2 {
		t.Errorf("%d requests, want retries", srv.requests())
	}
	for i, r := range srv.rangeLog() {
		if r != "" {
			t.Errorf("request %d resumed (%q) a download that was rejected", i+1, r)
		}
	}
}

func TestPopulatorTruncatedBodyNeverReady(t *testing.T) {
	env := newPopEnv(t)
	body := popBlob(6, 512<<10)
	srv := newPopServer(t, body, func(_ int, w http.ResponseWriter, _ *http.Request) {
		// Always 200, Range or not, and always short of Content-Length.
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:len(body)/2])
	})
	img := popImage("4.16", "416.94.1-0", "x86_64", srv.url("a.iso"))
	cfg := env.config(t, img)
	var logs *observer.ObservedLogs
	cfg.Log, logs = newPopLogger(nil)
	p := mustNew(t, cfg)
	runPopulator(t, p)

	// Two attempts end in failure (the second a retry); the image is never
	// ready meanwhile.
	waitFor(t, 30*time.Second, "two failed attempts", func() bool {
		if isReady(p, img) {
			t.Fatal("truncated image became ready")
		}
		return logs.FilterMessage(msgDownloadFailed).Len() >= 2
	})
	if got := env.blobs(t); len(got) != 0 {
		t.Errorf("store holds %v, want nothing committed", got)
	}
	if n := len(env.insp.callTimes()); n != 0 {
		t.Errorf("Inspect called %d times on truncated downloads", n)
	}
	if srv.requests() < 2 {
		t.Errorf("%d requests, want retries", srv.requests())
	}
	s, _ := parseHealth(t, p.Health()).image(img.Version)
	if s.State == StateReady {
		t.Errorf("health: %+v", s)
	}
}

func TestPopulatorResumesInterruptedDownload(t *testing.T) {
	env := newPopEnv(t)
	body := popBlob(7, 2<<20+333)
	half := len(body) / 2
	srv := newPopServer(t, body, func(n int, w http.ResponseWriter, r *http.Request) {
		if n > 1 {
			serveRange(w, r, body)
			return
		}
		cutResponse(w, popETag(body), body, half)
	})
	img := popImage("4.16", "416.94.1-0", "x86_64", srv.url("a.iso"))
	p := mustNew(t, env.config(t, img))
	runPopulator(t, p)
	waitReady(t, p, 10*time.Second, img)

	got := srv.rangeLog()
	if len(got) != 2 || got[0] != "" || got[1] != fmt.Sprintf("bytes=%d-", half) {
		t.Errorf("Range headers %q, want [\"\" \"bytes=%d-\"]", got, half)
	}
	rec, _, _ := p.Lookup(img.Version, img.CPUArchitecture, config.TypeFullISO)
	if rec.Digest != cache.DigestOf(body) || rec.Size != int64(len(body)) {
		t.Errorf("record %s %d bytes, want %s %d", rec.Digest, rec.Size, cache.DigestOf(body), len(body))
	}
	env.checkBlob(t, rec.Digest, body)
	if st := env.strays(t); len(st) != 0 {
		t.Errorf("blobs/sha256 holds leftovers: %v", st)
	}
}

func TestPopulatorResumesPartialFromEarlierProcess(t *testing.T) {
	env := newPopEnv(t)
	body := popBlob(8, 1<<20+17)
	const have = 300001
	// The first process's download is cut after `have` bytes; it then
	// waits a long backoff and is stopped, leaving its partial behind.
	srv := newPopServer(t, body, func(n int, w http.ResponseWriter, r *http.Request) {
		if n > 1 {
			serveRange(w, r, body)
			return
		}
		cutResponse(w, popETag(body), body, have)
	})
	img := popImage("4.16", "416.94.1-0", "x86_64", srv.url("a.iso"))
	cfg := env.config(t, img)
	cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
	first := mustNew(t, cfg)
	stop := runPopulator(t, first)
	waitFor(t, 10*time.Second, "the first download failing", func() bool {
		s, _ := parseHealth(t, first.Health()).image(img.Version)
		return s.Failing
	})
	stop()

	p := mustNew(t, env.config(t, img))
	runPopulator(t, p)
	waitReady(t, p, 10*time.Second, img)

	if got := srv.rangeLog(); len(got) != 2 || got[1] != fmt.Sprintf("bytes=%d-", have) {
		t.Errorf("Range headers %q, want the second request for bytes=%d-", got, have)
	}
	rec, _, _ := p.Lookup(img.Version, img.CPUArchitecture, config.TypeFullISO)
	if rec.Digest != cache.DigestOf(body) {
		t.Errorf("digest %s, want %s", rec.Digest, cache.DigestOf(body))
	}
	env.checkBlob(t, rec.Digest, body)
}

// TestPopulatorNeverMixesTwoVersions: the mirror replaces the file with
// another of the same size between an interrupted attempt and its resume;
// the stored image is the new file, byte for byte, never a mix.
func TestPopulatorNeverMixesTwoVersions(t *testing.T) {
	env := newPopEnv(t)
	oldBody, newBody := popBlob(9, 1<<20), popBlob(10, 1<<20)
	const have = 400000
	srv := newPopServer(t, nil, func(n int, w http.ResponseWriter, r *http.Request) {
		if n > 1 {
			serveRange(w, r, newBody)
			return
		}
		cutResponse(w, popETag(oldBody), oldBody, have)
	})
	img := popImage("4.16", "416.94.1-0", "x86_64", srv.url("a.iso"))
	p := mustNew(t, env.config(t, img))
	runPopulator(t, p)
	waitReady(t, p, 10*time.Second, img)
	rec, _, _ := p.Lookup(img.Version, img.CPUArchitecture, config.TypeFullISO)
	if rec.Digest != cache.DigestOf(newBody) {
		t.Fatalf("stored %s, want the new file %s (old %s)", rec.Digest, cache.DigestOf(newBody), cache.DigestOf(oldBody))
	}
	env.checkBlob(t, rec.Digest, newBody)
}

// TestPopulatorNoValidatorStartsOver: bytes from a source that names no
// version (no ETag, no Last-Modified) are never resumed.
func TestPopulatorNoValidatorStartsOver(t *testing.T) {
	env := newPopEnv(t)
	body := popBlob(11, 1<<20)
	srv := newPopServer(t, nil, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			cutResponse(w, "", body, 1000)
		} else {
			cutResponse(w, "", body, len(body))
		}
	})
	img := popImage("4.16", "416.94.1-0", "x86_64", srv.url("a.iso"))
	p := mustNew(t, env.config(t, img))
	runPopulator(t, p)
	waitReady(t, p, 10*time.Second, img)
	if got := srv.rangeLog(); len(got) != 2 || got[1] != "" {
		t.Errorf("Range headers %q, want a second request from the start", got)
	}
	rec, _, _ := p.Lookup(img.Version, img.CPUArchitecture, config.TypeFullISO)
	env.checkBlob(t, rec.Digest, body)
}

// TestPopulatorZeroDigestFails: a sha256 of all zeros is checked like any
// other, so the image is never stored.
func TestPopulatorZeroDigestFails(t *testing.T) {
	env := newPopEnv(t)
	srv := newPopServer(t, popBlob(12, 64<<10), nil)
	img := popImage("4.16", "416.94.1-0", "x86_64", srv.url("a.iso"))
	img.SHA256 = strings.Repeat("0", 64)
	p := mustNew(t, env.config(t, img))
	runPopulator(t, p)
	waitFor(t, 10*time.Second, "the image failing", func() bool {
		s, _ := parseHealth(t, p.Health()).image(img.Version)
		return s.Failing && strings.Contains(s.Error, "all zeros")
	})
	if isReady(p, img) || len(env.blobs(t)) != 0 {
		t.Error("an image was stored against a sha256 of zeros")
	}
}

func TestPopulatorInspectRejects(t *testing.T) {
	env := newPopEnv(t)
	body := popBlob(9, 256<<10)
	srv := newPopServer(t, body, nil)
	img := popImage("4.16", "416.94.1-0", "x86_64", srv.url("a.iso"))
	const why = "inspect: no ISO 9660 primary volume descriptor"
	env.insp.setReject(errors.New(why))

	var pp atomic.Pointer[Catalog]
	var mu sync.Mutex
	var failures []ImageStatus
	var leftovers []string
	log, _ := newPopLogger(func(e zapcore.Entry) {
		if e.Message != msgDownloadFailed {
			return
		}
		var h popHealth
		json.Unmarshal(pp.Load().Health(), &h)
		ents, _ := os.ReadDir(env.blobsDir())
		mu.Lock()
		defer mu.Unlock()
		if len(h.Images) == 1 {
			failures = append(failures, h.Images[0])
		}
		for _, ent := range ents {
			if !ent.IsDir() {
				leftovers = append(leftovers, ent.Name())
			}
		}
	})
	cfg := env.config(t, img)
	cfg.Log = log
	p := mustNew(t, cfg)
	pp.Store(p)
	runPopulator(t, p)

	waitFor(t, 30*time.Second, "a second inspection", func() bool { return len(env.insp.callTimes()) >= 2 })
	if isReady(p, img) {
		t.Fatal("rejected image is ready")
	}
	if got := env.blobs(t); len(got) != 0 {
		t.Errorf("store holds %v after rejections", got)
	}
	calls := env.insp.callTimes()
	if gap := calls[1].Sub(calls[0]); gap < cfg.MinBackoff {
		t.Errorf("retried after %v, want at least MinBackoff %v", gap, cfg.MinBackoff)
	}
	env.insp.mu.Lock()
	for i, d := range env.insp.seen {
		if d != cache.DigestOf(body) {
			t.Errorf("inspection %d saw %s, want the whole image", i+1, d)
		}
	}
	env.insp.mu.Unlock()
	mu.Lock()
	if len(failures) == 0 {
		t.Error("no failure logged")
	}
	for _, s := range failures {
		if s.State != StateFailed || s.Error != why || s.RetryAt.IsZero() {
			t.Errorf("health after rejection: %+v, want failed with %q", s, why)
		}
	}
	if len(leftovers) != 0 {
		t.Errorf("rejected download left %v in blobs/sha256", leftovers)
	}
	mu.Unlock()

	// Once the inspector accepts, the next retry stores it.
	env.insp.setReject(nil)
	waitReady(t, p, 30*time.Second, img)
	rec, _, _ := p.Lookup(img.Version, img.CPUArchitecture, config.TypeFullISO)
	env.checkBlob(t, rec.Digest, body)
}

func TestPopulatorConcurrencyLimit(t *testing.T) {
	env := newPopEnv(t)
	release := make(chan struct{})
	var inFlight, maxInFlight, total atomic.Int32
	var imgs []config.OSImage
	for i := range 4 {
		body := popBlob(uint64(20+i), 200<<10+i)
		srv := newPopServer(t, body, func(_ int, w http.ResponseWriter, r *http.Request) {
			total.Add(1)
			n := inFlight.Add(1)
			for {
				m := maxInFlight.Load()
				if n <= m || maxInFlight.CompareAndSwap(m, n) {
					break
				}
			}
			defer inFlight.Add(-1)
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			serveRange(w, r, body)
		})
		imgs = append(imgs, popImage(fmt.Sprintf("4.%d", 14+i), fmt.Sprintf("4%d.94.1-0", 14+i), "x86_64", srv.url("img.iso")))
	}
	cfg := env.config(t, imgs...)
	cfg.Concurrency = 2
	p := mustNew(t, cfg)
	runPopulator(t, p)

	waitFor(t, 30*time.Second, "two downloads in flight", func() bool { return inFlight.Load() == 2 })
	// The other two images wait for a slot: from here on a third download
	// could only start if the limit let it.
	goroutines.Wait(t, fnAcquireSlot, "select", 2, 30*time.Second)
	if got := total.Load(); got != 2 {
		t.Errorf("%d requests started while 2 were blocked, want 2", got)
	}
	h := parseHealth(t, p.Health())
	downloading := 0
	for _, s := range h.Images {
		if s.State == StateDownloading {
			downloading++
		}
	}
	if downloading != 2 {
		t.Errorf("%d images downloading, want 2: %+v", downloading, h.Images)
	}
	close(release)
	waitReady(t, p, 10*time.Second, imgs...)
	if got := maxInFlight.Load(); got != 2 {
		t.Errorf("max in flight %d, want 2", got)
	}
	if got := total.Load(); got != 4 {
		t.Errorf("%d requests, want 4", got)
	}
}

func TestPopulatorLazy(t *testing.T) {
	env := newPopEnv(t)
	bodyA := popBlob(30, 900<<10)
	gate := make(chan struct{})
	entered := make(chan struct{}, 10)
	a := newPopServer(t, bodyA, func(_ int, w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		serveRange(w, r, bodyA)
	})
	slow := newPopServer(t, popBlob(31, 100<<10), func(_ int, w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // longer than LazyWait
	})
	imgA := popImage("4.16", "416.94.1-0", "x86_64", a.url("a.iso"))
	imgS := popImage("4.17", "417.94.1-0", "x86_64", slow.url("s.iso"))
	cfg := env.config(t, imgA, imgS)
	cfg.Lazy = true
	cfg.LazyWait = 2 * time.Second
	p := mustNew(t, cfg)
	runPopulator(t, p)

	// Lazy mode is ready once Run's first pass is over, and that pass
	// would include any download started at start.
	waitFor(t, 30*time.Second, "Ready() in lazy mode", p.Ready)
	if a.requests() != 0 || slow.requests() != 0 {
		t.Fatalf("lazy mode fetched at start: %d, %d requests", a.requests(), slow.requests())
	}
	if _, configured, err := p.Lookup(imgA.Version, "x86_64", config.TypeFullISO); !configured || !errors.Is(err, ErrNotReady) {
		t.Errorf("Lookup before Ensure: configured %v, %v", configured, err)
	}
	ctx := context.Background()
	if _, configured, err := p.Ensure(ctx, "4.99", "x86_64", config.TypeFullISO); configured || err != nil {
		t.Errorf("Ensure of an unknown version: configured %v, %v", configured, err)
	}

	type result struct {
		rec cache.BaseRecord
		err error
	}
	results := make(chan result, 2)
	ensure := func(version string) {
		rec, configured, err := p.Ensure(ctx, version, "x86_64", config.TypeFullISO)
		if err == nil && !configured {
			err = errors.New("not configured")
		}
		results <- result{rec, err}
	}
	go ensure(imgA.Version)
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("Ensure did not start a download")
	}
	go ensure("4.16") // the same image, by OpenShift version
	// Both wait for the one download before it may finish.
	goroutines.Wait(t, fnEnsure, "select", 2, 30*time.Second)
	close(gate)
	for range 2 {
		select {
		case r := <-results:
			if r.err != nil || r.rec.Digest != cache.DigestOf(bodyA) || r.rec.Key != baseKey(imgA) {
				t.Errorf("Ensure: %+v, %v", r.rec, r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Ensure did not return")
		}
	}
	if got := a.requests(); got != 1 {
		t.Errorf("two Ensures made %d requests, want 1", got)
	}
	rec, _, _ := p.Lookup(imgA.Version, "x86_64", config.TypeFullISO)
	env.checkBlob(t, rec.Digest, bodyA)
	// Ready now: no further request.
	if _, _, err := p.Ensure(ctx, imgA.Version, "x86_64", config.TypeFullISO); err != nil || a.requests() != 1 {
		t.Errorf("Ensure of a ready image: %v, %d requests", err, a.requests())
	}

	start := time.Now()
	_, configured, err := p.Ensure(ctx, imgS.Version, "x86_64", config.TypeFullISO)
	took := time.Since(start)
	if !configured || !errors.Is(err, ErrNotReady) {
		t.Errorf("Ensure of a stuck image: configured %v, %v; want ErrNotReady", configured, err)
	}
	// At least LazyWait, and not held for the download, which never ends:
	// the upper bound is generous for a busy machine.
	if took < cfg.LazyWait || took > cfg.LazyWait+10*time.Second {
		t.Errorf("Ensure of a stuck image took %v, want about LazyWait %v", took, cfg.LazyWait)
	}
	if got := slow.requests(); got != 1 {
		t.Errorf("stuck image: %d requests, want 1", got)
	}

	// A caller giving up early is not held for LazyWait.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, _, err := p.Ensure(cctx, imgS.Version, "x86_64", config.TypeFullISO); !errors.Is(err, ErrNotReady) {
		t.Errorf("Ensure with a short context: %v", err)
	}
	if took := time.Since(start); took >= cfg.LazyWait {
		t.Errorf("Ensure ignored its context: took %v, LazyWait %v", took, cfg.LazyWait)
	}
}

// TestRecordsFromOlderVersionsRestored: an index written with the URL
// itself (before only its digest was kept) is still restored without a
// download, and the record is rewritten without the URL.
func TestRecordsFromOlderVersionsRestored(t *testing.T) {
	env := newPopEnv(t)
	body := popBlob(60, 64<<10)
	srv := newPopServer(t, body, nil)
	img := popImage("4.16", "416.1", "x86_64", srv.url("a.iso?token=SECRET"))
	d, n, err := env.store.Put(context.Background(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.index.PutMeta(MetaLayout, d, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := env.index.PutBase(cache.BaseRecord{Key: baseKey(img), Digest: d, Size: n, URL: img.URL, OpenshiftVersion: "4.16", FetchedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	p := mustNew(t, env.config(t, img))
	runPopulator(t, p)
	waitReady(t, p, 10*time.Second, img)
	if srv.requests() != 0 {
		t.Errorf("restored by downloading (%d requests)", srv.requests())
	}
	rec, err := env.index.Base(baseKey(img))
	if err != nil || rec.URL != sourceID(img.URL) {
		t.Errorf("record after restore: %+v, %v", rec, err)
	}
	recs, _, _ := env.store.Records()
	for _, r := range recs {
		if strings.Contains(r.URL, "SECRET") {
			t.Errorf("an image record still holds the URL: %+v", r)
		}
	}
}
