package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
	"github.com/valyala/fasthttp"
)

// Image types of the API.
const (
	typeFull         = "full-iso"
	typeMinimal      = "minimal-iso"
	typeDisconnected = "disconnected-iso"
)

var isoFileNames = map[string]string{
	"full.iso":         typeFull,
	"minimal.iso":      typeMinimal,
	"disconnected.iso": typeDisconnected,
}

// isoRequest is a parsed ISO download request.
type isoRequest struct {
	imageID, version, arch, imageType string
	cred                              upstream.Credential
}

// handleShortISO serves /byid, /byapikey and /bytoken (§B.3).
func (s *Server) handleShortISO(route string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		end := s.metrics.start(route, string(ctx.Method()))
		req := isoRequest{version: userValue(ctx, "version"), arch: userValue(ctx, "arch")}
		var pathKey, pathToken string
		switch route {
		case routeByID:
			req.imageID = userValue(ctx, "image_id")
			if !isUUID(req.imageID) {
				ctx.Error("404 page not found", fasthttp.StatusNotFound)
				end(fasthttp.StatusNotFound, 0)
				return
			}
		case routeByAPIKey, routeByToken:
			tok := userValue(ctx, "token")
			id, err := imageIDFromJWT(tok)
			if err != nil {
				ctx.Error(err.Error(), fasthttp.StatusNotFound)
				end(fasthttp.StatusNotFound, 0)
				return
			}
			req.imageID = id
			if route == routeByAPIKey {
				pathKey = tok
			} else {
				pathToken = tok
			}
		}
		name := userValue(ctx, "filename")
		t, ok := isoFileNames[name]
		if !ok {
			ctx.Error("unrecognized file name "+name, fasthttp.StatusNotFound)
			end(fasthttp.StatusNotFound, 0)
			return
		}
		req.imageType = t
		req.cred = credential(ctx, pathKey, pathToken)
		s.serveISO(ctx, req, end)
	}
}

// handleLongISO serves the deprecated /images/{image_id}?version&arch&type (§B.2).
func (s *Server) handleLongISO(ctx *fasthttp.RequestCtx) {
	end := s.metrics.start(routeLongISO, string(ctx.Method()))
	req := isoRequest{imageID: userValue(ctx, "image_id")}
	if !isUUID(req.imageID) {
		ctx.Error("404 page not found", fasthttp.StatusNotFound)
		end(fasthttp.StatusNotFound, 0)
		return
	}
	args := ctx.QueryArgs()
	req.version = string(args.Peek("version"))
	req.arch = string(args.Peek("arch"))
	req.imageType = string(args.Peek("type"))
	if req.arch == "" {
		req.arch = "x86_64"
	}
	switch {
	case req.version == "":
		ctx.Error("'version' parameter required", fasthttp.StatusBadRequest)
		end(fasthttp.StatusBadRequest, 0)
		return
	case req.imageType == "":
		ctx.Error("'type' parameter required", fasthttp.StatusBadRequest)
		end(fasthttp.StatusBadRequest, 0)
		return
	case req.imageType != typeFull && req.imageType != typeMinimal && req.imageType != typeDisconnected:
		ctx.Error("invalid value '"+req.imageType+"' for parameter 'type'", fasthttp.StatusBadRequest)
		end(fasthttp.StatusBadRequest, 0)
		return
	}
	req.cred = credential(ctx, "", "")
	s.serveISO(ctx, req, end)
}

// serveISO is the common ISO path (§B.4): resolve the base image, fetch the
// InfraEnv's ignition, ramdisk and kernel arguments, build the plan, serve it.
func (s *Server) serveISO(ctx *fasthttp.RequestCtx, req isoRequest, end func(int, int64)) {
	base, configured, err := s.bases.Base(req.version, req.arch, req.imageType)
	if !configured {
		ctx.Error("404 page not found", fasthttp.StatusNotFound)
		end(fasthttp.StatusNotFound, 0)
		return
	}
	if err != nil {
		end(s.fail(ctx, err, ""), 0)
		return
	}
	release, ok := s.limit.acquire()
	if !ok {
		end(s.busy(ctx), 0)
		return
	}
	snap, err := upstream.FetchSnapshot(context.Background(), s.src, req.imageID, req.imageType, req.cred, req.imageType == typeMinimal, true)
	if err != nil {
		release()
		end(s.fail(ctx, err, ""), 0)
		return
	}
	if snap.Kargs != nil && req.arch == "s390x" {
		release()
		ctx.Error("kargs cannot be modified in s390x architecture ISOs", fasthttp.StatusBadRequest)
		end(fasthttp.StatusBadRequest, 0)
		return
	}
	archive, err := customize.IgnitionArchive(snap.Ignition.Data)
	if err != nil {
		release()
		end(s.fail(ctx, err, ""), 0)
		return
	}
	plan, err := customize.ISO(base.Layout, base.Digest.String(), customize.Overlay{Ignition: archive, Kargs: snap.Kargs, Ramdisk: snap.Ramdisk})
	if err != nil {
		release()
		end(s.fail(ctx, err, ""), 0)
		return
	}
	filename := req.imageID + "-discovery.iso"
	if req.imageType == typeDisconnected {
		filename = "agent-ove." + req.arch + ".iso"
	}
	s.servePlan(ctx, response{
		plan: plan, base: base.Digest, filename: filename,
		contentType: "application/octet-stream",
		modTime:     lastModified(snap.Ignition.LastModified),
		release:     release, end: end,
	})
}

// lastModified parses assisted-service's Last-Modified; like the original,
// a missing or unparsable one means now.
func lastModified(v string) time.Time {
	if t, err := http.ParseTime(v); err == nil {
		return t
	}
	return time.Now()
}

// busy answers a request that found no free slot.
func (s *Server) busy(ctx *fasthttp.RequestCtx) int {
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, retryAfter)
	ctx.Error("too many concurrent requests", fasthttp.StatusServiceUnavailable)
	return fasthttp.StatusServiceUnavailable
}
