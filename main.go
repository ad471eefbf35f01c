// Command isoedge is an edge image service for the OpenShift Assisted
// Installer, a drop-in replacement for assisted-image-service. Run with no
// arguments it reads its configuration from the environment and serves;
// with arguments it runs an offline command (package cli).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/catalog"
	"github.com/isoedge/isoedge/cli"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/version"
	"github.com/isoedge/isoedge/proxy"
	"github.com/isoedge/isoedge/upstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	if len(os.Args) > 1 {
		os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
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
	// Messages of the standard library (net/http's transport) become JSON
	// lines of the same log.
	defer zap.RedirectStdLog(log)()
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		// What isoedge keeps is bounded (snapshots, upstream bodies, TLS
		// buffers); a soft limit keeps the garbage around it bounded too.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	// Files in DATA_DIR stay group-writable: under OpenShift's restricted
	// SCC a later pod runs with another UID in the same group.
	syscall.Umask(0o002)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("isoedge stopped", zap.Error(err))
		os.Exit(1)
	}
}

// defaultMemoryLimit is the Go runtime's soft memory limit unless
// GOMEMLIMIT is set: above the bounded working set (SNAPSHOT_CACHE_MAX_BYTES
// and UPSTREAM_MEMORY_MAX_BYTES at their defaults, stream buffers), below
// the deployment's 256 MiB limit.
const defaultMemoryLimit = 96 << 20

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.DisableStacktrace = true // expected errors need no stack; panics log theirs
	zc.EncoderConfig.TimeKey = "time"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return zc.Build()
}

// app is a wired isoedge: storage, catalog and HTTP server.
type app struct {
	index *cache.Index
	cat   *catalog.Catalog
	srv   *proxy.Server
}

// newApp opens the storage and builds every part. It downloads nothing.
func newApp(cfg *config.Config, log *zap.Logger) (*app, error) {
	store, index, err := catalog.OpenStorage(cfg.DataDir, cfg.DataTempDir, log)
	if err != nil {
		return nil, err
	}
	a, err := wire(cfg, log, store, index)
	if err != nil {
		index.Close()
		return nil, err
	}
	return a, nil
}

func wire(cfg *config.Config, log *zap.Logger, store *cache.Store, index *cache.Index) (*app, error) {
	src, err := upstream.NewSource(cfg, log)
	if err != nil {
		return nil, err
	}
	fetcher, registry, err := upstream.NewImageSources(cfg)
	if err != nil {
		return nil, err
	}
	set := metrics.NewSet()
	catCfg := catalog.FromConfig(cfg, store, index, fetcher, log, set)
	catCfg.Registry = registry
	catCfg.Peers = upstream.PeersFor(cfg)
	cat, err := catalog.New(catCfg)
	if err != nil {
		return nil, err
	}
	srv := proxy.New(proxy.Options{Config: cfg, Bases: cat, Source: upstream.Metered(src, set), Log: log, Metrics: set})
	return &app{index: index, cat: cat, srv: srv}, nil
}

func run(ctx context.Context, cfg *config.Config, log *zap.Logger) error {
	log.Info("starting isoedge", zap.String("version", version.Version()), zap.String("revision", version.Revision()), zap.Any("config", cfg.Redacted()))
	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	defer a.index.Close()
	eps, err := a.srv.Listen()
	if err != nil {
		return err
	}
	catDone := make(chan struct{})
	catCtx, stopCat := context.WithCancel(ctx)
	go func() {
		defer close(catDone)
		a.cat.Run(catCtx)
	}()
	err = a.srv.Serve(ctx, eps...)
	log.Info("shutting down")
	stopCat()
	<-catDone
	return err
}
