package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
)

// The nmstatectl path end to end (OpenShift 4.18 and later): isoedge
// serves images whose live rootfs (a real squashfs, and a real erofs)
// holds nmstatectl in an RHCOS ostree deployment; it must take it out at
// startup, put it into the minimal ISO as images/nmstate.img loaded by
// the boot configs, and append it to PXE initrds that carry a
// static-network ramdisk. Everything is read back with xorriso, gzip and
// cpio. A 4.17 image whose rootfs also holds nmstatectl shows the version
// gate: nothing is added there.

const nmstateBaseURL = "https://images.example.com/api/assisted-images"

// nmstateImage is one configured fixture ISO.
type nmstateImage struct {
	name       string
	arch       string
	ocp, rhcos string
	rootfsFS   string
	bin        []byte // nmstatectl in the rootfs
	want       bool   // isoedge must serve it (OpenShift ≥ 4.18)
	man        fixture.Manifest
}

func (im *nmstateImage) byID(id, file string) string {
	return "/byid/" + id + "/" + im.ocp + "/" + im.arch + "/" + file
}

// nmstateHealth is the part of /health this test reads.
type nmstateHealth struct {
	Images []struct {
		OpenshiftVersion string `json:"openshift_version"`
		Arch             string `json:"cpu_architecture"`
		State            string `json:"state"`
		Derived          string `json:"derived"`
		Warning          string `json:"warning"`
		Error            string `json:"error"`
	} `json:"images"`
}

