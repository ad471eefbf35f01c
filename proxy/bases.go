package proxy

import (
	"errors"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/customize"
)

// Base is a stored base image ready to serve.
type Base struct {
	Digest  cache.Digest
	Layout  *customize.Layout
	ModTime time.Time // when it was stored: Last-Modified of boot artifacts
	// Nmstate is the nmstatectl archive PXE initrds of this image append
	// after a static-network ramdisk (OpenShift 4.18 and later); nil if none.
	Nmstate []byte
}

// ErrNotReady means a configured image is not stored yet: 503 + Retry-After.
var ErrNotReady = errors.New("proxy: image not ready")

// Bases resolves the (version, architecture, image type) of a request to a
// stored base image.
type Bases interface {
	// Base returns the stored image. configured is false when no OS image
	// entry matches; err wraps ErrNotReady while it is being fetched.
	Base(version, arch, imageType string) (b Base, configured bool, err error)
	// Ready reports whether the service may answer image requests.
	Ready() bool
	// Health is the JSON body of /health.
	Health() []byte
}
