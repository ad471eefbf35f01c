// Command isoedge is an edge image service for the OpenShift Assisted
// Installer, a drop-in replacement for assisted-image-service. Run with no
// arguments it reads its configuration from the environment and serves;
// with arguments it runs an offline command (see cli.go).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/proxy"
	"github.com/isoedge/isoedge/upstream"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	if len(os.Args) > 1 {
		os.Exit(runCLI(os.Args[1:], os.Stdout, os.Stderr))
	}
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "isoedge:", err)
		os.Exit(1)
	}
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "isoedge:", err)
		os.Exit(1)
	}
	defer log.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("isoedge stopped", zap.Error(err))
		os.Exit(1)
	}
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.EncoderConfig.TimeKey = "time"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return zc.Build()
}

// app is a wired isoedge: store, index, populator and HTTP server.
type app struct {
	cfg   *config.Config
	log   *zap.Logger
	index *cache.Index
	pop   *upstream.Populator
	srv   *proxy.Server
}

// newApp opens the store and builds every part. It downloads nothing.
func newApp(cfg *config.Config, log *zap.Logger) (*app, error) {
	for _, d := range []string{cfg.DataDir, cfg.DataTempDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	store, err := cache.OpenStore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	index, err := cache.OpenIndex(store.IndexPath())
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			index.Close()
		}
	}()
	if refs, err := index.Referenced(); err == nil {
		n, err := store.Sweep(0, func(d cache.Digest) bool { return refs[d] })
		if err != nil {
			log.Warn("sweeping the store", zap.Error(err))
		} else if n > 0 {
			log.Info("removed unreferenced blobs and stale temp files", zap.Int("files", n))
		}
	}

	var src upstream.Source
	if cfg.UsesLocalIgnition() {
		dir := upstream.LocalDir{Dir: cfg.IgnitionDir}
		if cfg.Sample {
			if p, err := dir.EnsureSample(); err != nil {
				return nil, err
			} else if p != "" {
				log.Info("wrote a sample ignition", zap.String("path", p))
			}
		}
		src = dir
		log.Info("serving ignition from a local directory", zap.String("dir", cfg.IgnitionDir))
	} else {
		c, err := upstream.NewClient(upstream.ClientConfig{
			Scheme: cfg.AssistedServiceScheme, Host: cfg.AssistedServiceHost,
			CAFile: cfg.AssistedServiceCAFile, Timeout: cfg.AssistedServiceTimeout,
		})
		if err != nil {
			return nil, err
		}
		src = c
	}
	fetcher, err := upstream.NewFetcher(upstream.FetcherConfig{
		Headers: cfg.OSImagesRequestHeaders, Query: cfg.OSImagesRequestQueryParams,
		CAFile: cfg.OSImageCAFile, InsecureSkipVerify: cfg.InsecureSkipVerify,
	})
	if err != nil {
		return nil, err
	}
	set := metrics.NewSet()
	var srv *proxy.Server // set below; the populator asks it what is being served
	inUse := func(d cache.Digest) bool { return srv != nil && srv.InUse(d) }
	var catalog *proxy.Catalog // set below, like srv
	forget := func(d cache.Digest) {
		if srv != nil {
			srv.Forget(d)
		}
		if catalog != nil {
			catalog.Forget(d)
		}
	}
	pop := upstream.NewPopulator(upstream.PopulatorConfig{
		Images: cfg.OSImages, Store: store, Index: index, Fetcher: fetcher,
		Inspect:     inspector(cfg),
		Derive:      minimalDeriver(cfg, store, index, log),
		BuildSample: customize.BuildSampleISO,
		Seed:        originalImage(cfg.DataDir),
		TempDir:     cfg.DataTempDir,
		Concurrency: cfg.DownloadConcurrency,
		Lazy:        cfg.Fetch == config.FetchLazy,
		MaxBytes:    cfg.DataDirMaxBytes,
		InUse:       inUse,
		Evict: func(rec cache.BaseRecord) error {
			// Forget first: nothing may resolve to a derived blob while it
			// is being removed. Forgetting is harmless if eviction is refused.
			forget(rec.Digest)
			return minimalEvicter(cfg, store, index, inUse, forget)(rec)
		},
		Log:     log,
		Metrics: set,
	})
	catalog, err = proxy.NewCatalog(pop, store, index, cfg.ImageServiceBaseURL)
	if err != nil {
		return nil, err
	}
	srv = proxy.New(proxy.Options{Config: cfg, Bases: catalog, Source: upstream.Metered(src, set), Store: store, Log: log, Metrics: set})
	ok = true
	return &app{cfg: cfg, log: log, index: index, pop: pop, srv: srv}, nil
}

