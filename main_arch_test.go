package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
)

// The multi-architecture end-to-end test: one isoedge serving fixture ISOs
// for x86_64, aarch64, ppc64le and s390x (twice: a vmlinuz and an older
// kernel.img layout) plus an x86_64 disconnected ISO, with minimal ISO
// templates derived at startup.

const (
	archOCP       = "4.17"
	archRHCOS     = "417.94.202501010000-0"
	archZKOCP     = "4.16" // s390x image whose kernel is images/pxeboot/kernel.img
	archZKRHCOS   = "416.94.202406010000-0"
	archBaseURL   = "https://images.example.com/api/assisted-images"
	archS390xKarg = "kargs cannot be modified in s390x architecture ISOs"
)

// archImage is one configured fixture ISO.
type archImage struct {
	name       string // subtest name
	arch       string
	ocp, rhcos string
	iso        string
	isoBytes   []byte
	man        fixture.Manifest
	ignArea    span // the ignition embed area, as ISO byte offsets
	kargAreas  []span
	kernelPath string // ISO path of the kernel
}

func (im *archImage) byID(id, file string) string {
	return "/byid/" + id + "/" + im.ocp + "/" + im.arch + "/" + file
}

func (im *archImage) file(t *testing.T, p string) []byte {
	t.Helper()
	b, ok := im.man.Files[p]
	if !ok {
		t.Fatalf("%s: no %s in the fixture manifest", im.name, p)
	}
	return b
}

type archSuite struct {
	fake   *fakeAS
	in     *instance
	images []*archImage // x86_64, aarch64, ppc64le, s390x, s390x (kernel.img)
	disc   *archImage   // x86_64 disconnected-iso
	seq    int
}

func (s *archSuite) image(arch string) *archImage {
	for _, im := range s.images {
		if im.arch == arch {
			return im
		}
	}
	panic("no image for " + arch)
}

// newID registers a fresh InfraEnv with the fake and returns its id.
func (s *archSuite) newID(mod func(*infraEnv)) string {
	s.seq++
	id := fmt.Sprintf("a7c0ffee-0000-4000-8000-%012x", s.seq)
	ie := &infraEnv{ignition: ignitionFor(id), lastModified: fakeLastMod}
	if mod != nil {
		mod(ie)
	}
	s.fake.set(id, ie)
	return id
}

// archIgnition is what archFake answers for an ignition request with
// discovery_iso_type typ ("" for PXE, which gets the InfraEnv's own ignition).
func archIgnition(id, typ string) []byte {
	if typ == "" {
		return ignitionFor(id)
	}
	return ignitionFor(id + "." + typ)
}

