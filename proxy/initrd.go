package proxy

import (
	"context"

	"github.com/isoedge/isoedge/catalog"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
	"github.com/valyala/fasthttp"
)

// initrdRequest is a parsed pxe-initrd or addrsize request.
type initrdRequest struct {
	imageID, version, arch string
}

// parseInitrdRequest validates the query of pxe-initrd and addrsize
// (§B.5, §B.6) and resolves the base image. It answers errors itself and
// returns ok=false then.
func (s *Server) parseInitrdRequest(ctx *fasthttp.RequestCtx, forceArch string, end func(int, int64)) (initrdRequest, catalog.Base, bool) {
	req := initrdRequest{imageID: userValue(ctx, "image_id")}
	if !isUUID(req.imageID) {
		httpError(ctx, "404 page not found", fasthttp.StatusNotFound)
		end(fasthttp.StatusNotFound, 0)
		return req, catalog.Base{}, false
	}
	args := ctx.QueryArgs()
	req.version = string(args.Peek("version"))
	req.arch = string(args.Peek("arch"))
	if req.arch == "" {
		req.arch = "x86_64"
	}
	if forceArch != "" {
		req.arch = forceArch
	}
	if req.version == "" {
		httpError(ctx, "'version' parameter required for initrd download", fasthttp.StatusBadRequest)
		end(fasthttp.StatusBadRequest, 0)
		return req, catalog.Base{}, false
	}
	base, configured, err := s.bases.Base(ctx, req.version, req.arch, typeFull)
	if !configured {
		httpError(ctx, "version for "+req.version+" "+req.arch+", not found ", fasthttp.StatusBadRequest)
		end(fasthttp.StatusBadRequest, 0)
		return req, catalog.Base{}, false
	}
	if err != nil {
		end(s.fail(ctx, err, ""), 0)
		return req, catalog.Base{}, false
	}
	return req, base, true
}

// initrdPlan returns the PXE initrd of a request (§E.4), from the snapshot
// of the download it continues or fetched afresh.
func (s *Server) initrdPlan(ctx *fasthttp.RequestCtx, kind string, req initrdRequest, base catalog.Base) (*built, error) {
	cred := credential(ctx, "", "")
	return s.snapshot(ctx, kind, req.imageID, base.Digest, cred, func(uctx context.Context) (*built, error) {
		snap, err := upstream.FetchSnapshot(uctx, s.src, upstream.SnapshotRequest{ImageID: req.imageID, Cred: cred, Ramdisk: true})
		if err != nil {
			return nil, err
		}
		defer func() { snap.Close() }() // after ramdiskOf may take the ramdisk
		// nmstatectl goes with a static-network ramdisk: its script needs
		// it to apply nmstate YAML before NetworkManager starts.
		var extra [][]byte
		if snap.Ramdisk != nil && base.Nmstate != nil {
			extra = append(extra, base.Nmstate)
		}
		ramdisk, ramdiskFile, held, err := ramdiskOf(&snap)
		if err != nil {
			return nil, err
		}
		var holds []*heldFile
		if held != nil {
			holds = append(holds, held)
		}
		if ramdiskFile.Len == 0 {
			ramdiskFile = customize.Patch(ramdisk)
		}
		plan, err := func() (customize.Plan, error) {
			archiveSeg, archiveHeld, err := archiveOf(snap.Ignition.Data, s.cfg.DataTempDir)
			if err != nil {
				return customize.Plan{}, err
			}
			// The ignition is no longer needed: its memory goes back to
			// upstream's budget (a large archive waits on disk).
			snap.Ignition.Release()
			if archiveHeld != nil {
				holds = append(holds, archiveHeld)
			}
			return customize.PXEInitrdSegments(base.Layout, base.Digest.String(), archiveSeg, ramdiskFile, extra...)
		}()
		if err != nil {
			releaseAll(holds)
			return nil, err
		}
		b := newBuilt(plan, snap.Ignition.LastModified)
		b.held = holds
		return b, nil
	})
}

// handleInitrd serves /images/{image_id}/pxe-initrd.
func (s *Server) handleInitrd(ctx *fasthttp.RequestCtx) {
	end := s.begin(ctx, routeInitrd)
	req, base, ok := s.parseInitrdRequest(ctx, "", end)
	if !ok {
		return
	}
	b, err := s.initrdPlan(ctx, "pxe-initrd", req, base)
	if err != nil {
		end(s.fail(ctx, err, initrdErrorBody(err)), 0)
		return
	}
	release, ok := s.streamSlot(b)
	if !ok {
		end(s.busy(ctx), 0)
		return
	}
	s.servePlan(ctx, response{
		plan: b.plan, etag: b.etag, base: base.Digest, filename: req.imageID + "-initrd.img",
		contentType: "application/octet-stream", modTime: b.modTime,
		release: release, end: end,
	})
}

// handleAddrsize serves /images/{image_id}/s390x-initrd-addrsize: the
// initrd's load address from the ISO and the length of the composed initrd.
func (s *Server) handleAddrsize(ctx *fasthttp.RequestCtx) {
	end := s.begin(ctx, routeAddrsize)
	req, base, ok := s.parseInitrdRequest(ctx, "s390x", end)
	if !ok {
		return
	}
	ib, err := s.initrdPlan(ctx, "pxe-initrd", req, base)
	if err != nil {
		end(s.fail(ctx, err, initrdErrorBody(err)), 0)
		return
	}
	b, err := base.Layout.Addrsize(ib.plan.Size)
	if err != nil {
		httpError(ctx, "Failed to get initrd.addrsize: "+err.Error(), fasthttp.StatusInternalServerError)
		end(fasthttp.StatusInternalServerError, 0)
		return
	}
	release, ok := s.limit.acquire()
	if !ok {
		end(s.busy(ctx), 0)
		return
	}
	s.servePlan(ctx, response{
		plan: customize.NewPlan("", customize.Patch(b)), filename: req.imageID + "-initrd.addrsize",
		contentType: "application/octet-stream", modTime: ib.modTime,
		release: release, end: end,
	})
}

// initrdErrorBody is the text of a status passed through on the initrd
// routes. The original put the internal URL and credential here; this does
// not.
func initrdErrorBody(err error) string {
	return "error retrieving ignition content: " + err.Error()
}
