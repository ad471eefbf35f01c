package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/customize"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// response describes how to send a plan.
type response struct {
	plan        customize.Plan
	etag        string       // the plan's ETag; computed when empty
	base        cache.Digest // file the plan's base segments read
	filename    string       // Content-Disposition file name
	contentType string
	modTime     time.Time // Last-Modified
	release     func()    // returns the request slot; may be nil
	end         func(code int, size int64)
}

// servePlan answers a GET or HEAD with r.plan: conditional headers, a
// single Range (206/416), and the body streamed after the handler returns.
// Every path calls r.release and r.end exactly once.
func (s *Server) servePlan(ctx *fasthttp.RequestCtx, r response) {
	finish := func(code int, size int64) {
		if r.release != nil {
			r.release()
		}
		if r.end != nil {
			r.end(code, size)
		}
	}
	h := &ctx.Response.Header
	etag := r.etag
	if etag == "" {
		etag = r.plan.ETag()
	}
	h.Set(fasthttp.HeaderAcceptRanges, "bytes")
	h.Set(fasthttp.HeaderETag, etag)
	if !r.modTime.IsZero() {
		h.Set(fasthttp.HeaderLastModified, r.modTime.UTC().Format(http.TimeFormat))
	}
	if r.filename != "" {
		h.Set(fasthttp.HeaderContentDisposition, "attachment; filename="+r.filename)
	}
	h.SetContentType(r.contentType)

	if code, useRange := checkPreconditions(&ctx.Request.Header, true, etag, r.modTime); code != 0 {
		ctx.SetStatusCode(code)
		finish(code, 0)
		return
	} else if rh := ctx.Request.Header.Peek(fasthttp.HeaderRange); useRange && len(rh) > 0 {
		ranges, err := parseRange(rh, r.plan.Size)
		switch {
		case err == errNoOverlap:
			h.Set(fasthttp.HeaderContentRange, "bytes */"+strconv.FormatInt(r.plan.Size, 10))
			// The text is Go's http.ServeContent's, the original's server.
			httpError(ctx, "invalid range: failed to overlap", fasthttp.StatusRequestedRangeNotSatisfiable)
			finish(fasthttp.StatusRequestedRangeNotSatisfiable, 0)
			return
		case err == nil && len(ranges) > 1 && sumRanges(ranges) <= r.plan.Size:
			// Ranges asking for more than the whole image are ignored, as
			// Go's server does: a cheap request must not cost a large answer.
			mp, ctype, err := multipartPlan(r.plan, ranges, r.contentType)
			if err != nil {
				s.fail(ctx, err, "")
				finish(fasthttp.StatusInternalServerError, 0)
				return
			}
			r.plan = mp
			h.SetContentType(ctype)
			ctx.SetStatusCode(fasthttp.StatusPartialContent)
		case err == nil && len(ranges) == 1:
			rg := ranges[0]
			part, err := r.plan.Slice(rg.start, rg.length)
			if err != nil {
				s.fail(ctx, err, "")
				finish(fasthttp.StatusInternalServerError, 0)
				return
			}
			var buf [64]byte
			cr := append(buf[:0], "bytes "...)
			cr = strconv.AppendInt(cr, rg.start, 10)
			cr = append(cr, '-')
			cr = strconv.AppendInt(cr, rg.start+rg.length-1, 10)
			cr = append(cr, '/')
			cr = strconv.AppendInt(cr, r.plan.Size, 10)
			h.SetBytesV(fasthttp.HeaderContentRange, cr)
			r.plan = part
			ctx.SetStatusCode(fasthttp.StatusPartialContent)
		}
	}
	code := ctx.Response.StatusCode()
	if ctx.IsHead() {
		ctx.Response.SkipBody = true
		h.SetContentLength(int(r.plan.Size))
		finish(code, 0)
		return
	}
	body := &planBody{plan: r.plan, conn: ctx.Conn(), tls: ctx.IsTLS(), stall: s.cfg.StreamStallTimeout, stats: s.stats}
	var closeStream func()
	if needsBase(r.plan) {
		f, done, err := s.bases.Open(r.base)
		if err != nil {
			// A missing blob is being fetched again: 503, not 500.
			h.Del(fasthttp.HeaderContentRange)
			ctx.SetStatusCode(fasthttp.StatusOK)
			finish(s.fail(ctx, fmt.Errorf("open base image %s: %w", r.base, err), ""), 0)
			return
		}
		body.f = f
		closeStream = done
	}
	path, log := zapPath(ctx), s.reqLog(ctx) // ctx is recycled once the handler returns
	body.done = func(n int64, err error) {
		if err != nil {
			log.Debug("stream ended early", path, zap.Int64("sent", n), zap.Int64("size", r.plan.Size), errField(err))
		}
		if closeStream != nil {
			closeStream()
		}
		finish(code, n)
	}
	ctx.SetBodyStream(body, int(r.plan.Size))
}
