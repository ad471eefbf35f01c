package upstream

import (
	"github.com/isoedge/isoedge/config"
	"go.uber.org/zap"
)

// NewSource returns the Source of per-InfraEnv data the configuration
// names: assisted-service, or a local directory (standalone sites and the
// built-in sample, which gets a sample ignition written there).
func NewSource(cfg *config.Config, log *zap.Logger) (Source, error) {
	if !cfg.UsesLocalIgnition() {
		return NewClient(ClientConfig{
			Scheme: cfg.AssistedServiceScheme, Host: cfg.AssistedServiceHost,
			CAFile: cfg.AssistedServiceCAFile, Timeout: cfg.AssistedServiceTimeout,
			// Bytes held from assisted-service are bounded: a large
			// ramdisk waits in DATA_TEMP_DIR, not in memory.
			Memory: NewMemoryBudget(cfg.UpstreamMemoryMaxBytes), SpillDir: cfg.DataTempDir,
		})
	}
	dir := LocalDir{Dir: cfg.IgnitionDir}
	if cfg.SampleIgnition { // never into a directory the operator named
		p, err := dir.EnsureSample()
		if err != nil {
			return nil, err
		}
		if p != "" {
			log.Info("wrote a sample ignition", zap.String("path", p))
		}
	}
	log.Info("serving ignition from a local directory", zap.String("dir", cfg.IgnitionDir))
	return dir, nil
}

// NewImageSources returns the OS image sources the configuration names:
// the fetcher for http(s) and file URLs and the registry source for
// docker:// ones, with the same trust, timeouts and bounds.
func NewImageSources(cfg *config.Config) (*Fetcher, *RegistrySource, error) {
	fetcher, err := NewFetcher(FetcherConfig{
		Headers: cfg.OSImagesRequestHeaders, Query: cfg.OSImagesRequestQueryParams,
		CAFile: cfg.OSImageCAFile, InsecureSkipVerify: cfg.InsecureSkipVerify,
		ConnectTimeout: cfg.OSImageConnectTimeout, HeaderTimeout: cfg.OSImageHeaderTimeout,
		StallTimeout: cfg.OSImageStallTimeout, MaxBytes: cfg.OSImageMaxBytes,
	})
	if err != nil {
		return nil, nil, err
	}
	registry, err := NewRegistrySource(RegistryConfig{
		AuthFile: cfg.RegistryAuthFile, CAFile: cfg.OSImageCAFile, InsecureSkipVerify: cfg.InsecureSkipVerify,
		ConnectTimeout: cfg.OSImageConnectTimeout, HeaderTimeout: cfg.OSImageHeaderTimeout,
		StallTimeout: cfg.OSImageStallTimeout, MaxBytes: cfg.OSImageMaxBytes,
	})
	if err != nil {
		return nil, nil, err
	}
	return fetcher, registry, nil
}
