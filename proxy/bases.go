package proxy

import (
	"context"
	"os"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/catalog"
)

// Bases is what the proxy needs of the catalog: which stored image a
// request is served from, the blob files to stream, and readiness.
// *catalog.Catalog implements it.
type Bases interface {
	// Base returns the stored image. configured is false when no OS image
	// entry matches; err wraps catalog.ErrNotReady while it is being
	// fetched.
	Base(ctx context.Context, version, arch, imageType string) (b catalog.Base, configured bool, err error)
	// Open returns a file of blob d for one response; release ends its use.
	Open(d cache.Digest) (f *os.File, release func(), err error)
	// Ready reports whether the service may answer image requests.
	Ready() bool
	// Health is the JSON body of /health.
	Health() []byte
}

var _ Bases = (*catalog.Catalog)(nil)
