package catalog

import (
	"errors"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/customize"
)

// Base is a stored image ready to serve.
type Base struct {
	Digest  cache.Digest
	Layout  *customize.Layout
	ModTime time.Time // when it was stored: Last-Modified of boot artifacts
	// Nmstate is the nmstatectl archive PXE initrds of this image append
	// after a static-network ramdisk (OpenShift 4.18 and later); nil if none.
	Nmstate []byte
}

// ErrNotReady means a configured image is not stored yet: 503 + Retry-After.
var ErrNotReady = errors.New("catalog: image not ready")
