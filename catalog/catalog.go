package catalog

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
	"go.uber.org/zap"
)

// Config configures a Catalog. The hook fields exist for tests; nil
// selects the real implementation.
type Config struct {
	Images  []config.OSImage
	Store   *cache.Store
	Index   *cache.Index
	Fetcher *upstream.Fetcher
	// Registry pulls docker:// images; nil when none is configured.
	Registry *upstream.RegistrySource
	// Peers are the sibling replicas asked for an image before its
	// source; nil or not Enabled: none.
	Peers   *upstream.Peers
	TempDir string // scratch space: sample image, minimal templates, nmstatectl extraction
	// ImageServiceBaseURL is this service's external URL; minimal ISO
	// templates carry a rootfs URL under it, so it is part of their identity.
	ImageServiceBaseURL string
	// MinRootfsBytes and MinKernelBytes are the ingest size checks.
	MinRootfsBytes, MinKernelBytes int64
	Concurrency                    int // parallel downloads, default 2
	// Lazy fetches an image on its first request (Ensure) instead of at
	// start; LazyWait bounds how long that request waits (default 30s).
	Lazy     bool
	LazyWait time.Duration
	// MaxBytes bounds the bytes of stored base images and what derives
	// from them (0: no bound). Least recently served images are evicted.
	MaxBytes int64
	// MaxImageBytes bounds one image's download (OS_IMAGE_MAX_BYTES; 0:
	// none beyond MaxBytes).
	MaxImageBytes int64
	// ScrubBytesPerSecond paces the background re-verification of stored
	// blobs (0: no scrub); ScrubInterval is the time between passes.
	ScrubBytesPerSecond int64
	ScrubInterval       time.Duration
	MinBackoff          time.Duration // first retry delay, default 5s
	MaxBackoff          time.Duration // default 10m
	Log                 *zap.Logger
	Metrics             *metrics.Set

	// Inspect parses and checks a downloaded image before it is committed,
	// and returns the encoded layout stored with it. An error rejects the
	// download: it is deleted and never served.
	Inspect func(path string) ([]byte, error)
	// Derive builds what is derived from a stored image (minimal ISO
	// templates, nmstatectl) once; it is called after the image is ready,
	// also when it was restored from the index, and must be cheap when
	// nothing is to do.
	Derive func(ctx context.Context, rec cache.BaseRecord) error
	// Evict removes what was derived from an evicted image; an error
	// keeps the image.
	Evict func(rec cache.BaseRecord) error
	// Seed returns the path of a local copy of an image to ingest instead
	// of downloading it, or "" (an assisted-image-service data directory
	// being taken over); the copy is removed once ingested.
	Seed func(img config.OSImage) string
	// BuildSample writes the built-in sample image (config.SampleURL) to path.
	BuildSample func(path, workDir string) error
	// InUse reports whether a blob is being served; such a blob is never
	// evicted.
	InUse func(cache.Digest) bool
}

// FromConfig returns the Catalog configuration for the service's
// configuration; store, index and fetcher are opened by the caller.
func FromConfig(cfg *config.Config, store *cache.Store, index *cache.Index, fetcher *upstream.Fetcher, log *zap.Logger, set *metrics.Set) Config {
	c := Config{
		Images: cfg.OSImages, Store: store, Index: index, Fetcher: fetcher,
		TempDir:             cfg.DataTempDir,
		ImageServiceBaseURL: cfg.ImageServiceBaseURL,
		MinRootfsBytes:      cfg.MinRootfsBytes,
		MinKernelBytes:      cfg.MinKernelBytes,
		Concurrency:         cfg.DownloadConcurrency,
		Lazy:                cfg.Fetch == config.FetchLazy,
		MaxBytes:            cfg.DataDirMaxBytes,
		MaxImageBytes:       cfg.OSImageMaxBytes,
		ScrubBytesPerSecond: cfg.ScrubBytesPerSecond,
		ScrubInterval:       cfg.ScrubInterval,
		Log:                 log,
		Metrics:             set,
		Seed:                originalImage(cfg.DataDir),
	}
	if cfg.Sample {
		// The built-in sample is generated here: only its layout is checked.
		c.MinRootfsBytes, c.MinKernelBytes = 1, 1
	}
	return c
}

// imageEntry is the state of one configured base image.
type imageEntry struct {
	img config.OSImage
	// ocpVersions are the OpenShift versions of every entry listing this
	// image: a request names any of them.
	ocpVersions []string
	key         cache.BaseKey
	state       string
	err         string
	retryAt     time.Time
	done        int64
	total       int64
	rec         cache.BaseRecord
	attempts    int
	// failing: from its first failed attempt (download, ingest check,
	// derived build, integrity) until it next succeeds; a failing image
	// never holds readiness back.
	failing   bool
	derivedOK bool          // what derives from it is built (minimal template, nmstatectl)
	warning   string        // what was not built although the image is servable
	running   bool          // a keep goroutine works on it
	evicted   bool          // removed for the disk budget: fetched again on request
	ready     chan struct{} // closed when the image is stored
	source    string        // kind of source this process fetched it from; "" when found stored
	served    atomic.Int64  // unix nanoseconds of the last lookup that found it ready
}

