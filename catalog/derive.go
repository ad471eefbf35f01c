package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"go.uber.org/zap"
)

// Index kinds of what the catalog stores beside the blobs.
const (
	// MetaLayout is the meta kind of a stored ISO's parsed layout.
	MetaLayout = "layout"
	// MetaNmstate is the meta kind that keeps an nmstatectl archive's
	// blob referenced.
	MetaNmstate = "nmstate"
	// DerivedMinimal is the derivation kind of minimal ISO templates.
	DerivedMinimal = "minimal"
	// DerivedNmstate is the derivation kind of a full ISO's nmstatectl
	// archive (§D.4).
	DerivedNmstate = "nmstate"
)

// DeriveWarning is returned by a Derive hook that built what it could but
// not everything: the image is served, /health shows the warning.
type DeriveWarning struct{ Err error }

func (w *DeriveWarning) Error() string { return w.Err.Error() }
func (w *DeriveWarning) Unwrap() error { return w.Err }

// errNoMinimal is the answer for minimal ISOs of s390x, which has none.
var errNoMinimal = fmt.Errorf("%w: no minimal ISO for s390x", customize.ErrNoFile)

// minimalKey is the derivation parameter of the minimal ISO template of
// rec: its rootfs URL under IMAGE_SERVICE_BASE_URL and the nmstatectl
// archive it carries, if any. Building, finding and evicting a template
// all name it through this one function.
func (c *Catalog) minimalKey(rec cache.BaseRecord, nmstate cache.Digest) (string, error) {
	if rec.Key.Arch == "s390x" {
		return "", errNoMinimal
	}
	if c.cfg.ImageServiceBaseURL == "" {
		return "", fmt.Errorf("%w: minimal ISO needs IMAGE_SERVICE_BASE_URL (its rootfs URL would be relative)", customize.ErrNoFile)
	}
	u, err := customize.MinimalRootfsURL(c.cfg.ImageServiceBaseURL, rec.Key.Arch, rec.Key.Version)
	if err != nil {
		return "", err
	}
	if nmstate.IsZero() {
		return u, nil
	}
	return u + "\x00nmstate=" + nmstate.Hex(), nil
}

// deriveFrom is the default Derive hook: for a full ISO it extracts
// nmstatectl (OpenShift 4.18 and later) and builds the minimal ISO
// template, each once per full ISO digest, stored as blobs and recorded
// in the index, so a restart never rebuilds them.
func (c *Catalog) deriveFrom(ctx context.Context, rec cache.BaseRecord) error {
	if rec.Key.Type != config.TypeFullISO {
		return nil
	}
	// nmstatectl first (every architecture: PXE initrds carry it too);
	// a failure is reported, the minimal template is built without it.
	var nmstate cache.Digest
	var nmErr error
	if customize.NmstateNeeded(rec.OpenshiftVersion) {
		if nmstate, nmErr = c.ensureNmstate(ctx, rec); nmErr != nil {
			nmErr = fmt.Errorf("nmstatectl: %w", nmErr)
		}
	}
	var noMinimal error
	switch {
	case rec.Key.Arch == "s390x":
	case c.cfg.ImageServiceBaseURL == "":
		// Not a failure to retry: the configuration asks for no minimal
		// ISO (its rootfs URL would be relative); full ISOs are served.
		noMinimal = errors.New("no minimal ISO: IMAGE_SERVICE_BASE_URL is not set")
	default:
		if err := c.buildMinimalTemplate(ctx, rec, nmstate); err != nil {
			return errors.Join(nmErr, err)
		}
	}
	if err := errors.Join(nmErr, noMinimal); err != nil {
		return &DeriveWarning{Err: err}
	}
	return nil
}

