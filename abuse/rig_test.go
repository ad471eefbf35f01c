//go:build abuse

package abuse

import (
	"bytes"
	"testing"
	"time"

	"github.com/isoedge/isoedge/internal/fixture"
)

// envID is the InfraEnv most tests download.
const envID = "0a0b0c0d-0000-4000-8000-0000000000a1"

// rig is the usual setup: one small fixture ISO served by a mirror on
// 127.0.0.1 as OpenShift 4.17 x86_64, a hostile assisted-service, and the
// binary configured for both (not started).
type rig struct {
	base   *baseISO
	mirror *mirror
	as     *assisted
	svc    *service
	img    osImage
}

// newRig builds the usual setup; extra, if not nil, may put more files on
// the mirror and returns images appended to OS_IMAGES; env overrides the rest.
func newRig(t testing.TB, opt fixture.Options, env map[string]string, extra func(m *mirror, base *baseISO) []osImage) *rig {
	t.Helper()
	r := &rig{base: buildBase(t, opt), mirror: newMirror(t, "127.0.0.1"), as: newAssisted(t)}
	r.mirror.put("/rhcos-417.iso", r.base.data, `"rhcos-417-a"`)
	r.img = image("4.17", r.mirror.url("/rhcos-417.iso"))
	images := []osImage{r.img}
	if extra != nil {
		images = append(images, extra(r.mirror, r.base)...)
	}
	e := map[string]string{
		"OS_IMAGES":             osImagesJSON(t, images...),
		"ASSISTED_SERVICE_HOST": r.as.hostPort(),
	}
	for k, v := range env {
		e[k] = v
	}
	r.svc = newService(t, e)
	return r
}

// startReady starts the binary and waits until the rig's image is ready.
func (r *rig) startReady(t testing.TB) {
	t.Helper()
	r.svc.start()
	r.svc.waitReady(90*time.Second, r.img)
}

// isoPath is the /byid path of the rig's full ISO for envID.
func isoPath(typ string) string { return "/byid/" + envID + "/4.17/x86_64/" + typ }

// Paths inside a live ISO.
const (
	pathKernel  = "images/pxeboot/vmlinuz"
	pathRootfs  = "images/pxeboot/rootfs.img"
	pathInitrd  = "images/pxeboot/initrd.img"
	pathIgnImg  = "images/ignition.img"
	pathGrubCfg = "EFI/redhat/grub.cfg"
	pathIsoCfg  = "isolinux/isolinux.cfg"
)

// checkKernel fetches the kernel boot artifact and compares it with want.
func checkKernel(t testing.TB, s *service, version string, want []byte) {
	t.Helper()
	r := s.mustGet("/boot-artifacts/kernel?version="+version+"&arch=x86_64", nil, 200)
	if !bytes.Equal(r.body, want) {
		t.Fatalf("kernel of %s: %d bytes served differ from the mirror's image (%d bytes)", version, len(r.body), len(want))
	}
}

// checkRootfs fetches the rootfs boot artifact and compares it with want.
func checkRootfs(t testing.TB, s *service, version string, want []byte) {
	t.Helper()
	r := s.mustGet("/boot-artifacts/rootfs?version="+version+"&arch=x86_64", nil, 200)
	if !bytes.Equal(r.body, want) {
		t.Fatalf("rootfs of %s: %d bytes served differ from the mirror's image (%d bytes) at byte %d", version, len(r.body), len(want), firstDiff(r.body, want))
	}
}

// firstDiff is the first index where a and b differ (or the shorter length).
func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