// originalImage finds the ISO assisted-image-service kept in the same
// DATA_DIR for an image (rhcos-<type>-<version>-<arch>.iso), so that
// replacing it with isoedge downloads nothing already on disk. The file is
// checked like any download before it is served.
func originalImage(dataDir string) func(config.OSImage) string {
	return func(img config.OSImage) string {
		if img.URL == config.SampleURL || strings.ContainsAny(img.Version+img.CPUArchitecture+img.Type, "/\\") {
			return ""
		}
		p := filepath.Join(dataDir, "rhcos-"+img.Type+"-"+img.Version+"-"+img.CPUArchitecture+".iso")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
		return ""
	}
}

// inspector parses a downloaded ISO and applies the ingest checks. The
// built-in sample is generated here, so only the layout is checked.
func inspector(cfg *config.Config) func(string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		l, err := customize.ParseLayout(f)
		if err != nil {
			return nil, err
		}
		minRootfs, minKernel := cfg.MinRootfsBytes, cfg.MinKernelBytes
		if cfg.Sample {
			minRootfs, minKernel = 1, 1
		}
		if err := l.Check(minRootfs, minKernel); err != nil {
			return nil, err
		}
		return l.Encode()
	}
}

// listener is one socket the service answers on.
type listener struct {
	addr      string
	tls       bool
	plainHTTP bool // plain-HTTP side of the two-listener setup
}

// listeners follows the original's table (§B.0).
func listeners(cfg *config.Config) []listener {
	haveTLS := cfg.HTTPSCertFile != "" && cfg.HTTPSKeyFile != "" && cfg.ListenPort != ""
	switch {
	case cfg.HTTPListenPort == "" && haveTLS:
		return []listener{{addr: ":" + cfg.ListenPort, tls: true}}
	case cfg.HTTPListenPort == "":
		return []listener{{addr: ":" + cfg.ListenPort}}
	case !haveTLS:
		return []listener{{addr: ":" + cfg.HTTPListenPort}}
	default:
		return []listener{{addr: ":" + cfg.ListenPort, tls: true}, {addr: ":" + cfg.HTTPListenPort, plainHTTP: true}}
	}
}

func run(ctx context.Context, cfg *config.Config, log *zap.Logger) error {
	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	defer a.index.Close()
	log.Info("starting isoedge", zap.Any("config", cfg.Redacted()))

	popCtx, stopPop := context.WithCancel(ctx)
	defer stopPop()
	go a.pop.Run(popCtx)

	var servers []*fasthttp.Server
	errc := make(chan error, 2)
	for _, l := range listeners(cfg) {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return err
		}
		srv := proxy.NewHTTPServer(a.srv.Handler(l.plainHTTP), log)
		servers = append(servers, srv)
		if l.tls {
			cert, err := tls.LoadX509KeyPair(cfg.HTTPSCertFile, cfg.HTTPSKeyFile)
			if err != nil {
				ln.Close()
				return fmt.Errorf("load HTTPS certificate: %w", err)
			}
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
		log.Info("listening", zap.String("addr", l.addr), zap.Bool("https", l.tls))
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			return err
		}
	}
	log.Info("shutting down")
	stopPop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.ShutdownWithContext(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			log.Warn("shutdown", zap.Error(err))
		}
	}
	return nil
}
