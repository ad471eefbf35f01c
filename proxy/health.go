package proxy

import (
	"github.com/valyala/fasthttp"
)

// handleHealth is the readiness probe: 503 until the service can serve
// images, then 200. The body lists each configured image's state.
func (s *Server) handleHealth(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	if s.bases.Ready() {
		ctx.SetStatusCode(fasthttp.StatusOK)
	} else {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, retryAfter)
	}
	ctx.SetBody(s.bases.Health())
}

// handleMetrics answers /metrics: the shared set in the Prometheus text
// format, each family with its HELP and TYPE (see exposer).
func (s *Server) handleMetrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	_ = s.metrics.expose.write(ctx, s.set, s.log)
}
