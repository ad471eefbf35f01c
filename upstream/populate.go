package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"go.uber.org/zap"
)

// MetaLayout is the index meta kind under which a base image's parsed
// layout is stored.
const MetaLayout = "layout"

// Base image states reported by /health.
const (
	StatePending     = "pending"
	StateDownloading = "downloading"
	StateReady       = "ready"
	StateFailed      = "failed"
	StateEvicting    = "evicting"
)

// PopulatorConfig configures a Populator.
type PopulatorConfig struct {
	Images  []config.OSImage
	Store   *cache.Store
	Index   *cache.Index
	Fetcher *Fetcher
	// Inspect parses and checks a downloaded image before it is committed,
	// and returns the encoded layout stored with it. An error rejects the
	// download: it is deleted and never served.
	Inspect func(path string) ([]byte, error)
	// Derive builds what is derived from a stored image (minimal ISO
	// templates) once; it is called after the image is ready, also when it
	// was restored from the index, and must be cheap when nothing is to do.
	Derive func(ctx context.Context, rec cache.BaseRecord) error
	// Seed returns the path of a local copy of an image to ingest instead
	// of downloading it, or "" (an assisted-image-service data directory
	// being taken over); the copy is removed once ingested.
	Seed func(img config.OSImage) string
	// BuildSample writes the built-in sample image (config.SampleURL) to path.
	BuildSample func(path, workDir string) error
	TempDir     string
	Log         *zap.Logger
	Metrics     *metrics.Set
	Concurrency int // parallel downloads, default 2
	// Lazy fetches an image on its first request (Ensure) instead of at
	// start; LazyWait bounds how long that request waits (default 30s).
	Lazy     bool
	LazyWait time.Duration
	// MaxBytes bounds the bytes of stored base images and what derives
	// from them (0: no bound). Least recently served images are evicted.
	MaxBytes int64
	// InUse reports whether a blob is being served; such a blob is never
	// evicted. Evict removes what was derived from an evicted image.
	InUse      func(cache.Digest) bool
	Evict      func(rec cache.BaseRecord) error
	MinBackoff time.Duration // first retry delay, default 5s
	MaxBackoff time.Duration // default 10m
}

// imageEntry is the state of one configured base image.
type imageEntry struct {
	img      config.OSImage
	key      cache.BaseKey
	state    string
	err      string
	retryAt  time.Time
	done     int64
	total    int64
	rec      cache.BaseRecord
	attempts int
	derived  string        // outcome of Derive: "", "ok", or the error
	warning  string        // what Derive could not do although the images are usable
	started  bool          // a keep goroutine runs or ran for it
	ready    chan struct{} // closed when the image becomes ready
	served   atomic.Int64  // unix nanoseconds of the last lookup that found it ready
}

// Populator keeps the configured base images stored: it downloads what is
// missing, checks it, records it in the index, and retries failures with
// exponential backoff. Lookups are served from memory.
type Populator struct {
	cfg PopulatorConfig
	log *zap.Logger

	mu        sync.RWMutex
	entries   []*imageEntry // configured order, deduplicated by key
	firstPass bool
	runCtx    context.Context // Run's context, for lazily started downloads
	budgetMu  sync.Mutex      // one disk budget pass at a time
	sem       chan struct{}   // download slots
	wg        sync.WaitGroup  // download goroutines
}

