package proxy

import (
	"errors"

	"github.com/isoedge/isoedge/catalog"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
	"github.com/valyala/fasthttp"
)

// statusOf maps an error to the HTTP status the original answers with
// (§B.14), and to the text the client may see. Texts never hold a URL or a
// credential.
func statusOf(err error) (int, string) {
	var se *upstream.StatusError
	var ge *upstream.GatewayError
	switch {
	case errors.As(err, &se):
		return se.Code, ""
	case errors.As(err, &ge):
		return fasthttp.StatusBadGateway, ge.Reason()
	case errors.Is(err, upstream.ErrUnavailable):
		return fasthttp.StatusBadGateway, "assisted-service is unavailable"
	case errors.Is(err, upstream.ErrBadResponse):
		return fasthttp.StatusInternalServerError, "unexpected response from assisted-service"
	case errors.Is(err, upstream.ErrBusy):
		return fasthttp.StatusServiceUnavailable, "too many answers from assisted-service held at once"
	case errors.Is(err, errUpstreamBusy):
		return fasthttp.StatusServiceUnavailable, "too many requests waiting on assisted-service"
	case errors.Is(err, catalog.ErrNotReady):
		return fasthttp.StatusServiceUnavailable, "image is not ready yet"
	case errors.Is(err, customize.ErrBadKarg):
		return fasthttp.StatusBadRequest, err.Error()
	case errors.Is(err, customize.ErrTooLarge), errors.Is(err, customize.ErrNoEmbedArea), errors.Is(err, customize.ErrNoFile):
		return fasthttp.StatusInternalServerError, err.Error()
	}
	return fasthttp.StatusInternalServerError, "internal error"
}

// fail answers with err's status. passthroughBody is the body for statuses
// passed through from assisted-service (the original sends none for ISOs).
func (s *Server) fail(ctx *fasthttp.RequestCtx, err error, passthroughBody string) int {
	code, msg := statusOf(err)
	if code == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, retryAfter)
	}
	var se *upstream.StatusError
	if errors.As(err, &se) {
		msg = passthroughBody
	}
	if code >= 500 {
		s.reqLog(ctx).Warn("request failed", zapPath(ctx), errField(err))
	} else {
		s.reqLog(ctx).Debug("request refused", zapPath(ctx), errField(err))
	}
	if msg == "" {
		ctx.SetStatusCode(code)
		return code
	}
	httpError(ctx, msg, code)
	return code
}

// httpError answers with a plain-text error body as Go's http.Error does
// (text/plain, nosniff, message and newline). Unlike fasthttp's ctx.Error
// it keeps headers already set (CORS, Retry-After, Content-Range).
func httpError(ctx *fasthttp.RequestCtx, msg string, code int) {
	ctx.SetStatusCode(code)
	ctx.Response.Header.Set(fasthttp.HeaderContentType, "text/plain; charset=utf-8")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.Response.Header.Del(fasthttp.HeaderContentDisposition)
	ctx.Response.Header.Del(fasthttp.HeaderETag)
	ctx.Response.Header.Del(fasthttp.HeaderLastModified)
	ctx.SetBodyString(msg + "\n")
}
