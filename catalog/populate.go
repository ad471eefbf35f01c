package catalog

import (
	"fmt"
	"slices"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/upstream"
	"go.uber.org/zap"
)

// partialKey names the resumable download of an entry: the same image from
// the same URL continues the same file.
func partialKey(e *imageEntry) cache.Digest {
	return cache.DigestOf([]byte(e.key.Type + "\x00" + e.key.Version + "\x00" + e.key.Arch + "\x00" + e.img.URL))
}

func baseKey(img config.OSImage) cache.BaseKey {
	t := img.Type
	if t == "" {
		t = config.TypeFullISO
	}
	return cache.BaseKey{Type: t, Version: img.Version, Arch: img.CPUArchitecture}
}

// sourceID is what the index and the image records keep of an image's
// source URL: its SHA-256, enough to tell whether the URL changed, and no
// token or password the URL may carry.
func sourceID(url string) string { return "sha256:" + upstream.SourceHash(url) }

// restore marks e ready when the index holds it for the same URL and its
// blob and layout are present.
func (c *Catalog) restore(e *imageEntry) bool {
	rec, err := c.cfg.Index.Base(e.key)
	if err != nil {
		return false
	}
	switch rec.URL {
	case sourceID(e.img.URL):
	case e.img.URL:
		// Written by an earlier version, with the URL itself: keep only
		// its digest on disk from now on (a URL may carry a token).
		rec.URL = sourceID(e.img.URL)
		if err := c.cfg.Index.PutBase(rec); err != nil {
			c.log.Warn("rewriting an image record without its URL", zap.Error(err))
		}
	default:
		c.log.Info("OS image URL changed, fetching again", zap.String("version", e.key.Version), zap.String("arch", e.key.Arch))
		return false
	}
	if e.img.SHA256 != "" && rec.Digest.Hex() != e.img.SHA256 {
		return false
	}
	if size, err := c.cfg.Store.Stat(rec.Digest); err != nil || size != rec.Size {
		return false
	}
	if _, err := c.cfg.Index.Meta(MetaLayout, rec.Digest); err != nil {
		return false
	}
	c.mu.Lock()
	e.state, e.rec, e.done, e.total = StateReady, rec, rec.Size, rec.Size
	close(e.ready)
	c.mu.Unlock()
	return true
}

// Lookup resolves a request's version (an RHCOS version, else an OpenShift
// version, §D.5), architecture and image type. minimal-iso resolves to the
// full-iso entry it is derived from.
func (c *Catalog) Lookup(version, arch, imageType string) (rec cache.BaseRecord, configured bool, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.find(version, arch, lookupType(imageType))
	if e == nil {
		return cache.BaseRecord{}, false, nil
	}
	if e.state != StateReady {
		return cache.BaseRecord{}, true, fmt.Errorf("%w: %s %s is %s", ErrNotReady, e.key.Version, e.key.Arch, e.state)
	}
	e.served.Store(time.Now().UnixNano())
	return e.rec, true, nil
}

// lookupType is the configured image type a request's type is served from:
// minimal ISOs derive from full ISOs.
func lookupType(imageType string) string {
	if imageType == config.TypeDisconnectedISO {
		return config.TypeDisconnectedISO
	}
	return config.TypeFullISO
}

func (c *Catalog) find(version, arch, typ string) *imageEntry {
	for _, e := range c.entries {
		if e.key.Arch == arch && e.key.Type == typ && e.img.Version == version {
			return e
		}
	}
	for _, e := range c.entries {
		if e.key.Arch == arch && e.key.Type == typ && slices.Contains(e.ocpVersions, version) {
			return e
		}
	}
	return nil
}
