package catalog

import (
	"context"
	"errors"

	"github.com/isoedge/isoedge/cache"
	"go.uber.org/zap"
)

// rebuildIndex re-ingests the stored base images whose records the index
// does not hold: a new index after the old one was unusable, or a crash
// between writing a record and the index. Each blob is hashed against its
// record's digest and its layout parsed again, so nothing is downloaded;
// a blob that fails either is dropped and fetched again like any missing
// image.
func (c *Catalog) rebuildIndex(ctx context.Context) {
	store, index := c.cfg.Store, c.cfg.Index
	recs, bad, err := store.Records()
	for _, b := range bad {
		c.log.Warn("ignoring a damaged image record", zap.Error(b))
	}
	if err != nil {
		c.log.Warn("reading the image records", zap.Error(err))
		return
	}
	for _, rec := range recs {
		if ctx.Err() != nil {
			return
		}
		if have, err := index.Base(rec.Key); err == nil && have.Digest == rec.Digest {
			if _, err := index.Meta(MetaLayout, rec.Digest); err == nil {
				continue
			}
		}
		log := c.log.With(zap.String("version", rec.Key.Version), zap.String("arch", rec.Key.Arch), zap.String("type", rec.Key.Type), zap.String("digest", rec.Digest.String()))
		drop := func(msg string, err error) {
			log.Warn(msg, zap.Error(err))
			if err := index.DeleteBase(rec.Key); err != nil {
				log.Warn("dropping the image record", zap.Error(err))
			}
		}
		if err := store.Verify(ctx, rec.Digest, 0); err != nil {
			if errors.Is(err, cache.ErrDigestMismatch) {
				if qerr := store.Quarantine(rec.Digest); qerr != nil {
					log.Warn("quarantining a damaged image", zap.Error(qerr))
				}
			}
			drop("stored image cannot be re-ingested; it will be downloaded again", err)
			continue
		}
		layout, err := c.cfg.Inspect(store.BlobPath(rec.Digest))
		if err != nil {
			drop("stored image no longer passes the ingest checks; it will be downloaded again", err)
			continue
		}
		if err := index.PutMeta(MetaLayout, rec.Digest, layout); err != nil {
			log.Warn("re-ingesting a stored image", zap.Error(err))
			continue
		}
		if err := index.PutBase(rec); err != nil {
			log.Warn("re-ingesting a stored image", zap.Error(err))
			continue
		}
		log.Info("re-ingested a stored OS image into the index")
	}
}