// newArchFake is the helpers' fake assisted-service, except that an ignition
// request carrying discovery_iso_type gets a config specific to that type
// (archIgnition), so tests can tell which ISO type's ignition was embedded.
func newArchFake(t *testing.T) *fakeAS {
	t.Helper()
	f := &fakeAS{envs: map[string]*infraEnv{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		typ := r.URL.Query().Get("discovery_iso_type")
		rest, isEnv := strings.CutPrefix(r.URL.Path, infraEnvPrefix)
		id, suffix, _ := strings.Cut(rest, "/")
		f.mu.Lock()
		e := f.envs[id]
		f.mu.Unlock()
		if !isEnv || suffix != "downloads/files" || typ == "" || e == nil || e.ignStatus != 0 || e.delay != 0 || r.Method != http.MethodGet {
			f.serve(w, r)
			return
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, recordedReq{ID: id, Kind: "ignition", Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
		f.mu.Unlock()
		if r.URL.Query().Get("file_name") != "discovery.ign" {
			http.Error(w, "bad file_name", http.StatusBadRequest)
			return
		}
		ign := archIgnition(id, typ)
		if e.lastModified != "" {
			w.Header().Set("Last-Modified", e.lastModified)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(ign)))
		_, _ = w.Write(ign)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// archHealth is the part of /health this test reads.
type archHealth struct {
	Images []struct {
		OpenshiftVersion string `json:"openshift_version"`
		Version          string `json:"version"`
		Arch             string `json:"cpu_architecture"`
		Type             string `json:"type"`
		State            string `json:"state"`
		Error            string `json:"error"`
		Derived          string `json:"derived"`
	} `json:"images"`
}

func newArchSuite(t *testing.T) *archSuite {
	t.Helper()
	dir := t.TempDir()
	s := &archSuite{fake: newArchFake(t)}
	add := func(name, arch, ocp, rhcos string, opt fixture.Options) *archImage {
		opt.Arch = arch
		iso, man := fixture.Build(t, dir, opt)
		im := &archImage{name: name, arch: arch, ocp: ocp, rhcos: rhcos, iso: iso, man: man, kernelPath: "images/pxeboot/vmlinuz"}
		if opt.KernelName == "kernel.img" {
			im.kernelPath = "images/pxeboot/kernel.img"
		}
		b, err := os.ReadFile(iso)
		if err != nil {
			t.Fatal(err)
		}
		im.isoBytes = b
		off, _ := fixture.ISOOffset(t, iso, "/"+man.IgnitionFile)
		im.ignArea = span{name: "ignition", off: off + man.IgnitionOffset, n: man.IgnitionLength}
		for _, p := range man.KargsFiles {
			im.kargAreas = append(im.kargAreas, kargArea(t, iso, b, p))
		}
		return im
	}
	s.images = []*archImage{
		add("x86_64", "x86_64", archOCP, archRHCOS, fixture.Options{}),
		add("aarch64", "aarch64", archOCP, archRHCOS, fixture.Options{}),
		add("ppc64le", "ppc64le", archOCP, archRHCOS, fixture.Options{}),
		add("s390x", "s390x", archOCP, archRHCOS, fixture.Options{}),
		add("s390x-kernel.img", "s390x", archZKOCP, archZKRHCOS, fixture.Options{KernelName: "kernel.img", KernelSize: 80 << 10}),
	}
	// A distinct x86_64 image (other kernel size) as the disconnected ISO.
	s.disc = add("x86_64-disconnected", "x86_64", archOCP, archRHCOS, fixture.Options{KernelSize: 96 << 10})

	var list []config.OSImage
	for _, im := range s.images {
		list = append(list, config.OSImage{OpenshiftVersion: im.ocp, CPUArchitecture: im.arch, URL: "file://" + im.iso, Version: im.rhcos})
	}
	list = append(list, config.OSImage{OpenshiftVersion: archOCP, CPUArchitecture: "x86_64", URL: "file://" + s.disc.iso, Version: archRHCOS, Type: config.TypeDisconnectedISO})

	env := baseEnv(t.TempDir())
	env["ASSISTED_SERVICE_HOST"] = s.fake.hostPort()
	env["ASSISTED_SERVICE_TIMEOUT"] = "5s"
	env["IMAGE_SERVICE_BASE_URL"] = archBaseURL
	env["OS_IMAGES"] = osImagesJSON(t, list...)
	s.in = startInstance(t, env)
	s.in.waitReady(t, 120*time.Second)

	// Wait for every minimal ISO template.
	deadline := time.Now().Add(120 * time.Second)
	for {
		_, body := s.in.get(t, "/health", nil, http.StatusOK)
		var h archHealth
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatalf("/health: %v: %s", err, body)
		}
		if len(h.Images) != len(list) {
			t.Fatalf("/health lists %d images, want %d: %s", len(h.Images), len(list), body)
		}
		done := true
		for _, im := range h.Images {
			if im.State != "ready" {
				t.Fatalf("image %s/%s/%s not ready: %s", im.OpenshiftVersion, im.Arch, im.Type, body)
			}
			if im.Arch == "s390x" || im.Type == config.TypeDisconnectedISO {
				continue
			}
			switch im.Derived {
			case "ok":
			case "":
				done = false
			default:
				t.Fatalf("minimal template for %s/%s failed: %q", im.OpenshiftVersion, im.Arch, im.Derived)
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("minimal templates not derived after 120s: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func TestArchEndToEnd(t *testing.T) {
	t.Parallel()
	s := newArchSuite(t)
	t.Run("FullISO", s.testFullISO)
	t.Run("KernelArgs", s.testKernelArgs)
	t.Run("MinimalISO", s.testMinimalISO)
	t.Run("PXEInitrd", s.testPXEInitrd)
	t.Run("BootArtifacts", s.testBootArtifacts)
	t.Run("DisconnectedISO", s.testDisconnected)
	t.Run("VersionLookup", s.testVersionLookup)
}

// archIgnitionOf reads config.ign back from the ignition embed area of a
// downloaded ISO (extracted with xorriso; for s390x out of images/cdboot.img
// at the igninfo offset), checks that the rest of the area is zero and
// returns it.
func archIgnitionOf(t *testing.T, im *archImage, body []byte) []byte {
	t.Helper()
	p := writeTemp(t, "download.iso", body)
	f := fixture.ExtractFile(t, p, "/"+im.man.IgnitionFile)
	if int64(len(f)) < im.man.IgnitionOffset+im.man.IgnitionLength {
		t.Fatalf("%s is %d bytes, too short for the embed area", im.man.IgnitionFile, len(f))
	}
	area := f[im.man.IgnitionOffset : im.man.IgnitionOffset+im.man.IgnitionLength]
	if !bytes.HasPrefix(area, []byte{0x1f, 0x8b}) {
		t.Fatalf("embed area does not start with a gzip member: % x", area[:16])
	}
	end := gzipMemberEnd(t, area)
	if len(bytes.Trim(area[end:], "\x00")) != 0 {
		t.Errorf("embed area after the %d-byte archive is not all zero", end)
	}
	files := fixture.CpioFiles(t, area)
	cfg, ok := files["config.ign"]
	if !ok {
		t.Fatalf("no config.ign in the embedded archive; files %v", keys(files))
	}
	return cfg
}

// checkIgnRequest checks that the fake was asked for id's ignition with the
// given discovery_iso_type.
func (s *archSuite) checkIgnRequest(t *testing.T, id, typ string) {
	t.Helper()
	n := 0
	for _, r := range s.fake.requests(id) {
		if r.Kind != "ignition" {
			continue
		}
		n++
		if got := r.Query.Get("discovery_iso_type"); got != typ {
			t.Errorf("ignition request with discovery_iso_type=%q, want %q", got, typ)
		}
		if r.Query.Get("file_name") != "discovery.ign" {
			t.Errorf("ignition request query %v lacks file_name=discovery.ign", r.Query)
		}
	}
	if n == 0 {
		t.Errorf("the fake got no ignition request for %s", id)
	}
}

// 1. full.iso per architecture.
func (s *archSuite) testFullISO(t *testing.T) {
	for _, im := range s.images {
		id := s.newID(nil)
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			resp, body := s.in.get(t, im.byID(id, "full.iso"), nil, http.StatusOK)
			if len(body) != len(im.isoBytes) {
				t.Fatalf("full.iso is %d bytes, base ISO %d", len(body), len(im.isoBytes))
			}
			if got, want := archIgnitionOf(t, im, body), archIgnition(id, "full-iso"); !bytes.Equal(got, want) {
				t.Errorf("embedded config.ign %.120q, want the fake's full-iso ignition %.120q", got, want)
			}
			// Everything outside the ignition area is the base ISO (no
			// kernel arguments were configured).
			assertSameOutside(t, body, im.isoBytes, im.ignArea)
			a := im.ignArea
			rng := fmt.Sprintf("bytes=%d-%d", a.off-5, a.off+40)
			if _, part := s.in.get(t, im.byID(id, "full.iso"), map[string]string{"Range": rng}, http.StatusPartialContent); !bytes.Equal(part, body[a.off-5:a.off+41]) {
				t.Errorf("full.iso %s differs from the slice of the full download", rng)
			}
			if got, want := resp.Header.Get("Content-Disposition"), "attachment; filename="+id+"-discovery.iso"; got != want {
				t.Errorf("Content-Disposition %q, want %q", got, want)
			}
			s.checkIgnRequest(t, id, "full-iso")
		})
	}
}

// 2. kernel arguments per architecture.
func (s *archSuite) testKernelArgs(t *testing.T) {
	const kargs = `[{"operation":"append","value":"foo=bar"},{"operation":"append","value":"ip=dhcp"}]`
	for _, im := range s.images {
		if im.arch == "s390x" {
			continue
		}
		id := s.newID(func(ie *infraEnv) { ie.kargs = ptr(kargs) })
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			_, body := s.in.get(t, im.byID(id, "full.iso"), nil, http.StatusOK)
			p := writeTemp(t, "kargs.iso", body)
			var want []string
			switch im.arch {
			case "x86_64":
				want = []string{"EFI/redhat/grub.cfg", "isolinux/isolinux.cfg"}
			case "aarch64":
				want = []string{"EFI/redhat/grub.cfg"}
			case "ppc64le":
				want = []string{"boot/grub/grub.cfg"}
			}
			if strings.Join(im.man.KargsFiles, ",") != strings.Join(want, ",") {
				t.Fatalf("fixture kargs files %v, want %v", im.man.KargsFiles, want)
			}
			for _, cfgPath := range want {
				prefix := "\tlinux "
				if strings.HasPrefix(cfgPath, "isolinux/") {
					prefix = "  append "
				}
				base := im.file(t, cfgPath)
				got := fixture.ExtractFile(t, p, "/"+cfgPath)
				if len(got) != len(base) {
					t.Errorf("%s: %d bytes, base has %d", cfgPath, len(got), len(base))
				}
				line, next := bootLine(t, got, prefix)
				baseLine, _ := bootLine(t, base, prefix)
				if line != baseLine+" foo=bar ip=dhcp" {
					t.Errorf("%s: kernel line %q, want %q", cfgPath, line, baseLine+" foo=bar ip=dhcp")
				}
				if !strings.HasSuffix(next, markerTail) || strings.Trim(strings.TrimSuffix(next, " COREOS_KARG_EMBED_AREA"), "#") != "" {
					t.Errorf("%s: line after the kernel line %.60q…, want '#'s and the marker", cfgPath, next)
				}
			}
			assertSameOutside(t, body, im.isoBytes, append([]span{im.ignArea}, im.kargAreas...)...)
			if got := archIgnitionOf(t, im, body); !bytes.Equal(got, archIgnition(id, "full-iso")) {
				t.Error("wrong ignition in an ISO with kernel arguments")
			}
		})
	}
	for _, im := range s.images {
		if im.arch != "s390x" {
			continue
		}
		withKargs := s.newID(func(ie *infraEnv) { ie.kargs = ptr(kargs) })
		empty := s.newID(func(ie *infraEnv) { ie.kargs = ptr(`[]`) })
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			resp, body := s.in.do(t, "GET", im.byID(withKargs, "full.iso"), nil)
			if resp.StatusCode != http.StatusBadRequest || strings.TrimSpace(string(body)) != archS390xKarg {
				t.Errorf("s390x with kernel arguments: status %d body %q; want 400 %q", resp.StatusCode, body, archS390xKarg)
			}
			// Deliberate fix of AIS quirk Z.11: an empty list is no kargs.
			resp, body = s.in.do(t, "GET", im.byID(empty, "full.iso"), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf(`s390x with kernel_arguments "[]": status %d (body %.200q), want 200`, resp.StatusCode, body)
			}
			assertSameOutside(t, body, im.isoBytes, im.ignArea)
			if got := archIgnitionOf(t, im, body); !bytes.Equal(got, archIgnition(empty, "full-iso")) {
				t.Error("wrong ignition")
			}
		})
	}
}

// elToritoEntries returns the boot platforms (e.g. "BIOS", "UEFI") of the
// El Torito entries of iso as reported by xorriso.
func elToritoEntries(t *testing.T, iso string) []string {
	t.Helper()
	out, err := exec.Command("xorriso", "-indev", iso, "-report_el_torito", "plain").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso -report_el_torito: %v\n%s", err, out)
	}
	var plats []string
	for _, m := range elToritoRE.FindAllStringSubmatch(string(out), -1) {
		plats = append(plats, m[1])
	}
	return plats
}

