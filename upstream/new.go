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
	if cfg.Sample {
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
