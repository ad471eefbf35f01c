package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
)

// Base resolves a request's (version, architecture, image type) to the
// stored image it is served from: the full ISO, its minimal template, or
// the disconnected ISO, with its parsed layout (kept hot in memory: a
// layout is parsed once, at ingest, and here only decoded, once per
// process). configured is false when no OS image entry matches; err wraps
// ErrNotReady while the image or its template is not stored yet.
func (c *Catalog) Base(ctx context.Context, version, arch, imageType string) (Base, bool, error) {
	rec, configured, err := c.Ensure(ctx, version, arch, imageType)
	if !configured || err != nil {
		return Base{}, configured, err
	}
	d := rec.Digest
	nmDigest, nmstate := c.nmstateOf(rec)
	if imageType == config.TypeMinimalISO {
		if d, err = c.minimal(rec, nmDigest); err != nil {
			return Base{}, true, err
		}
	}
	l, err := c.layout(d)
	if err != nil {
		return Base{}, true, err
	}
	return Base{Digest: d, Layout: l, ModTime: rec.FetchedAt, Nmstate: nmstate}, true, nil
}

// nmstateOf returns the nmstatectl archive extracted from a full ISO, if
// its OpenShift version needs one (§B.5; decided on the configured version,
// not on the request's) and the extraction succeeded.
func (c *Catalog) nmstateOf(rec cache.BaseRecord) (cache.Digest, []byte) {
	if rec.Key.Type != config.TypeFullISO || !customize.NmstateNeeded(rec.OpenshiftVersion) {
		return cache.Digest{}, nil
	}
	d, err := c.lookupDerived(DerivedNmstate, rec.Digest, "")
	if err != nil {
		return cache.Digest{}, nil
	}
	if b, ok := c.nmstate.Get(d.Hex()); ok {
		return d, b
	}
	b, err := os.ReadFile(c.cfg.Store.BlobPath(d))
	if err != nil {
		return cache.Digest{}, nil
	}
	c.nmstate.Set(d.Hex(), b, int64(len(b)))
	return d, b
}

// minimal returns the minimal ISO template derived from a full ISO.
func (c *Catalog) minimal(rec cache.BaseRecord, nmstate cache.Digest) (cache.Digest, error) {
	key, err := c.minimalKey(rec, nmstate)
	if err != nil {
		return cache.Digest{}, err
	}
	d, err := c.lookupDerived(DerivedMinimal, rec.Digest, key)
	if errors.Is(err, cache.ErrNotFound) {
		return cache.Digest{}, fmt.Errorf("%w: minimal ISO template of %s %s is being built", ErrNotReady, rec.Key.Version, rec.Key.Arch)
	}
	return d, err
}

// layout returns the parsed layout stored for blob d.
func (c *Catalog) layout(d cache.Digest) (*customize.Layout, error) {
	key := d.Hex()
	if l, ok := c.layouts.Get(key); ok {
		return l, nil
	}
	b, err := c.cfg.Index.Meta(MetaLayout, d)
	if err != nil {
		return nil, err
	}
	l, err := customize.DecodeLayout(b)
	if err != nil {
		return nil, err
	}
	c.layouts.Set(key, l, 1)
	return l, nil
}

// lookupDerived is index.Derived with found results remembered.
func (c *Catalog) lookupDerived(kind string, parent cache.Digest, param string) (cache.Digest, error) {
	key := kind + "|" + parent.Hex() + "|" + param
	if d, ok := c.derived.Load(key); ok {
		return d.(cache.Digest), nil
	}
	d, err := c.cfg.Index.Derived(kind, parent, param)
	if err == nil {
		c.derived.Store(key, d)
	}
	return d, err
}

// forget drops what is remembered about blob d, before it is removed from
// the store: its open files (closed once their last stream ends), its
// layout, and the derivations of which it is the parent or the child.
func (c *Catalog) forget(d cache.Digest) {
	c.files.forget(d)
	hex := d.Hex()
	c.layouts.Del(hex)
	c.nmstate.Del(hex)
	c.derived.Range(func(k, v any) bool {
		if strings.Contains(k.(string), "|"+hex+"|") || v.(cache.Digest) == d {
			c.derived.Delete(k)
		}
		return true
	})
}