// NewPopulator returns a Populator for cfg.Images. It does no I/O.
func NewPopulator(cfg PopulatorConfig) *Populator {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 5 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Minute
	}
	if cfg.LazyWait <= 0 {
		cfg.LazyWait = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	p := &Populator{cfg: cfg, log: cfg.Log, sem: make(chan struct{}, cfg.Concurrency)}
	seen := map[cache.BaseKey]bool{}
	for _, img := range cfg.Images {
		k := baseKey(img)
		if seen[k] {
			continue
		}
		seen[k] = true
		p.entries = append(p.entries, &imageEntry{img: img, key: k, state: StatePending, ready: make(chan struct{})})
	}
	if cfg.Metrics != nil {
		for _, e := range p.entries {
			e := e
			labels := fmt.Sprintf(`{version=%q,arch=%q,type=%q}`, e.key.Version, e.key.Arch, e.key.Type)
			cfg.Metrics.GetOrCreateGauge("isoedge_base_image_ready"+labels, func() float64 {
				p.mu.RLock()
				defer p.mu.RUnlock()
				if e.state == StateReady {
					return 1
				}
				return 0
			})
			cfg.Metrics.GetOrCreateGauge("isoedge_base_image_download_bytes"+labels, func() float64 {
				p.mu.RLock()
				defer p.mu.RUnlock()
				return float64(e.done)
			})
		}
	}
	return p
}

// partialKey names the resumable download of an entry: the same image from
// the same URL continues the same file.
func partialKey(e *imageEntry) cache.Digest {
	return cache.DigestOf([]byte(e.key.Type + "\x00" + e.key.Version + "\x00" + e.key.Arch + "\x00" + e.img.URL))
}

func baseKey(img config.OSImage) cache.BaseKey {
	t := img.Type
	if t == "" {
		t = config.TypeFullISO
	}
	return cache.BaseKey{Type: t, Version: img.Version, Arch: img.CPUArchitecture}
}

// Run populates the store until ctx ends: first every image already stored
// is marked ready (no download, no parsing), then missing ones are
// downloaded, at most Concurrency at a time, failures retried with backoff.
func (p *Populator) Run(ctx context.Context) {
	var pending, restored []*imageEntry
	for _, e := range p.entries {
		if p.restore(e) {
			restored = append(restored, e)
			continue
		}
		pending = append(pending, e)
	}
	p.mu.Lock()
	p.runCtx = ctx
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for _, e := range restored {
			p.derive(ctx, e)
		}
	}()
	var first sync.WaitGroup
	if !p.cfg.Lazy {
		first.Add(len(pending))
		p.mu.Lock()
		for _, e := range pending {
			p.startLocked(ctx, e, first.Done)
		}
		p.mu.Unlock()
	}
	first.Wait()
	p.mu.Lock()
	p.firstPass = true
	p.mu.Unlock()
	p.enforceBudget(nil)
	p.log.Info("first pass over OS images done", zap.Int("images", len(p.entries)), zap.Int("ready", p.readyCount()), zap.Bool("lazy", p.cfg.Lazy))
	<-ctx.Done()
	p.wg.Wait()
}

// startLocked starts keeping e stored; firstDone is called once after the
// first attempt. p.mu must be held.
func (p *Populator) startLocked(ctx context.Context, e *imageEntry, firstDone func()) {
	e.started = true
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.keep(ctx, e, firstDone)
	}()
}

// Ensure is Lookup for a request: in lazy mode it starts fetching an image
// not stored yet and waits up to LazyWait (or ctx) for it.
func (p *Populator) Ensure(ctx context.Context, version, arch, imageType string) (cache.BaseRecord, bool, error) {
	rec, configured, err := p.Lookup(version, arch, imageType)
	if !configured || !errors.Is(err, ErrImageNotReady) {
		return rec, configured, err
	}
	p.mu.Lock()
	e := p.find(version, arch, lookupType(imageType))
	started := false
	if !e.started && p.runCtx != nil && (p.cfg.Lazy || p.firstPass) {
		// Lazy mode, or an image evicted for the disk budget.
		p.log.Info("fetching OS image on first request", zap.String("version", e.key.Version), zap.String("arch", e.key.Arch))
		p.startLocked(p.runCtx, e, func() {})
		started = true
	}
	ready := e.ready
	p.mu.Unlock()
	if !p.cfg.Lazy && !started {
		return rec, configured, err // eager: a download in progress answers 503 at once
	}
	t := time.NewTimer(p.cfg.LazyWait)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
	case <-ctx.Done():
	}
	return p.Lookup(version, arch, imageType)
}

