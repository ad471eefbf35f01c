package proxy

import (
	"github.com/isoedge/isoedge/customize"
	"github.com/valyala/fasthttp"
)

// handleBootArtifact serves /boot-artifacts/{rootfs,kernel,ins-file} from
// the full ISO (§B.7). No credentials and no upstream calls.
func (s *Server) handleBootArtifact(ctx *fasthttp.RequestCtx) {
	artifact := userValue(ctx, "artifact")
	label := "/boot-artifacts/other"
	switch artifact {
	case "rootfs", "kernel", "ins-file":
		label = "/boot-artifacts/" + artifact
	}
	end := s.begin(ctx, label)
	args := ctx.QueryArgs()
	version := string(args.Peek("version"))
	arch := string(args.Peek("arch"))
	if arch == "" {
		arch = "x86_64"
	}
	if version == "" {
		httpError(ctx, "Failed to parse query parameters: 'version' parameter required", fasthttp.StatusBadRequest)
		end(fasthttp.StatusBadRequest, 0)
		return
	}
	base, configured, err := s.bases.Base(ctx, version, arch, typeFull)
	if !configured {
		httpError(ctx, "Failed to parse query parameters: version for "+version+" "+arch+", not found", fasthttp.StatusBadRequest)
		end(fasthttp.StatusBadRequest, 0)
		return
	}
	var isoPath, filename string
	switch {
	case artifact == "rootfs":
		isoPath, filename = customize.PathRootfs, "rootfs.img"
	case artifact == "kernel":
		isoPath, filename = customize.PathVmlinuz, "vmlinuz"
	case artifact == "ins-file" && arch == "s390x":
		isoPath, filename = customize.PathGenericIns, "generic.ins"
	default:
		httpError(ctx, "Failed to parse artifact: malformed download path: "+redactPath(string(ctx.Path())), fasthttp.StatusNotFound)
		end(fasthttp.StatusNotFound, 0)
		return
	}
	if err != nil {
		end(s.fail(ctx, err, ""), 0)
		return
	}
	if isoPath == customize.PathVmlinuz && arch == "s390x" {
		if _, ok := base.Layout.Files[isoPath]; !ok {
			isoPath = customize.PathKernelImg
		}
	}
	plan, err := customize.Artifact(base.Layout, base.Digest.String(), isoPath)
	if err != nil {
		httpError(ctx, "Error creating file reader stream: "+err.Error(), fasthttp.StatusInternalServerError)
		end(fasthttp.StatusInternalServerError, 0)
		return
	}
	release, ok := s.limit.acquire()
	if !ok {
		end(s.busy(ctx), 0)
		return
	}
	contentType := "application/octet-stream"
	if filename == "generic.ins" {
		contentType = "text/plain; charset=utf-8"
	}
	s.servePlan(ctx, response{
		plan: plan, base: base.Digest, filename: filename, contentType: contentType,
		modTime: base.ModTime, release: release, end: end,
	})
}