// Lines like "El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4        34".
var elToritoRE = regexp.MustCompile(`(?m)^El Torito boot img\s*:\s*\d+\s+(\S+)`)

type kargsDoc struct {
	Default string `json:"default"`
	Files   []struct {
		End    string `json:"end"`
		Offset int64  `json:"offset"`
		Pad    string `json:"pad"`
		Path   string `json:"path"`
	} `json:"files"`
	Size int64 `json:"size"`
}

// 3. minimal.iso per architecture.
func (s *archSuite) testMinimalISO(t *testing.T) {
	nm := []byte("[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\n[ipv4]\nmethod=auto\n")
	ramdisk := fixture.CpioArchive(t, map[string][]byte{"etc/assisted/network/host0/eth0.nmconnection": nm})
	for _, im := range s.images {
		if im.arch == "s390x" {
			continue
		}
		plain := s.newID(nil)
		custom := s.newID(func(ie *infraEnv) {
			ie.ramdisk = ramdisk
			ie.kargs = ptr(`[{"operation":"append","value":"foo=bar"}]`)
		})
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			rootfsURL := archBaseURL + "/boot-artifacts/rootfs?arch=" + im.arch + "&version=" + im.rhcos
			rootfsKarg := `coreos.live.rootfs_url="` + rootfsURL + `"`
			cfgs := []string{"EFI/redhat/grub.cfg"}
			switch im.arch {
			case "x86_64":
				cfgs = append(cfgs, "isolinux/isolinux.cfg")
			case "ppc64le":
				cfgs = []string{"boot/grub/grub.cfg"}
			}
			prefixOf := func(p string) string {
				if strings.HasPrefix(p, "isolinux/") {
					return "  append "
				}
				return "\tlinux "
			}

			resp, body := s.in.get(t, im.byID(plain, "minimal.iso"), nil, http.StatusOK)
			if got, want := resp.Header.Get("Content-Disposition"), "attachment; filename="+plain+"-discovery.iso"; got != want {
				t.Errorf("Content-Disposition %q, want %q", got, want)
			}
			p := writeTemp(t, "minimal.iso", body)

			// El Torito entries.
			want := map[string][]string{"x86_64": {"BIOS", "UEFI"}, "aarch64": {"UEFI"}, "ppc64le": nil}[im.arch]
			if got := elToritoEntries(t, p); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("El Torito entries %v, want %v", got, want)
			}

			// Boot configs: rootfs_url on the kernel line, no coreos.liveiso.
			extracted := map[string][]byte{}
			for _, c := range cfgs {
				b := fixture.ExtractFile(t, p, "/"+c)
				extracted[c] = b
				line, _ := bootLine(t, b, prefixOf(c))
				if !strings.HasSuffix(line, " "+rootfsKarg) {
					t.Errorf("%s: kernel line %q does not end with %s", c, line, rootfsKarg)
				}
				if strings.Contains(string(b), "coreos.liveiso=") {
					t.Errorf("%s still contains coreos.liveiso=:\n%s", c, b)
				}
			}

			// kargs.json matches the edited configs.
			var kj kargsDoc
			if err := json.Unmarshal(fixture.ExtractFile(t, p, "/coreos/kargs.json"), &kj); err != nil {
				t.Fatalf("kargs.json: %v", err)
			}
			if !strings.HasSuffix(kj.Default, " "+rootfsKarg) || strings.Contains(kj.Default, "coreos.liveiso=") {
				t.Errorf("kargs.json default %q", kj.Default)
			}
			if kj.Size != int64(len(kj.Default))+fixture.KargsEmbedPad {
				t.Errorf("kargs.json size %d, want len(default)+1024 = %d", kj.Size, len(kj.Default)+fixture.KargsEmbedPad)
			}
			if len(kj.Files) != len(cfgs) {
				t.Errorf("kargs.json lists %d files, want %d", len(kj.Files), len(cfgs))
			}
			for _, f := range kj.Files {
				b, ok := extracted[f.Path]
				if !ok {
					t.Errorf("kargs.json lists unexpected file %q", f.Path)
					continue
				}
				if f.Offset < 0 || f.Offset+int64(len(kj.Default)) > int64(len(b)) {
					t.Errorf("%s: kargs.json offset %d out of range", f.Path, f.Offset)
					continue
				}
				if got := string(b[f.Offset : f.Offset+int64(len(kj.Default))]); got != kj.Default {
					t.Errorf("%s: text at kargs.json offset %d is %q, want the default %q", f.Path, f.Offset, got, kj.Default)
				}
			}

			// No rootfs; level-1 name for coreos-installer.
			out, err := exec.Command("xorriso", "-indev", p, "-find", "/images/pxeboot", "-name", "rootfs.img").CombinedOutput()
			if err != nil {
				t.Fatalf("xorriso -find: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "rootfs.img'") {
				t.Errorf("minimal ISO contains images/pxeboot/rootfs.img:\n%s", out)
			}
			out, err = exec.Command("isoinfo", "-l", "-i", p).CombinedOutput()
			if err != nil {
				t.Fatalf("isoinfo -l: %v\n%s", err, out)
			}
			if !isoinfoListsIn(string(out), "/COREOS/", "KARGS.JSO;1") {
				t.Errorf("isoinfo -l does not list KARGS.JSO;1 in /COREOS:\n%s", out)
			}

			// The minimal-iso ignition; no ramdisk → custom image all zero.
			ign := fixture.ExtractFile(t, p, "/images/ignition.img")
			if got := fixture.CpioFiles(t, ign)["config.ign"]; !bytes.Equal(got, archIgnition(plain, "minimal-iso")) {
				t.Errorf("config.ign %.120q, want the fake's minimal-iso ignition", got)
			}
			s.checkIgnRequest(t, plain, "minimal-iso")
			ci := fixture.ExtractFile(t, p, "/images/assisted_installer_custom.img")
			if len(ci) != 1<<20 || len(bytes.Trim(ci, "\x00")) != 0 {
				t.Errorf("assisted_installer_custom.img without a ramdisk: %d bytes, not all zero", len(ci))
			}

			// With a ramdisk and kernel arguments.
			_, body2 := s.in.get(t, im.byID(custom, "minimal.iso"), nil, http.StatusOK)
			if len(body2) != len(body) {
				t.Errorf("minimal ISOs differ in size: %d vs %d", len(body2), len(body))
			}
			p2 := writeTemp(t, "minimal-custom.iso", body2)
			ci = fixture.ExtractFile(t, p2, "/images/assisted_installer_custom.img")
			if len(ci) != 1<<20 {
				t.Errorf("assisted_installer_custom.img is %d bytes, want 1 MiB", len(ci))
			}
			if !bytes.HasPrefix(ci, ramdisk) {
				t.Errorf("assisted_installer_custom.img does not start with the ramdisk")
			} else if len(bytes.Trim(ci[len(ramdisk):], "\x00")) != 0 {
				t.Errorf("assisted_installer_custom.img is not zero after the ramdisk")
			}
			ign = fixture.ExtractFile(t, p2, "/images/ignition.img")
			if got := fixture.CpioFiles(t, ign)["config.ign"]; !bytes.Equal(got, archIgnition(custom, "minimal-iso")) {
				t.Errorf("config.ign %.120q, want the fake's minimal-iso ignition", got)
			}
			s.checkIgnRequest(t, custom, "minimal-iso")
			var sawRam bool
			for _, r := range s.fake.requests(custom) {
				sawRam = sawRam || r.Kind == "minimal-initrd"
			}
			if !sawRam {
				t.Error("the fake got no minimal-initrd request")
			}
			for _, c := range cfgs {
				b := fixture.ExtractFile(t, p2, "/"+c)
				line, _ := bootLine(t, b, prefixOf(c))
				if !strings.HasSuffix(line, " "+rootfsKarg+" foo=bar") {
					t.Errorf("%s: kernel line %q, want it to end with %s foo=bar", c, line, rootfsKarg)
				}
			}

			// Ranges and HEAD over the overlays agree with the full body.
			ciOff, _ := fixture.ISOOffset(t, p2, "/images/assisted_installer_custom.img")
			ignOff, _ := fixture.ISOOffset(t, p2, "/images/ignition.img")
			for _, r := range [][2]int64{
				{ciOff - 10, ciOff + int64(len(ramdisk)) + 10},
				{ignOff - 3, ignOff + 100},
			} {
				rng := fmt.Sprintf("bytes=%d-%d", r[0], r[1])
				_, part := s.in.get(t, im.byID(custom, "minimal.iso"), map[string]string{"Range": rng}, http.StatusPartialContent)
				if !bytes.Equal(part, body2[r[0]:r[1]+1]) {
					t.Errorf("minimal.iso %s differs from the slice of the full download", rng)
				}
			}
			if resp, _ := s.in.do(t, "HEAD", im.byID(custom, "minimal.iso"), nil); resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(body2)) {
				t.Errorf("HEAD minimal.iso: status %d, Content-Length %d; want 200, %d", resp.StatusCode, resp.ContentLength, len(body2))
			}
		})
	}
	s390xID := s.newID(nil)
	t.Run("s390x", func(t *testing.T) {
		t.Parallel()
		for _, im := range s.images {
			if im.arch != "s390x" {
				continue
			}
			id := s390xID
			if resp, body := s.in.do(t, "GET", im.byID(id, "minimal.iso"), nil); resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("%s minimal.iso: status %d (body %.200q), want 500", im.name, resp.StatusCode, body)
			}
		}
	})
}