// restore marks e ready when the index holds it for the same URL and its
// blob and layout are present.
func (p *Populator) restore(e *imageEntry) bool {
	rec, err := p.cfg.Index.Base(e.key)
	if err != nil {
		return false
	}
	if rec.URL != e.img.URL {
		p.log.Info("OS image URL changed, fetching again", zap.String("version", e.key.Version), zap.String("arch", e.key.Arch))
		return false
	}
	if e.img.SHA256 != "" && rec.Digest.Hex() != e.img.SHA256 {
		return false
	}
	if size, err := p.cfg.Store.Stat(rec.Digest); err != nil || size != rec.Size {
		return false
	}
	if _, err := p.cfg.Index.Meta(MetaLayout, rec.Digest); err != nil {
		return false
	}
	p.mu.Lock()
	e.state, e.rec, e.done, e.total = StateReady, rec, rec.Size, rec.Size
	close(e.ready)
	p.mu.Unlock()
	return true
}

// keep downloads e until it is stored or ctx ends.
func (p *Populator) keep(ctx context.Context, e *imageEntry, firstDone func()) {
	var once sync.Once
	markFirst := func() { once.Do(firstDone) }
	defer markFirst()
	backoff := p.cfg.MinBackoff
	for {
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		err := p.fetch(ctx, e)
		<-p.sem
		if err == nil {
			markFirst()
			p.derive(ctx, e)
			p.enforceBudget(e)
			return
		}
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		e.state, e.err, e.retryAt = StateFailed, err.Error(), time.Now().Add(backoff)
		e.attempts++
		p.mu.Unlock()
		p.log.Error("OS image download failed", zap.String("version", e.key.Version), zap.String("arch", e.key.Arch),
			zap.String("url", RedactURL(e.img.URL)), zap.Error(err), zap.Duration("retry_in", backoff))
		markFirst()
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, p.cfg.MaxBackoff)
	}
}

