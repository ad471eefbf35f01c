package proxy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/isoedge/isoedge/catalog"
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
		end := s.begin(ctx, route)
		req := isoRequest{version: userValue(ctx, "version"), arch: userValue(ctx, "arch")}
		var pathKey, pathToken string
		switch route {
		case routeByID:
			req.imageID = userValue(ctx, "image_id")
			if !isUUID(req.imageID) {
				httpError(ctx, "404 page not found", fasthttp.StatusNotFound)
				end(fasthttp.StatusNotFound, 0)
				return
			}
		case routeByAPIKey, routeByToken:
			tok := userValue(ctx, "token")
			id, err := imageIDFromJWT(tok)
			if err == nil && !isUUID(id) {
				// The id names the InfraEnv upstream and the file name in
				// Content-Disposition: only a valid id may go there.
				err = errJWTBadID
			}
			if err != nil {
				httpError(ctx, err.Error(), fasthttp.StatusNotFound)
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
			httpError(ctx, "unrecognized file name "+name, fasthttp.StatusNotFound)
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
	end := s.begin(ctx, routeLongISO)
	req := isoRequest{imageID: userValue(ctx, "image_id")}
	if !isUUID(req.imageID) {
		httpError(ctx, "404 page not found", fasthttp.StatusNotFound)
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
		httpError(ctx, "'version' parameter required", fasthttp.StatusBadRequest)
		end(fasthttp.StatusBadRequest, 0)
		return
	case req.imageType == "":
		httpError(ctx, "'type' parameter required", fasthttp.StatusBadRequest)
		end(fasthttp.StatusBadRequest, 0)
		return
	case req.imageType != typeFull && req.imageType != typeMinimal && req.imageType != typeDisconnected:
		httpError(ctx, "invalid value '"+req.imageType+"' for parameter 'type'", fasthttp.StatusBadRequest)
		end(fasthttp.StatusBadRequest, 0)
		return
	}
	req.cred = credential(ctx, "", "")
	s.serveISO(ctx, req, end)
}

// serveISO is the common ISO path (§B.4): resolve the base image, fetch the
// InfraEnv's ignition, ramdisk and kernel arguments, build the plan, serve it.
func (s *Server) serveISO(ctx *fasthttp.RequestCtx, req isoRequest, end func(int, int64)) {
	base, configured, err := s.bases.Base(ctx, req.version, req.arch, req.imageType)
	if !configured {
		httpError(ctx, "404 page not found", fasthttp.StatusNotFound)
		end(fasthttp.StatusNotFound, 0)
		return
	}
	if err != nil {
		end(s.fail(ctx, err, ""), 0)
		return
	}
	b, err := s.snapshot(ctx, req.imageType, req.imageID, base.Digest, req.cred, func(uctx context.Context) (*built, error) {
		return s.buildISO(uctx, req, base)
	})
	if err != nil {
		if errors.Is(err, errS390xKargs) {
			httpError(ctx, err.Error(), fasthttp.StatusBadRequest)
			end(fasthttp.StatusBadRequest, 0)
			return
		}
		end(s.fail(ctx, err, ""), 0)
		return
	}
	release, ok := s.streamSlot(b)
	if !ok {
		end(s.busy(ctx), 0)
		return
	}
	filename := req.imageID + "-discovery.iso"
	if req.imageType == typeDisconnected {
		filename = "agent-ove." + req.arch + ".iso"
	}
	s.servePlan(ctx, response{
		plan: b.plan, etag: b.etag, base: base.Digest, filename: filename,
		contentType: "application/octet-stream", modTime: b.modTime,
		release: release, end: end,
	})
}

var errS390xKargs = errors.New("kargs cannot be modified in s390x architecture ISOs")

// buildISO asks assisted-service for the InfraEnv's ignition, kernel
// arguments and (minimal ISO) ramdisk, and builds the ISO's plan.
func (s *Server) buildISO(ctx context.Context, req isoRequest, base catalog.Base) (*built, error) {
	snap, err := upstream.FetchSnapshot(ctx, s.src, upstream.SnapshotRequest{
		ImageID: req.imageID, ISOType: req.imageType, Cred: req.cred, Ramdisk: req.imageType == typeMinimal, Kargs: true})
	if err != nil {
		return nil, err
	}
	defer func() { snap.Close() }() // after ramdiskOf may take the ramdisk
	if snap.Kargs != nil && req.arch == "s390x" {
		return nil, errS390xKargs
	}
	ramdisk, ramdiskFile, held, err := ramdiskOf(&snap)
	if err != nil {
		return nil, err
	}
	b, err := func() (*built, error) {
		archive, err := customize.IgnitionArchive(snap.Ignition.Data)
		if err != nil {
			return nil, err
		}
		snap.Ignition.Release() // the archive fits the ISO's small area
		plan, err := customize.ISO(base.Layout, base.Digest.String(), customize.Overlay{Ignition: archive, Kargs: snap.Kargs, Ramdisk: ramdisk, RamdiskFile: ramdiskFile})
		if err != nil {
			return nil, err
		}
		return newBuilt(plan, snap.Ignition.LastModified), nil
	}()
	if err != nil && held != nil {
		held.release()
	}
	if b != nil && held != nil {
		b.held = []*heldFile{held}
	}
	return b, err
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
	httpError(ctx, "too many concurrent requests", fasthttp.StatusServiceUnavailable)
	return fasthttp.StatusServiceUnavailable
}