// isoinfoListsIn reports whether `isoinfo -l` output lists name in dir.
func isoinfoListsIn(out, dir, name string) bool {
	in := false
	for _, l := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(l, "Directory listing of "); ok {
			in = strings.TrimSpace(d) == dir
			continue
		}
		if in && strings.HasSuffix(strings.TrimSpace(l), " "+name) {
			return true
		}
	}
	return false
}

// 4. pxe-initrd per architecture and the s390x addrsize.
func (s *archSuite) testPXEInitrd(t *testing.T) {
	nm := []byte("[connection]\nid=eth1\ntype=ethernet\n")
	ramdisk := fixture.CpioArchive(t, map[string][]byte{"etc/assisted/network/host0/eth1.nmconnection": nm})
	for _, im := range s.images {
		id := s.newID(func(ie *infraEnv) { ie.ramdisk = ramdisk })
		plainID := s.newID(nil)
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			base := im.file(t, "images/pxeboot/initrd.img")
			for _, c := range []struct {
				id      string
				ramdisk []byte
			}{{id, ramdisk}, {plainID, nil}} {
				q := "?version=" + im.ocp + "&arch=" + im.arch
				resp, body := s.in.get(t, "/images/"+c.id+"/pxe-initrd"+q, nil, http.StatusOK)
				if !bytes.HasPrefix(body, base) || !bytes.HasSuffix(body, c.ramdisk) || len(body) <= len(base)+len(c.ramdisk) {
					t.Fatalf("pxe-initrd (%d bytes) is not base initrd (%d) ‖ archive ‖ ramdisk (%d)", len(body), len(base), len(c.ramdisk))
				}
				archive := body[len(base) : len(body)-len(c.ramdisk)]
				if len(archive)%4 != 0 {
					t.Errorf("ignition archive is %d bytes, not a multiple of 4", len(archive))
				}
				files := fixture.CpioFiles(t, archive)
				if len(files) != 1 || !bytes.Equal(files["config.ign"], archIgnition(c.id, "")) {
					t.Errorf("ignition archive holds %v; want only config.ign with the fake's ignition", keys(files))
				}
				if got, want := resp.Header.Get("Content-Disposition"), "attachment; filename="+c.id+"-initrd.img"; got != want {
					t.Errorf("Content-Disposition %q, want %q", got, want)
				}
				if im.arch != "s390x" {
					continue
				}
				// s390x addrsize for the same request parameters.
				for _, aq := range []string{"?version=" + im.ocp, "?version=" + im.ocp + "&arch=x86_64"} {
					resp, as := s.in.get(t, "/images/"+c.id+"/s390x-initrd-addrsize"+aq, nil, http.StatusOK)
					want := append(bytes.Clone(im.file(t, "images/initrd.addrsize")[:8]), binary.BigEndian.AppendUint64(nil, uint64(len(body)))...)
					if !bytes.Equal(as, want) {
						t.Errorf("addrsize%s = % x, want % x", aq, as, want)
					}
					if got, w := resp.Header.Get("Content-Disposition"), "attachment; filename="+c.id+"-initrd.addrsize"; got != w {
						t.Errorf("addrsize Content-Disposition %q, want %q", got, w)
					}
				}
			}
		})
	}
}

