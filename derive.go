package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
	"go.uber.org/zap"
)

// minimalDeriver returns the populator's Derive hook: it builds the minimal
// ISO template of each full ISO once per (full ISO digest, rootfs URL),
// stores it as a blob with its parsed layout, and records the derivation in
// the index, so a restart never rebuilds it.
func minimalDeriver(cfg *config.Config, store *cache.Store, index *cache.Index, log *zap.Logger) func(context.Context, cache.BaseRecord) error {
	return func(ctx context.Context, rec cache.BaseRecord) error {
		if rec.Key.Type != config.TypeFullISO || rec.Key.Arch == "s390x" {
			return nil
		}
		if cfg.ImageServiceBaseURL == "" {
			return errors.New("IMAGE_SERVICE_BASE_URL is not set: no minimal ISO (its rootfs URL would be relative)")
		}
		rootfsURL, err := customize.MinimalRootfsURL(cfg.ImageServiceBaseURL, rec.Key.Arch, rec.Key.Version)
		if err != nil {
			return err
		}
		if d, err := index.Derived(upstream.DerivedMinimal, rec.Digest, rootfsURL); err == nil {
			if _, err := store.Stat(d); err == nil {
				return nil
			}
		}
		full, _, err := store.Open(rec.Digest)
		if err != nil {
			return err
		}
		defer full.Close()
		out := filepath.Join(cfg.DataTempDir, "minimal-"+rec.Digest.Hex()[:16]+".iso")
		defer os.Remove(out)
		err = customize.BuildMinimal(full, out, customize.MinimalOptions{RootfsURL: rootfsURL, Arch: rec.Key.Arch, WorkDir: cfg.DataTempDir})
		if err != nil {
			return fmt.Errorf("build minimal ISO template: %w", err)
		}
		d, layout, err := ingestFile(ctx, store, out)
		if err != nil {
			return err
		}
		if err := index.PutMeta(upstream.MetaLayout, d, layout); err != nil {
			return err
		}
		if err := index.PutDerived(upstream.DerivedMinimal, rec.Digest, rootfsURL, d); err != nil {
			return err
		}
		log.Info("minimal ISO template ready", zap.String("version", rec.Key.Version), zap.String("arch", rec.Key.Arch), zap.String("digest", d.String()))
		return nil
	}
}

// ingestFile parses an ISO built here and commits it to the store.
func ingestFile(ctx context.Context, store *cache.Store, path string) (cache.Digest, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return cache.Digest{}, nil, err
	}
	defer f.Close()
	l, err := customize.ParseLayout(f)
	if err != nil {
		return cache.Digest{}, nil, err
	}
	layout, err := l.Encode()
	if err != nil {
		return cache.Digest{}, nil, err
	}
	w, err := store.Create()
	if err != nil {
		return cache.Digest{}, nil, err
	}
	defer w.Cancel()
	n, err := io.Copy(w, io.NewSectionReader(f, 0, l.Size))
	if err != nil {
		return cache.Digest{}, nil, err
	}
	d, err := w.Commit(ctx, n, cache.Digest{})
	return d, layout, err
}

// minimalEvicter returns the populator's Evict hook: it removes the minimal
// ISO template derived from an evicted full ISO, unless it is being served.
func minimalEvicter(cfg *config.Config, store *cache.Store, index *cache.Index, inUse func(cache.Digest) bool, forget func(cache.Digest)) func(cache.BaseRecord) error {
	return func(rec cache.BaseRecord) error {
		if rec.Key.Type != config.TypeFullISO || cfg.ImageServiceBaseURL == "" {
			return nil
		}
		rootfsURL, err := customize.MinimalRootfsURL(cfg.ImageServiceBaseURL, rec.Key.Arch, rec.Key.Version)
		if err != nil {
			return err
		}
		d, err := index.Derived(upstream.DerivedMinimal, rec.Digest, rootfsURL)
		if errors.Is(err, cache.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if inUse(d) {
			return fmt.Errorf("minimal ISO template %s is being served", d)
		}
		forget(d)
		if err := index.DeleteDerived(upstream.DerivedMinimal, rec.Digest, rootfsURL); err != nil {
			return err
		}
		if err := index.DeleteMeta(upstream.MetaLayout, d); err != nil {
			return err
		}
		if err := store.Remove(d); err != nil && !errors.Is(err, cache.ErrNotFound) {
			return err
		}
		return nil
	}
}
