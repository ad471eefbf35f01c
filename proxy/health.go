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

func (s *Server) handleMetrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	s.set.WritePrometheus(ctx)
}