// 5. boot artifacts per architecture.
func (s *archSuite) testBootArtifacts(t *testing.T) {
	for _, im := range s.images {
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			q := "?version=" + im.ocp + "&arch=" + im.arch
			for _, c := range []struct{ artifact, isoPath, filename string }{
				{"kernel", im.kernelPath, "vmlinuz"},
				{"rootfs", "images/pxeboot/rootfs.img", "rootfs.img"},
			} {
				resp, body := s.in.get(t, "/boot-artifacts/"+c.artifact+q, nil, http.StatusOK)
				if !bytes.Equal(body, im.file(t, c.isoPath)) {
					t.Errorf("%s: %d bytes differing from %s", c.artifact, len(body), c.isoPath)
				}
				if got, want := resp.Header.Get("Content-Disposition"), "attachment; filename="+c.filename; got != want {
					t.Errorf("%s: Content-Disposition %q, want %q", c.artifact, got, want)
				}
			}
			if im.arch != "s390x" {
				s.in.get(t, "/boot-artifacts/ins-file"+q, nil, http.StatusNotFound)
				return
			}
			resp, body := s.in.get(t, "/boot-artifacts/ins-file"+q, nil, http.StatusOK)
			if !bytes.Equal(body, im.file(t, "generic.ins")) {
				t.Errorf("ins-file %q, want generic.ins %q", body, im.file(t, "generic.ins"))
			}
			if got := resp.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
				t.Errorf("ins-file Content-Type %q", got)
			}
			if got := resp.Header.Get("Content-Disposition"); got != "attachment; filename=generic.ins" {
				t.Errorf("ins-file Content-Disposition %q", got)
			}
		})
	}
}

