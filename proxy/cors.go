package proxy

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"
)

// cors applies ALLOWED_DOMAINS to image routes and boot artifacts as the
// original's rs/cors setup does (§B.9): GET/HEAD, headers Authorization and
// Content-Type, max age 600 s, preflights answered with 204.
func (s *Server) cors(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	allowed := s.cfg.AllowedDomains
	originAllowed := func(o string) bool {
		for _, a := range allowed {
			if a == "*" || a == o {
				return true
			}
			if i := strings.IndexByte(a, '*'); i >= 0 && len(o) >= len(a)-1 &&
				strings.HasPrefix(o, a[:i]) && strings.HasSuffix(o, a[i+1:]) {
				return true
			}
		}
		return false
	}
	return func(ctx *fasthttp.RequestCtx) {
		p := ctx.Path()
		if !isImageRoute(p) && !bytes.HasPrefix(p, []byte("/boot-artifacts/")) {
			next(ctx)
			return
		}
		origin := string(ctx.Request.Header.Peek(fasthttp.HeaderOrigin))
		h := &ctx.Response.Header
		if ctx.IsOptions() && len(ctx.Request.Header.Peek(fasthttp.HeaderAccessControlRequestMethod)) > 0 {
			h.Add(fasthttp.HeaderVary, "Origin")
			h.Add(fasthttp.HeaderVary, "Access-Control-Request-Method")
			h.Add(fasthttp.HeaderVary, "Access-Control-Request-Headers")
			method := string(ctx.Request.Header.Peek(fasthttp.HeaderAccessControlRequestMethod))
			reqHeaders := string(ctx.Request.Header.Peek(fasthttp.HeaderAccessControlRequestHeaders))
			if origin != "" && originAllowed(origin) && (method == "GET" || method == "HEAD") && headersAllowed(reqHeaders) {
				h.Set(fasthttp.HeaderAccessControlAllowOrigin, origin)
				h.Set(fasthttp.HeaderAccessControlAllowMethods, method)
				if reqHeaders != "" {
					h.Set(fasthttp.HeaderAccessControlAllowHeaders, reqHeaders)
				}
				h.Set(fasthttp.HeaderAccessControlMaxAge, "600")
			}
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			return
		}
		h.Add(fasthttp.HeaderVary, "Origin")
		if origin != "" && originAllowed(origin) && (ctx.IsGet() || ctx.IsHead()) {
			h.Set(fasthttp.HeaderAccessControlAllowOrigin, origin)
		}
		next(ctx)
	}
}

func headersAllowed(list string) bool {
	for _, h := range strings.Split(list, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if !strings.EqualFold(h, "Authorization") && !strings.EqualFold(h, "Content-Type") {
			return false
		}
	}
	return true
}
