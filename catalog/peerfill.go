package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/upstream"
	"go.uber.org/zap"
)

// peerEligible reports whether an image may be filled from, and served
// to, sibling replicas: one downloaded from a URL (http, https, docker),
// whose blob is public content. The built-in sample is built by each
// replica, and a file:// image is already local.
func peerEligible(img config.OSImage) bool {
	if img.URL == config.SampleURL {
		return false
	}
	return sourceKind(img.URL) != SourceFile
}

// fromPeers tries to fill e from its siblings before its source. Each
// sibling's answer is only a hint: the blob is committed only if it has
// the digest the sibling claimed, the entry's sha256 when one is
// configured, and passes the ingest checks of any download. It reports
// whether e is now stored; a sibling that is down, slow or wrong costs a
// fallback to the source, counted once per fill.
func (c *Catalog) fromPeers(ctx context.Context, e *imageEntry, log *zap.Logger, want cache.Digest, start time.Time) bool {
	peers, err := c.cfg.Peers.List(ctx)
	failed := err != nil
	if err != nil {
		log.Warn("listing peers", zap.Error(err))
	}
	q := upstream.PeerQuery{Type: e.key.Type, Version: e.key.Version, Arch: e.key.Arch, SourceURL: e.img.URL}
	for _, peer := range peers {
		if ctx.Err() != nil {
			return false
		}
		err := c.fillFromPeer(ctx, e, log.With(zap.String("peer", peer)), peer, q, want, start)
		switch {
		case err == nil:
			return true
		case errors.Is(err, upstream.ErrPeerMiss), errors.Is(err, upstream.ErrPeerSelf):
			log.Debug("peer cannot fill the OS image", zap.String("peer", peer), zap.Error(err))
		case ctx.Err() != nil:
			return false
		default:
			failed = true
			log.Warn("filling the OS image from a peer failed", zap.String("peer", peer), zap.Error(err))
		}
	}
	if failed {
		c.sources.fallbacks.Inc()
		log.Info("no peer filled the OS image; fetching it from its source", zap.Int("peers", len(peers)))
	}
	return false
}

// fillFromPeer asks one sibling for e's image and, if it has it, streams
// the blob into the store and commits it as any download.
func (c *Catalog) fillFromPeer(ctx context.Context, e *imageEntry, log *zap.Logger, peer string, q upstream.PeerQuery, want cache.Digest, start time.Time) error {
	b, err := c.cfg.Peers.Lookup(ctx, peer, q)
	if err != nil {
		return err
	}
	d, err := cache.ParseDigest(b.Digest)
	if err != nil {
		return err
	}
	if !want.IsZero() && d != want {
		return fmt.Errorf("catalog: peer has %s, the image's sha256 is %s: %w", d, want, cache.ErrDigestMismatch)
	}
	if limit := c.imageLimit(); limit > 0 && b.Size > limit {
		return fmt.Errorf("catalog: peer's image of %d bytes exceeds the bound of %d: %w", b.Size, limit, cache.ErrTooLarge)
	}
	w, err := c.cfg.Store.Create()
	if err != nil {
		return err
	}
	defer w.Cancel()
	w.Limit(b.Size)
	log.Info("filling OS image from a peer", zap.String("digest", d.String()), zap.Int64("bytes", b.Size))
	progress := c.progress(e, log, "filling OS image from a peer")
	if _, err := c.cfg.Peers.Fetch(ctx, peer, b, c.sources.writer(SourcePeer, w), progress); err != nil {
		return err
	}
	return c.store(ctx, e, log, w, d, SourcePeer, start)
}

// PeerBase returns the record of the base image (type, version, arch)
// for a sibling replica: ok only when it is configured, stored, and
// fetched from the source URL whose SourceHash is sourceHash. Only
// configured base images (full and disconnected ISOs) are ever named;
// what derives from them (minimal templates, nmstatectl) never is.
func (c *Catalog) PeerBase(imageType, version, arch, sourceHash string) (cache.BaseRecord, bool) {
	if len(sourceHash) != 64 || strings.Trim(sourceHash, "0123456789abcdef") != "" {
		return cache.BaseRecord{}, false
	}
	key := cache.BaseKey{Type: imageType, Version: version, Arch: arch}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.entries {
		if e.key == key && e.state == StateReady && peerEligible(e.img) && upstream.SourceHash(e.img.URL) == sourceHash {
			return e.rec, true
		}
	}
	return cache.BaseRecord{}, false
}

// PeerBlob returns the record of the base image stored as blob d, for a
// sibling replica: ok only while d is the blob of a configured base image
// the catalog records as stored, never any other blob.
func (c *Catalog) PeerBlob(d cache.Digest) (cache.BaseRecord, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.entries {
		if e.state == StateReady && e.rec.Digest == d && peerEligible(e.img) {
			return e.rec, true
		}
	}
	return cache.BaseRecord{}, false
}

// PeerFillServed counts a blob sent whole to a sibling replica.
func (c *Catalog) PeerFillServed() { c.sources.served.Inc() }

// InstanceID returns this process's random id. Answers to siblings carry
// it, so that a replica recognises itself behind any address.
func (c *Catalog) InstanceID() string { return c.instance }
