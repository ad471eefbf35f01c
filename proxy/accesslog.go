package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// requestIDKey is the user value under which a request's id is kept.
const requestIDKey = "isoedge.request_id"

// withRequestID gives every request an id: the caller's X-Request-Id when
// it is safe to echo and log ([A-Za-z0-9._-]{1,64}), else a new one. The id
// is returned in the response and carried by every log line of the request.
func withRequestID(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		id := ctx.Request.Header.Peek("X-Request-Id")
		var sid string
		if validRequestID(id) {
			sid = string(id)
		} else {
			sid = newRequestID()
		}
		ctx.SetUserValue(requestIDKey, sid)
		ctx.Response.Header.Set("X-Request-Id", sid)
		next(ctx)
	}
}

func validRequestID(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b[:])
}

// reqLog is the server's logger with the request's id.
func (s *Server) reqLog(ctx *fasthttp.RequestCtx) *zap.Logger {
	if id, ok := ctx.UserValue(requestIDKey).(string); ok {
		return s.log.With(zap.String("request_id", id))
	}
	return s.log
}

// begin starts a request on an image or artifact route: it is counted in
// flight, and the returned end, called exactly once when the response is
// done (for streams: when the last byte is written or the client is
// gone), records its metrics and writes its access-log line. The line
// names the route pattern, never the path or query, which carry
// credentials.
func (s *Server) begin(ctx *fasthttp.RequestCtx, route string) func(code int, sent int64) {
	method := string(ctx.Method())
	done := s.metrics.start(route, method)
	log := s.reqLog(ctx)
	client := ctx.RemoteAddr().String()
	t0 := time.Now()
	return func(code int, sent int64) {
		done(code, sent)
		log.Info("request",
			zap.String("method", method),
			zap.String("route", route),
			zap.Int("status", code),
			zap.Int64("bytes", sent),
			zap.Duration("duration", time.Since(t0)),
			zap.String("client", client))
	}
}