func TestNmstate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	images := []*nmstateImage{
		{name: "x86_64-4.18-squashfs", arch: "x86_64", ocp: "4.18", rhcos: "418.94.202502040000-0", rootfsFS: fixture.RootfsSquashfs, want: true},
		{name: "aarch64-4.19-erofs", arch: "aarch64", ocp: "4.19", rhcos: "419.96.202506100000-0", rootfsFS: fixture.RootfsErofs, want: true},
		{name: "x86_64-4.17-squashfs", arch: "x86_64", ocp: "4.17", rhcos: "417.94.202501010000-0", rootfsFS: fixture.RootfsSquashfs},
	}
	var list []config.OSImage
	for i, im := range images {
		// Distinct, mostly incompressible content spanning several
		// squashfs blocks and erofs clusters.
		im.bin = append([]byte("#!/bin/sh\necho 'nmstatectl stand-in "+im.name+"'\n"), fixture.PseudoRandom(300<<10+int64(i)*4099, byte(40+i))...)
		iso, man := fixture.Build(t, dir, fixture.Options{
			Arch: im.arch, VolumeID: "rhcos-" + im.rhcos, RootfsFS: im.rootfsFS, Nmstatectl: im.bin,
		})
		im.man = man
		list = append(list, config.OSImage{OpenshiftVersion: im.ocp, CPUArchitecture: im.arch, URL: "file://" + iso, Version: im.rhcos})
	}

	fake := newFakeAS(t)
	nmconn := []byte("[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\n[ipv4]\nmethod=manual\naddress1=192.0.2.10/24,192.0.2.1\n")
	ramdisk := fixture.CpioArchive(t, map[string][]byte{"etc/assisted/network/host0/eth0.nmconnection": nmconn})
	const karg = "rd.net.timeout.carrier=30"
	static := "0e5a7e00-0000-4000-8000-000000000001" // static networking: ramdisk and kernel arguments
	plain := "0e5a7e00-0000-4000-8000-000000000002"  // neither
	fake.set(static, &infraEnv{
		ignition: ignitionFor(static), lastModified: fakeLastMod, ramdisk: ramdisk,
		kargs: ptr(`[{"operation":"append","value":"` + karg + `"}]`),
	})
	fake.set(plain, &infraEnv{ignition: ignitionFor(plain), lastModified: fakeLastMod})

	env := baseEnv(t.TempDir())
	env["ASSISTED_SERVICE_HOST"] = fake.hostPort()
	env["ASSISTED_SERVICE_TIMEOUT"] = "5s"
	env["IMAGE_SERVICE_BASE_URL"] = nmstateBaseURL
	env["OS_IMAGES"] = osImagesJSON(t, list...)
	in := startInstance(t, env)
	// 200 means every image is stored with its minimal template and
	// nmstatectl archive derived (or failing, which the checks below catch).
	in.waitReady(t, 120*time.Second)
	_, body := in.get(t, "/health", nil, http.StatusOK)
	var h nmstateHealth
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("/health: %v: %s", err, body)
	}
	if len(h.Images) != len(images) {
		t.Fatalf("/health lists %d images, want %d: %s", len(h.Images), len(images), body)
	}
	for _, s := range h.Images {
		if s.State != "ready" || s.Derived != "ok" || s.Warning != "" || s.Error != "" {
			t.Errorf("image %s/%s: state %q derived %q warning %q error %q; want ready, ok and no warning",
				s.OpenshiftVersion, s.Arch, s.State, s.Derived, s.Warning, s.Error)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, im := range images {
		t.Run(im.name, func(t *testing.T) {
			t.Parallel()
			nmImg := nmstateMinimal(t, in, im, static, plain, karg)
			nmstatePXE(t, in, im, static, plain, ramdisk, nmconn, nmImg)
		})
	}
}

// nmstateMinimal checks the minimal ISOs of im for both InfraEnvs and
// returns the images/nmstate.img they carry (nil when im gets none).
func nmstateMinimal(t *testing.T, in *instance, im *nmstateImage, static, plain, karg string) []byte {
	t.Helper()
	grubPath := "EFI/redhat/grub.cfg"
	var nmImg []byte
	for _, id := range []string{static, plain} {
		_, body := in.get(t, im.byID(id, "minimal.iso"), nil, http.StatusOK)
		p := writeTemp(t, "minimal.iso", body)
		if nmstateISOHas(t, p, "/images/pxeboot/rootfs.img") {
			t.Fatal("the minimal ISO holds images/pxeboot/rootfs.img")
		}
		grub := fixture.ExtractFile(t, p, "/"+grubPath)
		var isolinux []byte
		if im.arch == "x86_64" {
			isolinux = fixture.ExtractFile(t, p, "/isolinux/isolinux.cfg")
		}
		linux, initrd := nmstateGrubLines(t, grub)
		if want := " " + karg; (id == static) != strings.HasSuffix(linux, want) {
			t.Errorf("%s: grub linux line %q; the InfraEnv's kernel argument expected only for the static one", id, linux)
		}

		if !im.want {
			if nmstateISOHas(t, p, "/images/nmstate.img") {
				t.Errorf("OpenShift %s: the minimal ISO holds images/nmstate.img", im.ocp)
			}
			if bytes.Contains(grub, []byte("nmstate")) || bytes.Contains(isolinux, []byte("nmstate")) {
				t.Errorf("OpenShift %s: a boot config mentions nmstate:\n%s\n%s", im.ocp, grub, isolinux)
			}
			continue
		}

		img := fixture.ExtractFile(t, p, "/images/nmstate.img")
		if nmImg == nil {
			nmImg = img
			nmstateCheckArchive(t, "images/nmstate.img", img, im.bin)
		} else if !bytes.Equal(img, nmImg) {
			t.Errorf("images/nmstate.img differs between InfraEnvs")
		}
		if out := nmstateRun(t, "", nil, "xorriso", "-indev", p, "-lsl", "/images/nmstate.img"); !strings.HasPrefix(string(out), "-rwxr-xr-x") {
			t.Errorf("images/nmstate.img is not executable in the ISO's Rock Ridge data: %s", out)
		}
		// Loaded after the custom ramdisk, by grub and by isolinux.
		if !strings.HasSuffix(initrd, " /images/assisted_installer_custom.img /images/nmstate.img") {
			t.Errorf("grub initrd line %q does not end with the custom ramdisk and /images/nmstate.img", initrd)
		}
		if im.arch == "x86_64" {
			const want = "initrd=/images/pxeboot/initrd.img,/images/ignition.img,/images/assisted_installer_custom.img,/images/nmstate.img "
			if !bytes.Contains(isolinux, []byte(want)) {
				t.Errorf("isolinux.cfg does not load /images/nmstate.img (want %q):\n%s", want, isolinux)
			}
		}
	}
	return nmImg
}

// nmstatePXE checks the PXE initrds of im: base initrd ‖ ignition archive ‖
// ramdisk ‖ nmstatectl archive for the static InfraEnv, no nmstatectl
// without a ramdisk or below OpenShift 4.18.
func nmstatePXE(t *testing.T, in *instance, im *nmstateImage, static, plain string, ramdisk, nmconn, nmImg []byte) {
	t.Helper()
	base := im.man.Files["images/pxeboot/initrd.img"]
	if base == nil {
		t.Fatal("no initrd.img in the fixture manifest")
	}
	for _, id := range []string{static, plain} {
		_, body := in.get(t, "/images/"+id+"/pxe-initrd?version="+im.ocp+"&arch="+im.arch, nil, http.StatusOK)
		if !bytes.HasPrefix(body, base) {
			t.Fatalf("%s: pxe-initrd does not start with the ISO's initrd.img", id)
		}
		rest := body[len(base):]
		ignEnd := gzipMemberEnd(t, rest)
		// The ignition archive is NUL-padded to 4 bytes; nothing else may
		// sit between it and the next member.
		next := ignEnd
		for next < len(rest) && next%4 != 0 && rest[next] == 0 {
			next++
		}
		ign, rest := rest[:next], rest[next:]
		if len(ign)%4 != 0 {
			t.Errorf("%s: ignition archive is %d bytes, not 4-byte padded", id, len(ign))
		}
		if got := fixture.CpioFiles(t, ign)["config.ign"]; !bytes.Equal(got, ignitionFor(id)) {
			t.Errorf("%s: config.ign after the base initrd is %.80q, want the InfraEnv's ignition", id, got)
		}

		wantBin := im.want && id == static
		if id == static {
			if !bytes.HasPrefix(rest, ramdisk) {
				t.Fatalf("%s: the ramdisk does not follow the ignition archive", id)
			}
			rest = rest[len(ramdisk):]
		}
		if !wantBin {
			if len(rest) != 0 {
				t.Errorf("%s (OpenShift %s): %d bytes after the last expected archive, want none", id, im.ocp, len(rest))
			}
		} else {
			nmstateCheckArchive(t, "pxe-initrd tail", rest, im.bin)
			if !bytes.Equal(rest, nmImg) {
				t.Errorf("%s: the pxe-initrd's nmstatectl archive differs from the minimal ISO's images/nmstate.img", id)
			}
		}

		// The kernel's view: every archive unpacked over the last.
		files := fixture.CpioFiles(t, body)
		if !bytes.Equal(files["config.ign"], ignitionFor(id)) || files["etc/coreos-live-initramfs"] == nil {
			t.Errorf("%s: unpacked pxe-initrd lacks config.ign or the base initrd's files: %v", id, keys(files))
		}
		if got := files["etc/assisted/network/host0/eth0.nmconnection"]; (id == static) != bytes.Equal(got, nmconn) {
			t.Errorf("%s: unpacked pxe-initrd nmconnection %q", id, got)
		}
		if got, ok := files["usr/bin/nmstatectl"]; ok != wantBin || (ok && !bytes.Equal(got, im.bin)) {
			t.Errorf("%s (OpenShift %s): unpacked pxe-initrd has usr/bin/nmstatectl %v (%d bytes); want %v with the rootfs's %d bytes",
				id, im.ocp, ok, len(got), wantBin, len(im.bin))
		}
	}
}

// nmstateCheckArchive unpacks a gzip'd newc nmstatectl archive with the
// external gzip and cpio and checks that it holds exactly usr, usr/bin and
// usr/bin/nmstatectl (mode 0755, content want).
func nmstateCheckArchive(t *testing.T, what string, archive, want []byte) {
	t.Helper()
	if len(archive)%4 != 0 {
		t.Errorf("%s: %d bytes, not 4-byte padded", what, len(archive))
	}
	raw := nmstateRun(t, "", archive, "gzip", "-dc")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(nmstateRun(t, "", raw, "cpio", "-itv", "--quiet"))), "\n") {
		f := strings.Fields(l)
		got = append(got, f[0]+" "+f[len(f)-1])
	}
	wantList := []string{"drwxr-xr-x usr", "drwxr-xr-x usr/bin", "-rwxr-xr-x usr/bin/nmstatectl"}
	if strings.Join(got, "\n") != strings.Join(wantList, "\n") {
		t.Errorf("%s: cpio -itv:\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(wantList, "\n"))
	}
	dir := t.TempDir()
	nmstateRun(t, dir, raw, "cpio", "-idm", "--quiet", "--no-absolute-filenames")
	p := filepath.Join(dir, "usr", "bin", "nmstatectl")
	b, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("%s: usr/bin/nmstatectl is %d bytes (err %v), want the rootfs's %d bytes", what, len(b), err, len(want))
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("%s: unpacked nmstatectl mode %v (err %v), want 0755", what, st.Mode(), err)
	}
}

// nmstateGrubLines returns the first linux and initrd lines of a grub.cfg.
func nmstateGrubLines(t *testing.T, cfg []byte) (linux, initrd string) {
	t.Helper()
	for _, l := range strings.Split(string(cfg), "\n") {
		switch f := strings.TrimSpace(l); {
		case linux == "" && strings.HasPrefix(f, "linux "):
			linux = f
		case initrd == "" && strings.HasPrefix(f, "initrd "):
			initrd = f
		}
	}
	if linux == "" || initrd == "" {
		t.Fatalf("grub.cfg without linux or initrd line:\n%s", cfg)
	}
	return linux, initrd
}

// nmstateISOHas reports whether xorriso finds the file p in iso.
func nmstateISOHas(t *testing.T, iso, p string) bool {
	t.Helper()
	out := nmstateRun(t, "", nil, "xorriso", "-indev", iso, "-find", filepath.Dir(p), "-name", filepath.Base(p), "-type", "f")
	return strings.Contains(string(out), "'"+p+"'")
}

// nmstateRun runs an external tool and returns its standard output; any
// non-zero exit fails the test (gzip exits 0 on trailing NUL padding).
func nmstateRun(t *testing.T, dir string, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.Bytes())
	}
	return out.Bytes()
}
