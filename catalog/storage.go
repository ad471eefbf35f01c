package catalog

import (
	"os"

	"github.com/isoedge/isoedge/cache"
	"go.uber.org/zap"
)

// OpenStorage creates the data and scratch directories, opens the blob
// store and its index, and sweeps what no record references (blobs of
// evicted or replaced images, temp files of interrupted writes).
func OpenStorage(dataDir, tempDir string, log *zap.Logger) (*cache.Store, *cache.Index, error) {
	for _, d := range []string{dataDir, tempDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	store, err := cache.OpenStore(dataDir)
	if err != nil {
		return nil, nil, err
	}
	index, err := cache.OpenIndex(store.IndexPath())
	if err != nil {
		return nil, nil, err
	}
	if refs, err := index.Referenced(); err == nil {
		n, err := store.Sweep(0, func(d cache.Digest) bool { return refs[d] })
		if err != nil {
			log.Warn("sweeping the store", zap.Error(err))
		} else if n > 0 {
			log.Info("removed unreferenced blobs and stale temp files", zap.Int("files", n))
		}
	}
	return store, index, nil
}