// fetch downloads, checks and commits one image.
func (p *Populator) fetch(ctx context.Context, e *imageEntry) error {
	p.mu.Lock()
	e.state, e.done, e.total = StateDownloading, 0, -1
	p.mu.Unlock()
	log := p.log.With(zap.String("version", e.key.Version), zap.String("arch", e.key.Arch), zap.String("type", e.key.Type))
	start := time.Now()

	src := e.img.URL
	var w *cache.Writer
	var err error
	seed := ""
	if p.cfg.Seed != nil {
		seed = p.cfg.Seed(e.img)
	}
	if seed != "" {
		log.Info("ingesting the image assisted-image-service left in DATA_DIR", zap.String("path", seed))
		src = "file://" + seed
		w, err = p.cfg.Store.Create()
	} else if src == config.SampleURL {
		if p.cfg.BuildSample == nil {
			return errors.New("upstream: no sample image builder")
		}
		path := filepath.Join(p.cfg.TempDir, "sample.iso")
		if err := p.cfg.BuildSample(path, p.cfg.TempDir); err != nil {
			return fmt.Errorf("upstream: build sample image: %w", err)
		}
		defer os.Remove(path)
		src = "file://" + path
		w, err = p.cfg.Store.Create()
	} else {
		// A download interrupted by an error, a restart or a crash goes on
		// from what it already wrote.
		w, err = p.cfg.Store.Resume(partialKey(e))
	}
	if err != nil {
		return err
	}
	defer w.Cancel()
	lastTenth, wantTotal := int64(-1), int64(-1)
	progress := func(done, total int64) {
		wantTotal = total
		p.mu.Lock()
		e.done, e.total = done, total
		p.mu.Unlock()
		if total > 0 && done*10/total != lastTenth {
			lastTenth = done * 10 / total
			log.Info("downloading OS image", zap.Int64("percent", lastTenth*10))
		}
	}
	if off := w.Size(); off > 0 {
		log.Info("resuming OS image download", zap.Int64("offset", off))
	}
	_, err = p.cfg.Fetcher.Fetch(ctx, FetchRequest{URL: src, Offset: w.Size(), Progress: progress}, w)
	if errors.Is(err, ErrNoResume) {
		log.Info("the server cannot resume; downloading from the start")
		if err = w.Reset(); err == nil {
			_, err = p.cfg.Fetcher.Fetch(ctx, FetchRequest{URL: src, Progress: progress}, w)
		}
	}
	if err != nil {
		// Keep the bytes that arrived: the next attempt resumes from them.
		w.Suspend()
		return err
	}
	n := w.Size()
	if wantTotal > 0 && n != wantTotal {
		// A resumed response that ended early without an error.
		w.Suspend()
		return fmt.Errorf("upstream: downloaded %d of %d bytes", n, wantTotal)
	}
	layout, err := p.cfg.Inspect(w.TempPath())
	if err != nil {
		return err
	}
	var want cache.Digest
	if e.img.SHA256 != "" {
		if want, err = cache.ParseDigest(e.img.SHA256); err != nil {
			return err
		}
	}
	d, err := w.Commit(ctx, n, want)
	if err != nil {
		return err
	}
	if err := p.cfg.Index.PutMeta(MetaLayout, d, layout); err != nil {
		return err
	}
	rec := cache.BaseRecord{Key: e.key, Digest: d, Size: n, URL: e.img.URL, OpenshiftVersion: e.img.OpenshiftVersion, FetchedAt: time.Now().UTC()}
	if err := p.cfg.Index.PutBase(rec); err != nil {
		return err
	}
	p.mu.Lock()
	e.state, e.err, e.rec, e.done, e.total = StateReady, "", rec, n, n
	close(e.ready)
	p.mu.Unlock()
	log.Info("OS image ready", zap.String("digest", d.String()), zap.Int64("bytes", n), zap.Duration("took", time.Since(start)))
	if seed != "" {
		if err := os.Remove(seed); err != nil {
			log.Warn("removing the ingested copy", zap.String("path", seed), zap.Error(err))
		}
	}
	return nil
}

// derive runs the Derive hook for a ready image and records the outcome.
func (p *Populator) derive(ctx context.Context, e *imageEntry) {
	if p.cfg.Derive == nil {
		return
	}
	p.mu.RLock()
	rec := e.rec
	p.mu.RUnlock()
	outcome, warning := "ok", ""
	var w *DeriveWarning
	if err := p.cfg.Derive(ctx, rec); errors.As(err, &w) {
		warning = w.Error()
		p.log.Warn("derived images incomplete", zap.String("version", e.key.Version), zap.String("arch", e.key.Arch), zap.Error(err))
	} else if err != nil {
		outcome = err.Error()
		p.log.Error("building derived images failed", zap.String("version", e.key.Version), zap.String("arch", e.key.Arch), zap.Error(err))
	}
	p.mu.Lock()
	e.derived, e.warning = outcome, warning
	p.mu.Unlock()
}

// ErrImageNotReady means a configured image is not stored yet.
var ErrImageNotReady = errors.New("upstream: image not ready")

// Lookup resolves a request's version (an RHCOS version, else an OpenShift
// version, §D.5), architecture and image type. minimal-iso resolves to the
// full-iso entry it is derived from.
func (p *Populator) Lookup(version, arch, imageType string) (rec cache.BaseRecord, configured bool, err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e := p.find(version, arch, lookupType(imageType))
	if e == nil {
		return cache.BaseRecord{}, false, nil
	}
	if e.state != StateReady {
		return cache.BaseRecord{}, true, fmt.Errorf("%w: %s %s is %s", ErrImageNotReady, e.key.Version, e.key.Arch, e.state)
	}
	e.served.Store(time.Now().UnixNano())
	return e.rec, true, nil
}

// lookupType is the configured image type a request's type is served from:
// minimal ISOs derive from full ISOs.
func lookupType(imageType string) string {
	if imageType == config.TypeDisconnectedISO {
		return config.TypeDisconnectedISO
	}
	return config.TypeFullISO
}