// 6. disconnected.iso.
func (s *archSuite) testDisconnected(t *testing.T) {
	id := s.newID(nil)
	d := s.disc
	resp, body := s.in.get(t, d.byID(id, "disconnected.iso"), nil, http.StatusOK)
	if got, want := resp.Header.Get("Content-Disposition"), "attachment; filename=agent-ove.x86_64.iso"; got != want {
		t.Errorf("Content-Disposition %q, want %q", got, want)
	}
	if len(body) != len(d.isoBytes) {
		t.Fatalf("disconnected.iso is %d bytes, the disconnected image %d", len(body), len(d.isoBytes))
	}
	assertSameOutside(t, body, d.isoBytes, d.ignArea)
	if got := archIgnitionOf(t, d, body); !bytes.Equal(got, archIgnition(id, "disconnected-iso")) {
		t.Errorf("config.ign %.120q, want the fake's disconnected-iso ignition", got)
	}
	s.checkIgnRequest(t, id, "disconnected-iso")

	// full.iso of the same version still comes from the full-iso entry.
	full := s.image("x86_64")
	id2 := s.newID(nil)
	_, body = s.in.get(t, full.byID(id2, "full.iso"), nil, http.StatusOK)
	if len(body) != len(full.isoBytes) {
		t.Fatalf("full.iso is %d bytes, the full image %d", len(body), len(full.isoBytes))
	}
	assertSameOutside(t, body, full.isoBytes, full.ignArea)
	s.checkIgnRequest(t, id2, "full-iso")
}

