package proxy

import (
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Route patterns, used as the metrics handler label (bounded cardinality).
const (
	routeInitrd   = "/images/:imageID/pxe-initrd"
	routeAddrsize = "/images/:imageID/s390x-initrd-addrsize"
	routeLongISO  = "/images/:imageID"
	routeByID     = "/byid/:token"
	routeByAPIKey = "/byapikey/:token"
	routeByToken  = "/bytoken/:token"
)

// route is one entry of the API. Which listener may serve it is an
// attribute of the route, so the access decision is made on the path the
// router matched, never on a second reading of the path.
type route struct {
	methods []string
	path    string
	handle  fasthttp.RequestHandler
	// plainHTTP: also served on the plain-HTTP listener of the
	// two-listener setup, which answers only what iPXE needs (it cannot do
	// HTTPS): PXE initrds, boot artifacts, and the probes; and the peer
	// routes, where sibling replicas fetch base images.
	plainHTTP bool
}

var getHead = []string{fasthttp.MethodGet, fasthttp.MethodHead}

func (s *Server) routeTable() []route {
	return []route{
		{methods: getHead, path: "/byid/{image_id}/{version}/{arch}/{filename}", handle: s.handleShortISO(routeByID)},
		{methods: getHead, path: "/byapikey/{token}/{version}/{arch}/{filename}", handle: s.handleShortISO(routeByAPIKey)},
		{methods: getHead, path: "/bytoken/{token}/{version}/{arch}/{filename}", handle: s.handleShortISO(routeByToken)},
		{methods: getHead, path: "/images/{image_id}", handle: s.handleLongISO},
		{methods: getHead, path: "/images/{image_id}/pxe-initrd", handle: s.handleInitrd, plainHTTP: true},
		{methods: getHead, path: "/images/{image_id}/s390x-initrd-addrsize", handle: s.handleAddrsize},
		{methods: getHead, path: "/boot-artifacts/{artifact:*}", handle: s.handleBootArtifact, plainHTTP: true},
		{methods: []string{router.MethodWild}, path: "/health", handle: s.handleHealth, plainHTTP: true},
		{methods: []string{router.MethodWild}, path: "/live", handle: func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(fasthttp.StatusOK) }, plainHTTP: true},
		{methods: []string{fasthttp.MethodGet}, path: "/metrics", handle: s.handleMetrics, plainHTTP: true},
		// Sibling replicas share base image blobs (upstream's peer
		// protocol); they ask on the plain-HTTP port when there is one.
		{methods: getHead, path: "/peer/v1/bases/{type}/{version}/{arch}", handle: s.handlePeerBase, plainHTTP: true},
		{methods: getHead, path: "/peer/v1/blobs/{digest}", handle: s.handlePeerBlob, plainHTTP: true},
	}
}

// newRouter returns the router of one listener: every route, or only the
// plain-HTTP ones.
func (s *Server) newRouter(plainHTTP bool) *router.Router {
	r := router.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false
	for _, rt := range s.routeTable() {
		if plainHTTP && !rt.plainHTTP {
			continue
		}
		for _, m := range rt.methods {
			r.Handle(m, rt.path, rt.handle)
		}
	}
	r.PanicHandler = func(ctx *fasthttp.RequestCtx, v any) {
		// The only log lines with a stack trace: a bug, not an expected error.
		s.reqLog(ctx).Error("panic serving a request", zapPath(ctx), zap.Any("panic", v), zap.Stack("stack"))
		httpError(ctx, "internal error", fasthttp.StatusInternalServerError)
	}
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		httpError(ctx, "404 page not found", fasthttp.StatusNotFound)
	}
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		httpError(ctx, "405 method not allowed", fasthttp.StatusMethodNotAllowed)
	}
	return r
}

func userValue(ctx *fasthttp.RequestCtx, key string) string {
	v, _ := ctx.UserValue(key).(string)
	return v
}

// isUUID reports whether s is a lowercase canonical UUID, the original's
// image id constraint.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
