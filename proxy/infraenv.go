package proxy

import (
	"context"
	"errors"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/upstream"
	"github.com/valyala/fasthttp"
)

// errUpstreamBusy means MAX_CONCURRENT_UPSTREAM_REQUESTS requests are
// already waiting on assisted-service: 503 + Retry-After.
var errUpstreamBusy = errors.New("proxy: too many requests waiting on assisted-service")

// snapshot returns the built image of a request: the snapshot of the
// download it continues, or one built from fresh upstream answers.
// Upstream calls take an upstream slot (none free: errUpstreamBusy), never
// a stream slot, so requests waiting on a slow assisted-service cannot
// starve what needs none of it (boot artifacts); they run under a context
// bounded by ASSISTED_SERVICE_TIMEOUT and cancelled when the handler
// returns.
func (s *Server) snapshot(ctx *fasthttp.RequestCtx, kind, imageID string, base cache.Digest, cred upstream.Credential, build func(context.Context) (*built, error)) (*built, error) {
	group, item := snapshotGroupKey(imageID, cred), snapshotItemKey(kind, base)
	// HEAD and requests from byte 0 start a download: they ask afresh.
	if !ctx.IsHead() && continuesDownload(ctx.Request.Header.Peek(fasthttp.HeaderRange)) {
		if b := s.snaps.cached(group, item); b != nil {
			return b, nil
		}
	}
	uctx, cancel := context.WithCancel(context.Background())
	if t := s.cfg.AssistedServiceTimeout; t > 0 {
		uctx, cancel = context.WithTimeout(context.Background(), t)
	}
	defer cancel()
	return s.snaps.fetch(uctx, group, item, build)
}