// 7. version lookup by OpenShift and RHCOS version; the long URL.
func (s *archSuite) testVersionLookup(t *testing.T) {
	for _, im := range s.images {
		id := s.newID(nil)
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			types := []string{"full"}
			if im.arch != "s390x" {
				types = append(types, "minimal")
			}
			for _, typ := range types {
				_, byOCP := s.in.get(t, im.byID(id, typ+".iso"), nil, http.StatusOK)
				_, byRHCOS := s.in.get(t, "/byid/"+id+"/"+im.rhcos+"/"+im.arch+"/"+typ+".iso", nil, http.StatusOK)
				if !bytes.Equal(byOCP, byRHCOS) {
					t.Errorf("%s.iso by RHCOS version differs from by OpenShift version", typ)
				}
				for _, v := range []string{im.ocp, im.rhcos} {
					long := "/images/" + id + "?" + url.Values{"version": {v}, "arch": {im.arch}, "type": {typ + "-iso"}}.Encode()
					_, b := s.in.get(t, long, nil, http.StatusOK)
					if !bytes.Equal(b, byOCP) {
						t.Errorf("%s differs from /byid/…/%s.iso", long, typ)
					}
				}
			}
			for _, v := range []string{im.ocp, im.rhcos} {
				_, k := s.in.get(t, "/boot-artifacts/kernel?version="+v+"&arch="+im.arch, nil, http.StatusOK)
				if !bytes.Equal(k, im.file(t, im.kernelPath)) {
					t.Errorf("kernel by version %s is wrong", v)
				}
			}
		})
	}
}
