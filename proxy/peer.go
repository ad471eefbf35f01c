package proxy

import (
	"encoding/json"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/catalog"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
	"github.com/valyala/fasthttp"
)

// Route labels of the peer routes (upstream's peer protocol).
const (
	routePeerBases = "/peer/v1/bases"
	routePeerBlobs = "/peer/v1/blobs"
)

// PeerBases is what the peer routes need of the catalog besides Bases.
// *catalog.Catalog implements it; when the Bases a Server is built with
// does not, the peer routes answer 404.
type PeerBases interface {
	// InstanceID is this process's random id, sent with every answer.
	InstanceID() string
	// PeerBase returns the stored base image (type, version, arch)
	// fetched from the source URL whose upstream.SourceHash is sourceHash.
	PeerBase(imageType, version, arch, sourceHash string) (cache.BaseRecord, bool)
	// PeerBlob returns the record of the base image stored as blob d.
	PeerBlob(d cache.Digest) (cache.BaseRecord, bool)
	// PeerFillServed counts a blob sent whole to a sibling.
	PeerFillServed()
}

var _ PeerBases = (*catalog.Catalog)(nil)

// peerBases returns the catalog's peer side and marks the answer with
// this process's id, or answers 404.
func (s *Server) peerBases(ctx *fasthttp.RequestCtx) (PeerBases, bool) {
	pb, ok := s.bases.(PeerBases)
	if !ok {
		httpError(ctx, "404 page not found", fasthttp.StatusNotFound)
		return nil, false
	}
	ctx.Response.Header.Set(upstream.PeerInstanceHeader, pb.InstanceID())
	return pb, true
}

// handlePeerBase answers a sibling replica's lookup: the digest and size
// of a stored base image, as JSON, or 404.
func (s *Server) handlePeerBase(ctx *fasthttp.RequestCtx) {
	end := s.begin(ctx, routePeerBases)
	pb, ok := s.peerBases(ctx)
	if !ok {
		end(fasthttp.StatusNotFound, 0)
		return
	}
	rec, ok := pb.PeerBase(userValue(ctx, "type"), userValue(ctx, "version"), userValue(ctx, "arch"), string(ctx.QueryArgs().Peek("source")))
	if !ok {
		httpError(ctx, "not stored here", fasthttp.StatusNotFound)
		end(fasthttp.StatusNotFound, 0)
		return
	}
	body, _ := json.Marshal(upstream.PeerBlob{Digest: rec.Digest.String(), Size: rec.Size})
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetBody(body)
	end(fasthttp.StatusOK, int64(len(body)))
}

// handlePeerBlob sends a sibling replica the blob of a stored base image,
// through the plan machinery of every image response (Range, If-Range on
// the digest as ETag, sendfile, a stream slot). Any other blob is 404:
// derived images and anything carrying ignition are never sent here.
func (s *Server) handlePeerBlob(ctx *fasthttp.RequestCtx) {
	end := s.begin(ctx, routePeerBlobs)
	pb, ok := s.peerBases(ctx)
	if !ok {
		end(fasthttp.StatusNotFound, 0)
		return
	}
	d, err := cache.ParseDigest(userValue(ctx, "digest"))
	var rec cache.BaseRecord
	if err == nil {
		rec, ok = pb.PeerBlob(d)
	}
	if err != nil || !ok {
		httpError(ctx, "not stored here", fasthttp.StatusNotFound)
		end(fasthttp.StatusNotFound, 0)
		return
	}
	release, ok := s.limit.acquire()
	if !ok {
		end(s.busy(ctx), 0)
		return
	}
	whole := !ctx.IsHead()
	s.servePlan(ctx, response{
		plan: customize.NewPlan(d.String(), customize.Extent(0, rec.Size)),
		etag: `"` + d.String() + `"`, base: d, contentType: "application/octet-stream",
		modTime: rec.FetchedAt, release: release,
		end: func(code int, sent int64) {
			if whole && code == fasthttp.StatusOK && sent == rec.Size {
				pb.PeerFillServed()
			}
			end(code, sent)
		},
	})
}