func (p *Populator) find(version, arch, typ string) *imageEntry {
	for _, e := range p.entries {
		if e.key.Arch == arch && e.key.Type == typ && e.img.Version == version {
			return e
		}
	}
	for _, e := range p.entries {
		if e.key.Arch == arch && e.key.Type == typ && e.img.OpenshiftVersion == version {
			return e
		}
	}
	return nil
}

// Ready reports whether the first pass over the images is done and at
// least one image is ready.
func (p *Populator) Ready() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.readyLocked()
}

func (p *Populator) readyLocked() bool {
	if len(p.entries) == 0 {
		return false
	}
	if p.cfg.Lazy {
		// Nothing is fetched until asked for: ready once the store is read.
		return p.firstPass
	}
	all := true
	for _, e := range p.entries {
		if e.state != StateReady {
			all = false
		}
	}
	if all {
		return true
	}
	if !p.firstPass {
		return false
	}
	for _, e := range p.entries {
		if e.state == StateReady {
			return true
		}
	}
	return false
}

func (p *Populator) readyCount() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := 0
	for _, e := range p.entries {
		if e.state == StateReady {
			n++
		}
	}
	return n
}

// ImageStatus is one entry of the /health body.
type ImageStatus struct {
	OpenshiftVersion string    `json:"openshift_version"`
	Version          string    `json:"version"`
	Arch             string    `json:"cpu_architecture"`
	Type             string    `json:"type"`
	State            string    `json:"state"`
	Percent          *int      `json:"percent,omitempty"`
	Error            string    `json:"error,omitempty"`
	RetryAt          time.Time `json:"retry_at,omitzero"`
	Digest           string    `json:"digest,omitempty"`
	Derived          string    `json:"derived,omitempty"` // minimal template: "ok" or why it failed
	Warning          string    `json:"warning,omitempty"` // e.g. no nmstatectl for static networking
}

// Health returns the JSON body of /health.
func (p *Populator) Health() []byte {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := struct {
		Ready  bool          `json:"ready"`
		Images []ImageStatus `json:"images"`
	}{Ready: p.readyLocked(), Images: []ImageStatus{}}
	for _, e := range p.entries {
		s := ImageStatus{OpenshiftVersion: e.img.OpenshiftVersion, Version: e.key.Version, Arch: e.key.Arch, Type: e.key.Type, State: e.state}
		switch e.state {
		case StateDownloading:
			if e.total > 0 {
				pct := int(e.done * 100 / e.total)
				s.Percent = &pct
			}
		case StateFailed:
			s.Error, s.RetryAt = e.err, e.retryAt
		case StateReady:
			s.Digest, s.Derived, s.Warning = e.rec.Digest.String(), e.derived, e.warning
		}
		out.Images = append(out.Images, s)
	}
	b, _ := json.Marshal(out)
	return b
}

// DerivedMinimal is the derivation kind of minimal ISO templates.
const DerivedMinimal = "minimal"

// DeriveWarning is returned by a Derive hook that built what it could but
// not everything: the image is served, /health shows the warning.
type DeriveWarning struct{ Err error }

func (w *DeriveWarning) Error() string { return w.Err.Error() }
func (w *DeriveWarning) Unwrap() error { return w.Err }

// DerivedNmstate is the derivation kind of a full ISO's nmstatectl archive
// (§D.4), MetaNmstate the meta kind that keeps its blob referenced.
const (
	DerivedNmstate = "nmstate"
	MetaNmstate    = "nmstate"
)

// MinimalKey is the derivation parameter of a minimal ISO template: its
// rootfs URL and the nmstatectl archive it carries, if any.
func MinimalKey(rootfsURL string, nmstate cache.Digest) string {
	if nmstate.IsZero() {
		return rootfsURL
	}
	return rootfsURL + "\x00nmstate=" + nmstate.Hex()
}
