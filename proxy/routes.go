package proxy

import (
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
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

func (s *Server) routes() *router.Router {
	r := router.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false
	get := func(path string, h fasthttp.RequestHandler) {
		r.GET(path, h)
		r.HEAD(path, h)
	}
	get("/byid/{image_id}/{version}/{arch}/{filename}", s.handleShortISO(routeByID))
	get("/byapikey/{token}/{version}/{arch}/{filename}", s.handleShortISO(routeByAPIKey))
	get("/bytoken/{token}/{version}/{arch}/{filename}", s.handleShortISO(routeByToken))
	get("/images/{image_id}", s.handleLongISO)
	get("/images/{image_id}/pxe-initrd", s.handleInitrd)
	get("/images/{image_id}/s390x-initrd-addrsize", s.handleAddrsize)
	get("/boot-artifacts/{artifact:*}", s.handleBootArtifact)
	r.ANY("/health", s.handleHealth)
	r.ANY("/live", func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(fasthttp.StatusOK) })
	r.GET("/metrics", s.handleMetrics)
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
