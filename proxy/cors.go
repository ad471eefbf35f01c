package proxy

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"
)

// CORS as the original configures rs/cors v1.11.1 (§B.9): origins from
// ALLOWED_DOMAINS, methods HEAD and GET, request headers Authorization and
// Content-Type, max age 600 s, no credentials.
const (
	corsMaxAge        = "600"
	corsPreflightVary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
)

// corsAllowedHeaders are the request headers a preflight may ask for, in
// the form the Fetch standard sends them: lowercase and sorted.
var corsAllowedHeaders = []string{"authorization", "content-type"}

// corsOrigins is the compiled ALLOWED_DOMAINS list. Origins are compared in
// lower case, as rs/cors does (browsers send them lowercase anyway).
type corsOrigins struct {
	all       bool        // "*" listed: every origin, answered with "*"
	exact     []string    // lowercased
	wildcards [][2]string // prefix and suffix around an origin's one "*"
}

func newCORSOrigins(list []string) corsOrigins {
	var o corsOrigins
	for _, a := range list {
		a = strings.ToLower(a)
		if a == "*" {
			return corsOrigins{all: true}
		}
		if i := strings.IndexByte(a, '*'); i >= 0 {
			o.wildcards = append(o.wildcards, [2]string{a[:i], a[i+1:]})
		} else {
			o.exact = append(o.exact, a)
		}
	}
	return o
}

func (o corsOrigins) allowed(origin string) bool {
	if o.all {
		return true
	}
	origin = strings.ToLower(origin)
	for _, a := range o.exact {
		if a == origin {
			return true
		}
	}
	for _, w := range o.wildcards {
		if len(origin) >= len(w[0])+len(w[1]) && strings.HasPrefix(origin, w[0]) && strings.HasSuffix(origin, w[1]) {
			return true
		}
	}
	return false
}

// cors applies ALLOWED_DOMAINS to image routes and boot artifacts. A
// preflight (OPTIONS with Access-Control-Request-Method) is answered here
// with 204, before readiness; every other request gets Vary: Origin and,
// from an allowed origin with GET, HEAD or OPTIONS (rs/cors always allows
// OPTIONS), Access-Control-Allow-Origin, then goes on to the routes.
func (s *Server) cors(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	origins := newCORSOrigins(s.cfg.AllowedDomains)
	allowOrigin := func(h *fasthttp.ResponseHeader, origin []byte) {
		if origins.all {
			h.Set(fasthttp.HeaderAccessControlAllowOrigin, "*")
		} else {
			h.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
		}
	}
	return func(ctx *fasthttp.RequestCtx) {
		p := ctx.Path()
		if !isImageRoute(p) && !bytes.HasPrefix(p, []byte("/boot-artifacts/")) {
			next(ctx)
			return
		}
		req, h := &ctx.Request.Header, &ctx.Response.Header
		origin := req.Peek(fasthttp.HeaderOrigin)
		method := req.Peek(fasthttp.HeaderAccessControlRequestMethod)
		if ctx.IsOptions() && len(method) > 0 {
			h.Add(fasthttp.HeaderVary, corsPreflightVary)
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			reqHeaders := req.PeekAll(fasthttp.HeaderAccessControlRequestHeaders)
			if len(origin) == 0 || !origins.allowed(string(origin)) || !corsMethodAllowed(method) || !corsHeadersAllowed(reqHeaders) {
				return
			}
			allowOrigin(h, origin)
			h.SetBytesV(fasthttp.HeaderAccessControlAllowMethods, method)
			if len(reqHeaders) > 0 && len(reqHeaders[0]) > 0 {
				for _, v := range reqHeaders {
					h.AddBytesV(fasthttp.HeaderAccessControlAllowHeaders, v)
				}
			}
			h.Set(fasthttp.HeaderAccessControlMaxAge, corsMaxAge)
			return
		}
		h.Add(fasthttp.HeaderVary, "Origin")
		if len(origin) > 0 && origins.allowed(string(origin)) && corsMethodAllowed(ctx.Method()) {
			allowOrigin(h, origin)
		}
		next(ctx)
	}
}

// corsMethodAllowed: GET and HEAD as configured, OPTIONS always; compared
// exactly, as rs/cors does.
func corsMethodAllowed(m []byte) bool {
	switch string(m) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions:
		return true
	}
	return false
}

// Bounds rs/cors applies to Access-Control-Request-Headers: optional
// whitespace around a name, and empty list elements.
const (
	corsMaxOWS          = 1
	corsMaxEmptyEntries = 16
)

// corsHeadersAllowed reports whether the Access-Control-Request-Headers
// values list only allowed headers, lowercase, sorted and without
// duplicates, the form browsers send; rs/cors v1.11 refuses any other.
// Absent or empty is allowed.
func corsHeadersAllowed(values [][]byte) bool {
	last, empty := -1, 0
	for _, v := range values {
		for part := range strings.SplitSeq(string(v), ",") {
			name, ok := trimOWS(part, corsMaxOWS)
			if !ok {
				return false
			}
			if name == "" {
				if empty++; empty > corsMaxEmptyEntries {
					return false
				}
				continue
			}
			pos := -1
			for i, a := range corsAllowedHeaders {
				if a == name {
					pos = i
				}
			}
			if pos <= last {
				return false // not allowed, out of order, or repeated
			}
			last = pos
		}
	}
	return true
}

// trimOWS trims spaces and tabs from the end of s, then from its start,
// refusing more than n at either end, as rs/cors does (which lets one more
// go when that empties the string).
func trimOWS(s string, n int) (string, bool) {
	r := len(s) - len(strings.TrimRight(s, " \t"))
	if r > n && !(r == len(s) && r == n+1) {
		return s, false
	}
	s = s[:len(s)-r]
	l := len(s) - len(strings.TrimLeft(s, " \t"))
	if l > n && !(l == len(s) && l == n+1) {
		return s, false
	}
	return s[l:], true
}
