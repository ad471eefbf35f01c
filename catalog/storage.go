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
		if err := os.MkdirAll(d, 0o775); err != nil {
			return nil, nil, err
		}
	}
	store, err := cache.OpenStore(dataDir)
	if err != nil {
		return nil, nil, err
	}
	index, info, err := cache.OpenIndex(store.IndexPath())
	if err != nil {
		return nil, nil, err
	}
	if info.Recovered {
		// The index only describes blobs that are still there: Run
		// re-ingests them from their records without downloading.
		log.Warn("index.db was unusable; moved it aside and started a new one, rebuilt from the stored images",
			zap.String("moved_to", info.MovedTo), zap.String("reason", info.Reason))
	}
	if info.RecordsWritten > 0 {
		log.Info("wrote image records for an index from an older version", zap.Int("records", info.RecordsWritten))
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
