package proxy

import (
	"errors"
	"fmt"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
)

// Catalog implements Bases over the populator's records, with parsed
// layouts kept hot in memory in front of the bbolt index. A layout is
// parsed once, at ingest; here it is only decoded, once per process.
type Catalog struct {
	pop     *upstream.Populator
	index   *cache.Index
	layouts *cache.Hot[*customize.Layout]
}

// NewCatalog returns a Catalog.
func NewCatalog(pop *upstream.Populator, index *cache.Index) (*Catalog, error) {
	hot, err := cache.NewHot[*customize.Layout](1024)
	if err != nil {
		return nil, err
	}
	return &Catalog{pop: pop, index: index, layouts: hot}, nil
}

// Base implements Bases.
func (c *Catalog) Base(version, arch, imageType string) (Base, bool, error) {
	rec, configured, err := c.pop.Lookup(version, arch, imageType)
	if !configured {
		return Base{}, false, nil
	}
	if errors.Is(err, upstream.ErrImageNotReady) {
		return Base{}, true, fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	if err != nil {
		return Base{}, true, err
	}
	l, err := c.layout(rec.Digest)
	if err != nil {
		return Base{}, true, err
	}
	return Base{Digest: rec.Digest, Layout: l, ModTime: rec.FetchedAt}, true, nil
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