// Catalog knows which images exist and what derives from them. It keeps
// the configured base images stored (download, check, record, retry with
// backoff, evict for the disk budget), builds what derives from them
// (minimal ISO templates, nmstatectl archives), and answers the lookups
// of requests from memory.
type Catalog struct {
	cfg Config
	log *zap.Logger

	mu        sync.RWMutex
	entries   []*imageEntry // configured order, deduplicated by key
	firstPass bool
	runCtx    context.Context // Run's context, for lazily started downloads
	budgetMu  sync.Mutex      // one disk budget pass at a time
	sem       chan struct{}   // download slots
	wg        sync.WaitGroup  // download goroutines

	scrub   *scrubber
	sources *sourceStats
	// instance is this process's random id, told to sibling replicas.
	instance string
	files    *filePool
	layouts  *cache.Hot[*customize.Layout]
	nmstate  *cache.Hot[[]byte] // nmstatectl archives by their digest
	// derived remembers the derivations found in the index (key: kind,
	// full ISO digest, parameter), so requests do not read bbolt. Only
	// found ones are kept: a derivation being built is looked up again.
	derived sync.Map // string → cache.Digest
}

// New returns a Catalog for cfg.Images. It does no I/O.
func New(cfg Config) (*Catalog, error) {
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
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	layouts, err := cache.NewHot[*customize.Layout](1024)
	if err != nil {
		return nil, err
	}
	nm, err := cache.NewHot[[]byte](256 << 20)
	if err != nil {
		return nil, err
	}
	c := &Catalog{
		log: cfg.Log, sem: make(chan struct{}, cfg.Concurrency),
		files: newFilePool(storeOpener(cfg.Store), maxIdleFiles), layouts: layouts, nmstate: nm,
		scrub:   newScrubber(cfg.ScrubBytesPerSecond, cfg.ScrubInterval, cfg.Metrics),
		sources: newSourceStats(cfg.Metrics), instance: upstream.NewInstanceID(),
	}
	if cfg.Peers != nil {
		c.instance = cfg.Peers.Instance()
	}
	if cfg.Inspect == nil {
		cfg.Inspect = c.inspect
	}
	if cfg.Derive == nil {
		cfg.Derive = c.deriveFrom
	}
	if cfg.Evict == nil {
		cfg.Evict = c.evictDerived
	}
	if cfg.BuildSample == nil {
		cfg.BuildSample = customize.BuildSampleISO
	}
	if cfg.InUse == nil {
		cfg.InUse = c.files.inUse
	}
	c.cfg = cfg
	seen := map[cache.BaseKey]*imageEntry{}
	for _, img := range cfg.Images {
		k := baseKey(img)
		if e := seen[k]; e != nil {
			// The same image listed for another OpenShift release (a
			// release often reuses the previous RHCOS): one entry, found by
			// every such version, and nmstatectl when any of them needs it.
			e.ocpVersions = append(e.ocpVersions, img.OpenshiftVersion)
			if customize.NmstateNeeded(img.OpenshiftVersion) && !customize.NmstateNeeded(e.img.OpenshiftVersion) {
				e.img.OpenshiftVersion = img.OpenshiftVersion
			}
			continue
		}
		e := &imageEntry{img: img, key: k, state: StatePending, ready: make(chan struct{}), ocpVersions: []string{img.OpenshiftVersion}}
		seen[k] = e
		c.entries = append(c.entries, e)
	}
	for _, e := range c.entries {
		if e.img.MovableTag {
			c.log.Warn("OS image names a container image by tag, which can move; pin a digest (@sha256:…)",
				zap.String("version", e.key.Version), zap.String("arch", e.key.Arch))
		}
		labels := fmt.Sprintf(`{version=%q,arch=%q,type=%q}`, e.key.Version, e.key.Arch, e.key.Type)
		cfg.Metrics.GetOrCreateGauge("isoedge_base_image_ready"+labels, func() float64 {
			c.mu.RLock()
			defer c.mu.RUnlock()
			if e.state == StateReady {
				return 1
			}
			return 0
		})
		cfg.Metrics.GetOrCreateGauge("isoedge_base_image_download_bytes"+labels, func() float64 {
			c.mu.RLock()
			defer c.mu.RUnlock()
			return float64(e.done)
		})
	}
	return c, nil
}