// buildMinimalTemplate builds and records the minimal template of rec
// unless it exists.
func (c *Catalog) buildMinimalTemplate(ctx context.Context, rec cache.BaseRecord, nmstate cache.Digest) error {
	key, err := c.minimalKey(rec, nmstate)
	if err != nil {
		return err
	}
	store, index := c.cfg.Store, c.cfg.Index
	if d, err := index.Derived(DerivedMinimal, rec.Digest, key); err == nil {
		if _, err := store.Stat(d); err == nil {
			return nil
		}
	}
	rootfsURL, err := customize.MinimalRootfsURL(c.cfg.ImageServiceBaseURL, rec.Key.Arch, rec.Key.Version)
	if err != nil {
		return err
	}
	opts := customize.MinimalOptions{RootfsURL: rootfsURL, Arch: rec.Key.Arch, WorkDir: c.cfg.TempDir}
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
	out := filepath.Join(c.cfg.TempDir, "minimal-"+rec.Digest.Hex()[:16]+".iso")
	defer os.Remove(out)
	if err := customize.BuildMinimal(full, out, opts); err != nil {
		return fmt.Errorf("build minimal ISO template: %w", err)
	}
	d, layout, err := ingestFile(ctx, store, out)
	if err != nil {
		return err
	}
	if err := index.PutMeta(MetaLayout, d, layout); err != nil {
		return err
	}
	if err := index.PutDerived(DerivedMinimal, rec.Digest, key, d); err != nil {
		return err
	}
	c.log.Info("minimal ISO template ready", zap.String("version", rec.Key.Version), zap.String("arch", rec.Key.Arch), zap.String("digest", d.String()))
	return nil
}

// ensureNmstate extracts nmstatectl from a full ISO's rootfs once per ISO
// digest and returns the digest of its archive blob.
func (c *Catalog) ensureNmstate(ctx context.Context, rec cache.BaseRecord) (cache.Digest, error) {
	store, index := c.cfg.Store, c.cfg.Index
	if d, err := index.Derived(DerivedNmstate, rec.Digest, ""); err == nil {
		if _, err := store.Stat(d); err == nil {
			return d, nil
		}
	}
	l, err := c.layout(rec.Digest)
	if err != nil {
		return cache.Digest{}, err
	}
	full, _, err := store.Open(rec.Digest)
	if err != nil {
		return cache.Digest{}, err
	}
	defer full.Close()
	archive, err := customize.ExtractNmstatectl(full, l, c.cfg.TempDir)
	if err != nil {
		return cache.Digest{}, err
	}
	d, _, err := store.Put(ctx, bytes.NewReader(archive))
	if err != nil {
		return cache.Digest{}, err
	}
	// The meta entry keeps the blob referenced (Sweep); the derivation
	// finds it.
	if err := index.PutMeta(MetaNmstate, d, nil); err != nil {
		return cache.Digest{}, err
	}
	return d, index.PutDerived(DerivedNmstate, rec.Digest, "", d)
}

// evictDerived is the default Evict hook: it removes what was derived
// from an evicted full ISO (minimal template, nmstatectl archive), unless
// the template is being served.
func (c *Catalog) evictDerived(rec cache.BaseRecord) error {
	if rec.Key.Type != config.TypeFullISO {
		return nil
	}
	store, index := c.cfg.Store, c.cfg.Index
	nmstate, nmErr := index.Derived(DerivedNmstate, rec.Digest, "")
	if nmErr != nil {
		nmstate = cache.Digest{}
	}
	if key, err := c.minimalKey(rec, nmstate); err == nil {
		d, err := index.Derived(DerivedMinimal, rec.Digest, key)
		switch {
		case errors.Is(err, cache.ErrNotFound):
		case err != nil:
			return err
		case c.cfg.InUse(d):
			return fmt.Errorf("minimal ISO template %s is being served", d)
		default:
			c.forget(d)
			if err := index.DeleteDerived(DerivedMinimal, rec.Digest, key); err != nil {
				return err
			}
			if err := index.DeleteMeta(MetaLayout, d); err != nil {
				return err
			}
			if err := store.Remove(d); err != nil && !errors.Is(err, cache.ErrNotFound) {
				return err
			}
		}
	}
	if nmErr == nil {
		c.forget(nmstate)
		if err := index.DeleteDerived(DerivedNmstate, rec.Digest, ""); err != nil {
			return err
		}
		if err := index.DeleteMeta(MetaNmstate, nmstate); err != nil {
			return err
		}
		if err := store.Remove(nmstate); err != nil && !errors.Is(err, cache.ErrNotFound) {
			return err
		}
	}
	return nil
}
