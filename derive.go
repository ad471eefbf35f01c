package main

import (
	"bytes"
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
		if rec.Key.Type != config.TypeFullISO {
			return nil
		}
		// nmstatectl first (every architecture: PXE initrds carry it too);
		// a failure is reported, the minimal template is built without it.
		var nmstate cache.Digest
		var nmErr error
		if customize.NmstateNeeded(rec.OpenshiftVersion) {
			if nmstate, nmErr = ensureNmstate(ctx, cfg, store, index, rec); nmErr != nil {
				nmErr = fmt.Errorf("nmstatectl: %w", nmErr)
			}
		}
		if err := buildMinimalTemplate(ctx, cfg, store, index, log, rec, nmstate); err != nil {
			return errors.Join(nmErr, err)
		}
		if nmErr != nil {
			return &upstream.DeriveWarning{Err: nmErr}
		}
		return nil
	}
}

// buildMinimalTemplate builds and records the minimal template of rec
// unless it exists.
func buildMinimalTemplate(ctx context.Context, cfg *config.Config, store *cache.Store, index *cache.Index, log *zap.Logger, rec cache.BaseRecord, nmstate cache.Digest) error {
	if rec.Key.Arch == "s390x" {
		return nil // no minimal ISO for s390x
	}
	if cfg.ImageServiceBaseURL == "" {
		return errors.New("IMAGE_SERVICE_BASE_URL is not set: no minimal ISO (its rootfs URL would be relative)")
	}
	rootfsURL, err := customize.MinimalRootfsURL(cfg.ImageServiceBaseURL, rec.Key.Arch, rec.Key.Version)
	if err != nil {
		return err
	}
	key := upstream.MinimalKey(rootfsURL, nmstate)
	if d, err := index.Derived(upstream.DerivedMinimal, rec.Digest, key); err == nil {
		if _, err := store.Stat(d); err == nil {
			return nil
		}
	}
	opts := customize.MinimalOptions{RootfsURL: rootfsURL, Arch: rec.Key.Arch, WorkDir: cfg.DataTempDir}
	if !nmstate.IsZero() {
		if opts.Nmstate, err = os.ReadFile(store.BlobPath(nmstate)); err != nil {
			return err
		}
	}
	full, _, err := store.Open(rec.Digest)
	if err != nil {
		return err
	}
	defer full.Close()
	out := filepath.Join(cfg.DataTempDir, "minimal-"+rec.Digest.Hex()[:16]+".iso")
	defer os.Remove(out)
	err = customize.BuildMinimal(full, out, opts)
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
	if err := index.PutDerived(upstream.DerivedMinimal, rec.Digest, key, d); err != nil {
		return err
	}
	log.Info("minimal ISO template ready", zap.String("version", rec.Key.Version), zap.String("arch", rec.Key.Arch), zap.String("digest", d.String()))
	return nil
}

// ensureNmstate extracts nmstatectl from a full ISO's rootfs once per ISO
// digest and returns the digest of its archive blob.
func ensureNmstate(ctx context.Context, cfg *config.Config, store *cache.Store, index *cache.Index, rec cache.BaseRecord) (cache.Digest, error) {
	if d, err := index.Derived(upstream.DerivedNmstate, rec.Digest, ""); err == nil {
		if _, err := store.Stat(d); err == nil {
			return d, nil
		}
	}
	b, err := index.Meta(upstream.MetaLayout, rec.Digest)
	if err != nil {
		return cache.Digest{}, err
	}
	l, err := customize.DecodeLayout(b)
	if err != nil {
		return cache.Digest{}, err
	}
	full, _, err := store.Open(rec.Digest)
	if err != nil {
		return cache.Digest{}, err
	}
	defer full.Close()
	archive, err := customize.ExtractNmstatectl(full, l, cfg.DataTempDir)
	if err != nil {
		return cache.Digest{}, err
	}
	d, _, err := store.Put(ctx, bytes.NewReader(archive))
	if err != nil {
		return cache.Digest{}, err
	}
	// The meta entry keeps the blob referenced (Sweep); the derivation
	// finds it.
	if err := index.PutMeta(upstream.MetaNmstate, d, nil); err != nil {
		return cache.Digest{}, err
	}
	return d, index.PutDerived(upstream.DerivedNmstate, rec.Digest, "", d)
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

// minimalEvicter returns the populator's Evict hook: it removes what was
// derived from an evicted full ISO (minimal template, nmstatectl archive),
// unless the template is being served.
func minimalEvicter(cfg *config.Config, store *cache.Store, index *cache.Index, inUse func(cache.Digest) bool, forget func(cache.Digest)) func(cache.BaseRecord) error {
	return func(rec cache.BaseRecord) error {
		if rec.Key.Type != config.TypeFullISO {
			return nil
		}
		nmstate, nmErr := index.Derived(upstream.DerivedNmstate, rec.Digest, "")
		if nmErr != nil {
			nmstate = cache.Digest{}
		}
		if cfg.ImageServiceBaseURL != "" {
			rootfsURL, err := customize.MinimalRootfsURL(cfg.ImageServiceBaseURL, rec.Key.Arch, rec.Key.Version)
			if err != nil {
				return err
			}
			key := upstream.MinimalKey(rootfsURL, nmstate)
			d, err := index.Derived(upstream.DerivedMinimal, rec.Digest, key)
			switch {
			case errors.Is(err, cache.ErrNotFound):
			case err != nil:
				return err
			case inUse(d):
				return fmt.Errorf("minimal ISO template %s is being served", d)
			default:
				forget(d)
				if err := index.DeleteDerived(upstream.DerivedMinimal, rec.Digest, key); err != nil {
					return err
				}
				if err := index.DeleteMeta(upstream.MetaLayout, d); err != nil {
					return err
				}
				if err := store.Remove(d); err != nil && !errors.Is(err, cache.ErrNotFound) {
					return err
				}
			}
		}
		if nmErr == nil {
			if err := index.DeleteDerived(upstream.DerivedNmstate, rec.Digest, ""); err != nil {
				return err
			}
			if err := index.DeleteMeta(upstream.MetaNmstate, nmstate); err != nil {
				return err
			}
			if err := store.Remove(nmstate); err != nil && !errors.Is(err, cache.ErrNotFound) {
				return err
			}
		}
		return nil
	}
}
