package proxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
)

// Catalog implements Bases over the populator's records, with parsed
// layouts kept hot in memory in front of the bbolt index. A layout is
// parsed once, at ingest; here it is only decoded, once per process.
type Catalog struct {
	pop     *upstream.Populator
	store   *cache.Store
	index   *cache.Index
	layouts *cache.Hot[*customize.Layout]
	nmstate *cache.Hot[[]byte] // nmstatectl archives by full ISO digest
	baseURL string             // IMAGE_SERVICE_BASE_URL: part of a minimal template's identity

	// derived remembers the derivations found in the index (key: kind,
	// full ISO digest, parameter), so requests do not read bbolt. Only
	// found ones are kept: a derivation being built is looked up again.
	derived sync.Map // string → cache.Digest
}

// NewCatalog returns a Catalog.
func NewCatalog(pop *upstream.Populator, store *cache.Store, index *cache.Index, imageServiceBaseURL string) (*Catalog, error) {
	hot, err := cache.NewHot[*customize.Layout](1024)
	if err != nil {
		return nil, err
	}
	nm, err := cache.NewHot[[]byte](256 << 20)
	if err != nil {
		return nil, err
	}
	return &Catalog{pop: pop, store: store, index: index, layouts: hot, nmstate: nm, baseURL: imageServiceBaseURL}, nil
}

// Base implements Bases.
func (c *Catalog) Base(version, arch, imageType string) (Base, bool, error) {
	rec, configured, err := c.pop.Ensure(context.Background(), version, arch, imageType)
	if !configured {
		return Base{}, false, nil
	}
	if errors.Is(err, upstream.ErrImageNotReady) {
		return Base{}, true, fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	if err != nil {
		return Base{}, true, err
	}
	d := rec.Digest
	nmDigest, nmstate := c.nmstateOf(rec)
	if imageType == typeMinimal {
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
	if rec.Key.Type != typeFull || !customize.NmstateNeeded(rec.OpenshiftVersion) {
		return cache.Digest{}, nil
	}
	d, err := c.lookupDerived(upstream.DerivedNmstate, rec.Digest, "")
	if err != nil {
		return cache.Digest{}, nil
	}
	if b, ok := c.nmstate.Get(d.Hex()); ok {
		return d, b
	}
	b, err := os.ReadFile(c.store.BlobPath(d))
	if err != nil {
		return cache.Digest{}, nil
	}
	c.nmstate.Set(d.Hex(), b, int64(len(b)))
	return d, b
}

// errNoMinimal is the answer for minimal ISOs of s390x, which has none.
var errNoMinimal = fmt.Errorf("%w: no minimal ISO for s390x", customize.ErrNoFile)

// minimal returns the minimal ISO template derived from a full ISO.
func (c *Catalog) minimal(rec cache.BaseRecord, nmstate cache.Digest) (cache.Digest, error) {
	if rec.Key.Arch == "s390x" {
		return cache.Digest{}, errNoMinimal
	}
	if c.baseURL == "" {
		return cache.Digest{}, fmt.Errorf("%w: minimal ISO needs IMAGE_SERVICE_BASE_URL", customize.ErrNoFile)
	}
	u, err := customize.MinimalRootfsURL(c.baseURL, rec.Key.Arch, rec.Key.Version)
	if err != nil {
		return cache.Digest{}, err
	}
	d, err := c.lookupDerived(upstream.DerivedMinimal, rec.Digest, upstream.MinimalKey(u, nmstate))
	if errors.Is(err, cache.ErrNotFound) {
		return cache.Digest{}, fmt.Errorf("%w: minimal ISO template of %s %s is being built", ErrNotReady, rec.Key.Version, rec.Key.Arch)
	}
	return d, err
}

func (c *Catalog) layout(d cache.Digest) (*customize.Layout, error) {
	key := d.Hex()
	if l, ok := c.layouts.Get(key); ok {
		return l, nil
	}
	b, err := c.index.Meta(upstream.MetaLayout, d)
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

// Ready implements Bases.
func (c *Catalog) Ready() bool { return c.pop.Ready() }

// Health implements Bases.
func (c *Catalog) Health() []byte { return c.pop.Health() }

// lookupDerived is index.Derived with found results remembered.
func (c *Catalog) lookupDerived(kind string, parent cache.Digest, param string) (cache.Digest, error) {
	key := kind + "|" + parent.Hex() + "|" + param
	if d, ok := c.derived.Load(key); ok {
		return d.(cache.Digest), nil
	}
	d, err := c.index.Derived(kind, parent, param)
	if err == nil {
		c.derived.Store(key, d)
	}
	return d, err
}

// Forget drops what is remembered about blob d: call it when d is evicted,
// since what derives from it is removed with it.
func (c *Catalog) Forget(d cache.Digest) {
	hex := d.Hex()
	c.derived.Range(func(k, _ any) bool {
		if strings.Contains(k.(string), "|"+hex+"|") {
			c.derived.Delete(k)
		}
		return true
	})
}
