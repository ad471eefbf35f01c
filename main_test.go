package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
)

const (
	ocpVersion   = "4.17"
	rhcosVersion = "417.94.202501010000-0"
	fakeLastMod  = "Tue, 02 Jan 2024 15:04:05 GMT"
)

// e2e is the shared environment of TestEndToEnd: one fixture ISO served
// through file://, one fake assisted-service, one isoedge.
type e2e struct {
	iso        string
	isoBytes   []byte
	man        fixture.Manifest
	fake       *fakeAS
	in         *instance
	ignArea    span
	kargAreas  []span
	baseInitrd []byte
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	iso, man := fixture.Build(t, t.TempDir(), fixture.Options{})
	isoBytes, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{iso: iso, isoBytes: isoBytes, man: man, fake: newFakeAS(t)}
	off, n := fixture.ISOOffset(t, iso, "/images/ignition.img")
	e.ignArea = span{name: "ignition", off: off, n: n}
	for _, p := range []string{"/EFI/redhat/grub.cfg", "/isolinux/isolinux.cfg"} {
		e.kargAreas = append(e.kargAreas, kargArea(t, iso, isoBytes, p))
	}
	e.baseInitrd = fixture.ExtractFile(t, iso, "/images/pxeboot/initrd.img")

	env := baseEnv(t.TempDir())
	env["ASSISTED_SERVICE_HOST"] = e.fake.hostPort()
	// Every answer of the fake must arrive in time, however busy the
	// machine: the default timeout (30 s). SlowAssistedService runs its own
	// instance with a short one.
	env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{
		OpenshiftVersion: ocpVersion, CPUArchitecture: "x86_64", URL: "file://" + iso, Version: rhcosVersion,
	})
	e.in = startInstance(t, env)
	h := e.in.waitReady(t, 120*time.Second)
	if len(h.Images) != 1 || h.Images[0].State != "ready" {
		t.Fatalf("health: %+v", h)
	}
	return e
}

// newEnv registers an InfraEnv with a fresh id and a distinctive ignition.
func (e *e2e) newEnv(id string, mod func(*infraEnv)) *infraEnv {
	ie := &infraEnv{ignition: ignitionFor(id), lastModified: fakeLastMod}
	if mod != nil {
		mod(ie)
	}
	e.fake.set(id, ie)
	return ie
}

func fullISOPath(id string) string {
	return "/byid/" + id + "/" + ocpVersion + "/x86_64/full.iso"
}

func initrdPath(id string) string {
	return "/images/" + id + "/pxe-initrd?version=" + ocpVersion + "&arch=x86_64"
}

// ignitionOf extracts config.ign from a downloaded ISO with external tools.
func ignitionOf(t *testing.T, iso []byte) []byte {
	t.Helper()
	p := writeTemp(t, "downloaded.iso", iso)
	img := fixture.ExtractFile(t, p, "/images/ignition.img")
	files := fixture.CpioFiles(t, img)
	cfg, ok := files["config.ign"]
	if !ok {
		t.Fatalf("no config.ign in the ignition image; files: %v", keys(files))
	}
	return cfg
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestEndToEnd(t *testing.T) {
	e := newE2E(t)
	t.Run("FullISO", e.testFullISO)
	t.Run("KernelArgs", e.testKernelArgs)
	t.Run("PXEInitrd", e.testPXEInitrd)
	t.Run("Range", e.testRange)
	t.Run("BootArtifacts", e.testBootArtifacts)
	t.Run("BadInput", e.testBadInput)
	t.Run("Credentials", e.testCredentials)
}

// 1. full.iso: size, embedded ignition, untouched bytes, headers.
func (e *e2e) testFullISO(t *testing.T) {
	id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d01"
	ie := e.newEnv(id, nil)
	resp, body := e.in.get(t, fullISOPath(id), nil, http.StatusOK)

	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(e.isoBytes)) {
		t.Errorf("Content-Length %q, want %d", cl, len(e.isoBytes))
	}
	if len(body) != len(e.isoBytes) {
		t.Fatalf("body is %d bytes, base ISO %d", len(body), len(e.isoBytes))
	}
	if got := ignitionOf(t, body); !bytes.Equal(got, ie.ignition) {
		t.Errorf("config.ign in the downloaded ISO differs from the fake's ignition:\n got %.200q\nwant %.200q", got, ie.ignition)
	}
	spans := append([]span{e.ignArea}, e.kargAreas...)
	assertSameOutside(t, body, e.isoBytes, spans...)
	// No kernel arguments configured: the karg areas are untouched too.
	assertSameOutside(t, body, e.isoBytes, e.ignArea)

	area := body[e.ignArea.off : e.ignArea.off+e.ignArea.n]
	if !bytes.HasPrefix(area, []byte{0x1f, 0x8b}) {
		t.Fatalf("ignition area does not start with a gzip member: % x", area[:16])
	}
	end := gzipMemberEnd(t, area)
	if rest := area[end:]; len(bytes.Trim(rest, "\x00")) != 0 {
		t.Errorf("ignition area after the %d-byte archive is not all zero", end)
	}

	h := resp.Header
	if got, want := h.Get("Content-Disposition"), "attachment; filename="+id+"-discovery.iso"; got != want {
		t.Errorf("Content-Disposition %q, want %q", got, want)
	}
	if got := h.Get("Accept-Ranges"); got != "bytes" {
		t.Errorf("Accept-Ranges %q", got)
	}
	if got := h.Get("Last-Modified"); got != fakeLastMod {
		t.Errorf("Last-Modified %q, want %q", got, fakeLastMod)
	}
	if et := h.Get("ETag"); len(et) < 3 || et[0] != '"' || et[len(et)-1] != '"' {
		t.Errorf("ETag %q is not a quoted entity tag", et)
	}

	// The fake was asked for the full-iso ignition.
	var sawIgn bool
	for _, r := range e.fake.requests(id) {
		if r.Kind == "ignition" {
			sawIgn = true
			if r.Query.Get("file_name") != "discovery.ign" || r.Query.Get("discovery_iso_type") != "full-iso" {
				t.Errorf("ignition query %v", r.Query)
			}
		}
	}
	if !sawIgn {
		t.Error("the fake assisted-service got no ignition request")
	}

	// The same content is reachable with the RHCOS version and the long URL.
	_, body2 := e.in.get(t, "/byid/"+id+"/"+rhcosVersion+"/x86_64/full.iso", nil, http.StatusOK)
	if !bytes.Equal(body2, body) {
		t.Error("full.iso by RHCOS version differs from full.iso by OpenShift version")
	}
	_, body3 := e.in.get(t, "/images/"+id+"?version="+ocpVersion+"&type=full-iso", nil, http.StatusOK)
	if !bytes.Equal(body3, body) {
		t.Error("long URL full-iso differs from the short URL")
	}
}

// bootLine returns the line of cfg starting with prefix and the line after it.
func bootLine(t *testing.T, cfg []byte, prefix string) (string, string) {
	t.Helper()
	lines := strings.Split(string(cfg), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) && i+1 < len(lines) {
			return l, lines[i+1]
		}
	}
	t.Fatalf("no line starting with %q in:\n%s", prefix, cfg)
	return "", ""
}

// 2. kernel arguments.
func (e *e2e) testKernelArgs(t *testing.T) {
	grubBase := e.man.Files["EFI/redhat/grub.cfg"]
	isoBase := e.man.Files["isolinux/isolinux.cfg"]
	check := func(t *testing.T, body []byte, suffix string) {
		t.Helper()
		p := writeTemp(t, "kargs.iso", body)
		for _, c := range []struct {
			path, prefix string
			base         []byte
		}{
			{"/EFI/redhat/grub.cfg", "\tlinux ", grubBase},
			{"/isolinux/isolinux.cfg", "  append ", isoBase},
		} {
			cfg := fixture.ExtractFile(t, p, c.path)
			if len(cfg) != len(c.base) {
				t.Errorf("%s: %d bytes, base has %d", c.path, len(cfg), len(c.base))
			}
			line, next := bootLine(t, cfg, c.prefix)
			baseLine, _ := bootLine(t, c.base, c.prefix)
			if line != baseLine+suffix {
				t.Errorf("%s: kernel line\n %.300q\nwant\n %.300q", c.path, line, baseLine+suffix)
			}
			if !strings.HasSuffix(next, "# COREOS_KARG_EMBED_AREA") || strings.Trim(strings.TrimSuffix(next, " COREOS_KARG_EMBED_AREA"), "#") != "" {
				t.Errorf("%s: line after the kernel line is %.80q…, want '#'s and the marker", c.path, next)
			}
		}
		assertSameOutside(t, body, e.isoBytes, append([]span{e.ignArea}, e.kargAreas...)...)
	}

	t.Run("Append", func(t *testing.T) {
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d02"
		ie := e.newEnv(id, func(ie *infraEnv) {
			ie.kargs = ptr(`[{"operation":"append","value":"foo=bar"},{"operation":"append","value":"baz"}]`)
		})
		_, body := e.in.get(t, fullISOPath(id), nil, http.StatusOK)
		check(t, body, " foo=bar baz")
		if got := ignitionOf(t, body); !bytes.Equal(got, ie.ignition) {
			t.Error("ignition wrong in an ISO with kernel arguments")
		}
		var sawEnv bool
		for _, r := range e.fake.requests(id) {
			sawEnv = sawEnv || r.Kind == "infra-env"
		}
		if !sawEnv {
			t.Error("the fake got no infra-env request")
		}
	})
	// The area is 1024 bytes: " " + args + "\n" fits with 1022 bytes of args.
	t.Run("ExactlyFits", func(t *testing.T) {
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d03"
		v := "x=" + strings.Repeat("y", 1020)
		e.newEnv(id, func(ie *infraEnv) {
			ie.kargs = ptr(`[{"operation":"append","value":"` + v + `"}]`)
		})
		_, body := e.in.get(t, fullISOPath(id), nil, http.StatusOK)
		check(t, body, " "+v)
	})
	t.Run("OneByteTooLong", func(t *testing.T) {
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d04"
		v := "x=" + strings.Repeat("y", 1021)
		e.newEnv(id, func(ie *infraEnv) {
			ie.kargs = ptr(`[{"operation":"append","value":"` + v + `"}]`)
		})
		_, body := e.in.get(t, fullISOPath(id), nil, http.StatusInternalServerError)
		if !strings.Contains(string(body), "area") {
			t.Errorf("500 body %q does not mention the embed area", body)
		}
	})
	t.Run("TooLong", func(t *testing.T) {
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d05"
		e.newEnv(id, func(ie *infraEnv) {
			ie.kargs = ptr(`[{"operation":"append","value":"a=` + strings.Repeat("b", 600) + `"},{"operation":"append","value":"c=` + strings.Repeat("d", 600) + `"}]`)
		})
		_, body := e.in.get(t, fullISOPath(id), nil, http.StatusInternalServerError)
		if !strings.Contains(string(body), "area") {
			t.Errorf("500 body %q does not mention the embed area", body)
		}
	})
	t.Run("InvalidOperation", func(t *testing.T) {
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d06"
		e.newEnv(id, func(ie *infraEnv) {
			ie.kargs = ptr(`[{"operation":"append","value":"foo=bar"},{"operation":"replace","value":"baz"}]`)
		})
		e.in.get(t, fullISOPath(id), nil, http.StatusInternalServerError)
	})
	t.Run("UndecodableKargs", func(t *testing.T) {
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d07"
		e.newEnv(id, func(ie *infraEnv) { ie.kargs = ptr(`not json`) })
		e.in.get(t, fullISOPath(id), nil, http.StatusInternalServerError)
	})
}

// 3. pxe-initrd.
func (e *e2e) testPXEInitrd(t *testing.T) {
	t.Run("NoRamdisk", func(t *testing.T) {
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d11"
		ie := e.newEnv(id, func(ie *infraEnv) {
			// kernel arguments must not matter for PXE
			ie.kargs = ptr(`[{"operation":"replace","value":"x"}]`)
		})
		resp, body := e.in.get(t, initrdPath(id), nil, http.StatusOK)
		if !bytes.HasPrefix(body, e.baseInitrd) {
			t.Fatalf("pxe-initrd does not start with the ISO's initrd.img (%d bytes)", len(e.baseInitrd))
		}
		archive := body[len(e.baseInitrd):]
		if len(archive) == 0 || len(archive)%4 != 0 {
			t.Errorf("ignition archive is %d bytes, want a non-zero multiple of 4", len(archive))
		}
		if end := gzipMemberEnd(t, archive); len(bytes.Trim(archive[end:], "\x00")) != 0 {
			t.Errorf("bytes after the ignition archive's gzip member are not padding")
		}
		files := fixture.CpioFiles(t, body)
		if !bytes.Equal(files["config.ign"], ie.ignition) {
			t.Errorf("config.ign = %.100q, want the fake's ignition", files["config.ign"])
		}
		if got, want := string(files["etc/coreos-live-initramfs"]), e.man.VolumeID+"\n"; got != want {
			t.Errorf("etc/coreos-live-initramfs = %q, want %q", got, want)
		}
		if got, want := resp.Header.Get("Content-Disposition"), "attachment; filename="+id+"-initrd.img"; got != want {
			t.Errorf("Content-Disposition %q, want %q", got, want)
		}
		if got := resp.Header.Get("Last-Modified"); got != fakeLastMod {
			t.Errorf("Last-Modified %q, want %q", got, fakeLastMod)
		}
		if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
			t.Errorf("Content-Length %q, body %d", got, len(body))
		}
		var ign, ram, env int
		for _, r := range e.fake.requests(id) {
			switch r.Kind {
			case "ignition":
				ign++
				if r.Query.Get("file_name") != "discovery.ign" {
					t.Errorf("ignition request without file_name=discovery.ign: %v", r.Query)
				}
				if _, ok := r.Query["discovery_iso_type"]; ok {
					t.Errorf("PXE ignition request has discovery_iso_type: %v", r.Query)
				}
			case "minimal-initrd":
				ram++
			case "infra-env":
				env++
			}
		}
		if ign != 1 || ram != 1 || env != 0 {
			t.Errorf("fake got %d ignition, %d minimal-initrd, %d infra-env requests; want 1, 1, 0", ign, ram, env)
		}
	})
	t.Run("WithRamdisk", func(t *testing.T) {
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d12"
		nm := []byte("[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\n[ipv4]\nmethod=manual\naddress1=192.0.2.10/24\n")
		ramdisk := fixture.CpioArchive(t, map[string][]byte{"etc/assisted/network/host0/eth0.nmconnection": nm})
		ie := e.newEnv(id, func(ie *infraEnv) { ie.ramdisk = ramdisk })
		_, body := e.in.get(t, initrdPath(id), nil, http.StatusOK)
		if !bytes.HasPrefix(body, e.baseInitrd) {
			t.Fatal("pxe-initrd does not start with the ISO's initrd.img")
		}
		if !bytes.HasSuffix(body, ramdisk) {
			t.Fatal("pxe-initrd does not end with the minimal-initrd ramdisk")
		}
		files := fixture.CpioFiles(t, body)
		if !bytes.Equal(files["config.ign"], ie.ignition) {
			t.Error("config.ign missing or wrong")
		}
		if got := files["etc/assisted/network/host0/eth0.nmconnection"]; !bytes.Equal(got, nm) {
			t.Errorf("eth0.nmconnection = %q, want %q (files: %v)", got, nm, keys(files))
		}
		if _, ok := files["etc/coreos-live-initramfs"]; !ok {
			t.Error("base initrd content missing")
		}
	})
}

type rangeCase struct {
	name       string
	header     string
	start, end int64 // inclusive
}

// 4. Range and conditional requests.
func (e *e2e) testRange(t *testing.T) {
	run := func(t *testing.T, path string, full []byte, boundaries []int64) {
		size := int64(len(full))
		cases := []rangeCase{
			{"first byte", "bytes=0-0", 0, 0},
			{"first 100", "bytes=0-99", 0, 99},
			{"from 100", "bytes=100-", 100, size - 1},
			{"suffix 500", "bytes=-500", size - 500, size - 1},
			{"last byte", fmt.Sprintf("bytes=%d-%d", size-1, size-1), size - 1, size - 1},
			{"last byte suffix", "bytes=-1", size - 1, size - 1},
			{"end past size", fmt.Sprintf("bytes=%d-%d", size-10, size+1000), size - 10, size - 1},
		}
		for i, b := range boundaries {
			cases = append(cases,
				rangeCase{fmt.Sprintf("crossing boundary %d", i), fmt.Sprintf("bytes=%d-%d", b-100, b+99), b - 100, b + 99},
				rangeCase{fmt.Sprintf("ending at boundary %d", i), fmt.Sprintf("bytes=%d-%d", b-7, b-1), b - 7, b - 1},
				rangeCase{fmt.Sprintf("starting at boundary %d", i), fmt.Sprintf("bytes=%d-%d", b, b+6), b, b + 6},
			)
		}
		if len(boundaries) >= 2 {
			a, b := boundaries[0], boundaries[1]
			cases = append(cases,
				rangeCase{"within area", fmt.Sprintf("bytes=%d-%d", a+10, a+(b-a)/2), a + 10, a + (b-a)/2},
				rangeCase{"spanning area", fmt.Sprintf("bytes=%d-%d", a-3, b+3), a - 3, b + 3},
			)
		}
		for _, c := range cases {
			resp, body := e.in.get(t, path, map[string]string{"Range": c.header}, http.StatusPartialContent)
			want := fmt.Sprintf("bytes %d-%d/%d", c.start, c.end, size)
			if got := resp.Header.Get("Content-Range"); got != want {
				t.Errorf("%s (%s): Content-Range %q, want %q", c.name, c.header, got, want)
			}
			if !bytes.Equal(body, full[c.start:c.end+1]) {
				t.Errorf("%s (%s): body (%d bytes) differs from the slice of the full download", c.name, c.header, len(body))
			}
			if got := resp.Header.Get("Content-Length"); got != strconv.FormatInt(c.end-c.start+1, 10) {
				t.Errorf("%s: Content-Length %q", c.name, got)
			}
		}

		resp, _ := e.in.get(t, path, map[string]string{"Range": fmt.Sprintf("bytes=%d-", size)}, http.StatusRequestedRangeNotSatisfiable)
		if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes */%d", size); got != want {
			t.Errorf("416 Content-Range %q, want %q", got, want)
		}

		resp, body := e.in.do(t, "HEAD", path, nil)
		if resp.StatusCode != http.StatusOK || resp.ContentLength != size || len(body) != 0 {
			t.Errorf("HEAD: status %d, Content-Length %d, %d body bytes; want 200, %d, 0", resp.StatusCode, resp.ContentLength, len(body), size)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}

		resp, body = e.in.get(t, path, map[string]string{"Range": "bytes=10-19", "If-Range": etag}, http.StatusPartialContent)
		if !bytes.Equal(body, full[10:20]) {
			t.Error("If-Range with the current ETag: wrong body")
		}
		_, body = e.in.get(t, path, map[string]string{"Range": "bytes=10-19", "If-Range": `"not-the-etag"`}, http.StatusOK)
		if !bytes.Equal(body, full) {
			t.Errorf("If-Range with a wrong ETag: body of %d bytes, want the full %d", len(body), size)
		}
		resp, body = e.in.do(t, "GET", path, map[string]string{"If-None-Match": etag})
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("If-None-Match with the ETag: status %d, %d body bytes; want 304 and none", resp.StatusCode, len(body))
		}
		_, body = e.in.get(t, path, map[string]string{"If-None-Match": `"other"`}, http.StatusOK)
		if !bytes.Equal(body, full) {
			t.Error("If-None-Match with another ETag: wrong body")
		}
	}

	t.Run("FullISO", func(t *testing.T) {
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d21"
		e.newEnv(id, func(ie *infraEnv) {
			ie.kargs = ptr(`[{"operation":"append","value":"range=test"}]`)
		})
		_, full := e.in.get(t, fullISOPath(id), nil, http.StatusOK)
		if len(full) != len(e.isoBytes) {
			t.Fatalf("full.iso %d bytes", len(full))
		}
		ka := e.kargAreas[0]
		run(t, fullISOPath(id), full, []int64{e.ignArea.off, e.ignArea.off + e.ignArea.n, ka.off, ka.off + ka.n})
	})
	t.Run("PXEInitrd", func(t *testing.T) {
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d22"
		ramdisk := fixture.CpioArchive(t, map[string][]byte{"etc/assisted/network/host0/eth0.nmconnection": []byte("[connection]\nid=eth0\n")})
		e.newEnv(id, func(ie *infraEnv) { ie.ramdisk = ramdisk })
		_, full := e.in.get(t, initrdPath(id), nil, http.StatusOK)
		l := int64(len(e.baseInitrd))
		archiveEnd := int64(len(full) - len(ramdisk))
		if archiveEnd <= l+100 || len(full) < 600 {
			t.Fatalf("unexpected pxe-initrd layout: initrd %d, total %d, ramdisk %d", l, len(full), len(ramdisk))
		}
		run(t, initrdPath(id), full, []int64{l, archiveEnd})
	})
}

// 5. boot artifacts.
func (e *e2e) testBootArtifacts(t *testing.T) {
	for _, c := range []struct{ artifact, isoPath, filename string }{
		{"kernel", "/images/pxeboot/vmlinuz", "vmlinuz"},
		{"rootfs", "/images/pxeboot/rootfs.img", "rootfs.img"},
	} {
		want := fixture.ExtractFile(t, e.iso, c.isoPath)
		for _, q := range []string{"?version=" + ocpVersion + "&arch=x86_64", "?version=" + rhcosVersion} {
			resp, body := e.in.get(t, "/boot-artifacts/"+c.artifact+q, nil, http.StatusOK)
			if !bytes.Equal(body, want) {
				t.Errorf("%s%s: %d bytes differing from the ISO's %s (%d bytes)", c.artifact, q, len(body), c.isoPath, len(want))
			}
			if got, w := resp.Header.Get("Content-Disposition"), "attachment; filename="+c.filename; got != w {
				t.Errorf("%s: Content-Disposition %q, want %q", c.artifact, got, w)
			}
		}
		resp, body := e.in.get(t, "/boot-artifacts/"+c.artifact+"?version="+ocpVersion, map[string]string{"Range": "bytes=5-14"}, http.StatusPartialContent)
		if !bytes.Equal(body, want[5:15]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 5-14/%d", len(want)) {
			t.Errorf("%s: range request wrong (%q)", c.artifact, resp.Header.Get("Content-Range"))
		}
	}
	e.in.get(t, "/boot-artifacts/ins-file?version="+ocpVersion+"&arch=x86_64", nil, http.StatusNotFound)
	e.in.get(t, "/boot-artifacts/initrd?version="+ocpVersion, nil, http.StatusNotFound)
	e.in.get(t, "/boot-artifacts/kernel", nil, http.StatusBadRequest)
	e.in.get(t, "/boot-artifacts/kernel?arch=x86_64", nil, http.StatusBadRequest)
	e.in.get(t, "/boot-artifacts/kernel?version=9.99", nil, http.StatusBadRequest)
	e.in.get(t, "/boot-artifacts/kernel?version="+ocpVersion+"&arch=aarch64", nil, http.StatusBadRequest)
	resp, _ := e.in.do(t, "POST", "/boot-artifacts/kernel?version="+ocpVersion, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", resp.StatusCode)
	}
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("POST 405: Allow header %q, want one listing GET", allow)
	}
	for _, r := range e.fake.allRequests() {
		if strings.Contains(r.Path, "boot-artifacts") {
			t.Errorf("boot artifacts called assisted-service: %s", r.Path)
		}
	}
}

// 6. bad input and upstream failures.
func (e *e2e) testBadInput(t *testing.T) {
	id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5d31"
	e.newEnv(id, nil)
	upper := strings.ToUpper(id)
	e.newEnv(upper, nil) // present upstream: only the UUID check can refuse it

	for _, c := range []struct {
		path string
		want int
		body string
	}{
		{"/byid/NOT-A-UUID/" + ocpVersion + "/x86_64/full.iso", 404, ""},
		{"/byid/" + upper + "/" + ocpVersion + "/x86_64/full.iso", 404, ""},
		{"/byid/" + id + "/9.99/x86_64/full.iso", 404, ""},
		{"/byid/" + id + "/" + ocpVersion + "/aarch64/full.iso", 404, ""},
		{"/byid/" + id + "/" + ocpVersion + "/x86_64/foo.iso", 404, "unrecognized file name foo.iso"},
		{"/byid/" + id + "/" + ocpVersion + "/x86_64", 404, ""},
		{"/images/" + id + "/pxe-initrd?version=9.99", 400, ""},
		{"/images/" + id + "/pxe-initrd?arch=x86_64", 400, ""},
		{"/images/" + id + "/pxe-initrd?version=" + ocpVersion + "&arch=aarch64", 400, ""},
		{"/images/" + upper + "/pxe-initrd?version=" + ocpVersion, 404, ""},
		{"/images/" + id + "?version=" + ocpVersion, 400, ""},
		{"/images/" + id + "?type=full-iso", 400, ""},
		{"/images/" + id + "?version=" + ocpVersion + "&type=tiny-iso", 400, ""},
		{"/no/such/path", 404, ""},
	} {
		resp, body := e.in.do(t, "GET", c.path, nil)
		if resp.StatusCode != c.want {
			t.Errorf("GET %s: status %d, want %d (body %.200q)", c.path, resp.StatusCode, c.want, body)
		}
		if c.body != "" && strings.TrimSpace(string(body)) != c.body {
			t.Errorf("GET %s: body %q, want %q", c.path, body, c.body)
		}
	}
	for _, r := range e.fake.allRequests() {
		if r.ID == upper || r.ID == "NOT-A-UUID" {
			t.Errorf("a rejected image id reached assisted-service: %s", r.Path)
		}
	}

	t.Run("Passthrough", func(t *testing.T) {
		for i, code := range []int{401, 403, 404, 503} {
			id := fmt.Sprintf("6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5e%02d", i)
			e.newEnv(id, func(ie *infraEnv) { ie.ignStatus = code })
			for _, p := range []string{fullISOPath(id), initrdPath(id)} {
				resp, _ := e.in.do(t, "GET", p, nil)
				if resp.StatusCode != code {
					t.Errorf("ignition %d: GET %s: status %d", code, p, resp.StatusCode)
				}
			}
		}
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5e10"
		e.newEnv(id, func(ie *infraEnv) { ie.envStatus = 403 })
		if resp, _ := e.in.do(t, "GET", fullISOPath(id), nil); resp.StatusCode != 403 {
			t.Errorf("infra-env 403: full.iso status %d", resp.StatusCode)
		}
		id = "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5e11"
		e.newEnv(id, func(ie *infraEnv) { ie.ramStatus = 503 })
		if resp, _ := e.in.do(t, "GET", initrdPath(id), nil); resp.StatusCode != 503 {
			t.Errorf("minimal-initrd 503: pxe-initrd status %d", resp.StatusCode)
		}
		// Unknown to assisted-service altogether.
		if resp, _ := e.in.do(t, "GET", fullISOPath("6f1c1b0e-7a34-4b1e-9d7c-000000000000"), nil); resp.StatusCode != 404 {
			t.Errorf("unknown InfraEnv: status %d, want 404", resp.StatusCode)
		}
	})

	t.Run("SlowAssistedService", func(t *testing.T) {
		id := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5e20"
		// The fake answers after a minute (or when the caller hangs up);
		// the instance gives up after 1s.
		e.newEnv(id, func(ie *infraEnv) { ie.delay = time.Minute })
		env := baseEnv(t.TempDir())
		env["ASSISTED_SERVICE_HOST"] = e.fake.hostPort()
		env["ASSISTED_SERVICE_TIMEOUT"] = "1s"
		env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{
			OpenshiftVersion: ocpVersion, CPUArchitecture: "x86_64", URL: "file://" + e.iso, Version: rhcosVersion,
		})
		in := startInstance(t, env)
		in.waitReady(t, 120*time.Second)
		for _, p := range []string{fullISOPath(id), initrdPath(id)} {
			start := time.Now()
			resp, _ := in.do(t, "GET", p, nil)
			took := time.Since(start)
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("GET %s with a slow assisted-service: status %d, want 502", p, resp.StatusCode)
			}
			// Far below the fake's minute; the margin is for a busy machine.
			if took > 10*time.Second {
				t.Errorf("GET %s took %v with ASSISTED_SERVICE_TIMEOUT=1s", p, took)
			}
		}
	})

	t.Run("Unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		env := baseEnv(t.TempDir())
		env["ASSISTED_SERVICE_HOST"] = closed
		env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{
			OpenshiftVersion: ocpVersion, CPUArchitecture: "x86_64", URL: "file://" + e.iso, Version: rhcosVersion,
		})
		in := startInstance(t, env)
		in.waitReady(t, 120*time.Second)
		const secret = "unreachable-secret-api-key-4711"
		for _, p := range []string{fullISOPath(id), initrdPath(id)} {
			sep := "?"
			if strings.Contains(p, "?") {
				sep = "&"
			}
			resp, body := in.do(t, "GET", p+sep+"api_key="+secret, nil)
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("GET %s with assisted-service down: status %d, want 502", p, resp.StatusCode)
			}
			if bytes.Contains(body, []byte(secret)) {
				t.Errorf("GET %s: the credential appears in the body %q", p, body)
			}
		}
	})
}

// 7. credential forwarding.
func (e *e2e) testCredentials(t *testing.T) {
	const (
		apiKey = "secret-api-key-0d9f8e7c"
		imgTok = "secret-image-token-5a4b3c"
		bearer = "Bearer secret-bearer-1b2c3d"
	)
	okID := "6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5f01"
	// Each refused case has an InfraEnv of its own: when the ignition call
	// is refused, isoedge cancels the calls running beside it, which may
	// still reach the fake after the answer, among the next case's calls.
	failIDs := make([]string, 6)
	for i := range failIDs {
		failIDs[i] = fmt.Sprintf("6f1c1b0e-7a34-4b1e-9d7c-1f2a3b4c5f%02d", 10+i)
		e.newEnv(failIDs[i], func(ie *infraEnv) { ie.ignStatus = 401 })
	}
	e.newEnv(okID, nil)
	tokJWT := makeJWT(`{"exp":1999999999,"sub":"` + okID + `"}`)
	keyJWT := makeJWT(`{"infra_env_id":"` + okID + `"}`)
	tokFailJWT := makeJWT(`{"sub":"` + failIDs[4] + `"}`)
	keyFailJWT := makeJWT(`{"infra_env_id":"` + failIDs[5] + `"}`)
	secrets := []string{apiKey, imgTok, bearer, strings.TrimPrefix(bearer, "Bearer "), tokJWT, keyJWT, tokFailJWT, keyFailJWT}

	type want struct {
		apiKey, imageToken, authorization string
	}
	cases := []struct {
		name  string
		path  string
		hdr   map[string]string
		id    string
		code  int
		wantC want
	}{
		{"api_key query", fullISOPath(okID) + "?api_key=" + apiKey, nil, okID, 200, want{apiKey: apiKey}},
		{"image_token query", fullISOPath(okID) + "?image_token=" + imgTok, nil, okID, 200, want{imageToken: imgTok}},
		{"Authorization header", fullISOPath(okID), map[string]string{"Authorization": bearer}, okID, 200, want{authorization: bearer}},
		{"bytoken", "/bytoken/" + tokJWT + "/" + ocpVersion + "/x86_64/full.iso", nil, okID, 200, want{imageToken: tokJWT}},
		{"byapikey", "/byapikey/" + keyJWT + "/" + ocpVersion + "/x86_64/full.iso", nil, okID, 200, want{apiKey: keyJWT}},
		{"api_key wins over Authorization", fullISOPath(okID) + "?api_key=" + apiKey, map[string]string{"Authorization": bearer}, okID, 200, want{apiKey: apiKey}},
		{"pxe api_key", initrdPath(okID) + "&api_key=" + apiKey, nil, okID, 200, want{apiKey: apiKey}},
		{"pxe image_token", initrdPath(okID) + "&image_token=" + imgTok, nil, okID, 200, want{imageToken: imgTok}},
		{"pxe Authorization", initrdPath(okID), map[string]string{"Authorization": bearer}, okID, 200, want{authorization: bearer}},
		{"no credential", fullISOPath(okID), nil, okID, 200, want{}},
		// failures: the credential must not be echoed
		{"fail api_key", fullISOPath(failIDs[0]) + "?api_key=" + apiKey, nil, failIDs[0], 401, want{apiKey: apiKey}},
		{"fail pxe api_key", initrdPath(failIDs[1]) + "&api_key=" + apiKey, nil, failIDs[1], 401, want{apiKey: apiKey}},
		{"fail pxe image_token", initrdPath(failIDs[2]) + "&image_token=" + imgTok, nil, failIDs[2], 401, want{imageToken: imgTok}},
		{"fail pxe Authorization", initrdPath(failIDs[3]), map[string]string{"Authorization": bearer}, failIDs[3], 401, want{authorization: bearer}},
		{"fail bytoken", "/bytoken/" + tokFailJWT + "/" + ocpVersion + "/x86_64/full.iso", nil, failIDs[4], 401, want{imageToken: tokFailJWT}},
		{"fail byapikey", "/byapikey/" + keyFailJWT + "/" + ocpVersion + "/x86_64/full.iso", nil, failIDs[5], 401, want{apiKey: keyFailJWT}},
	}
	for _, c := range cases {
		before := len(e.fake.requests(c.id))
		resp, body := e.in.do(t, "GET", c.path, c.hdr)
		if resp.StatusCode != c.code {
			t.Errorf("%s: status %d, want %d (body %.200q)", c.name, resp.StatusCode, c.code, body)
		}
		for _, s := range secrets {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("%s: response body contains credential %q", c.name, s)
			}
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				for _, s := range secrets {
					if strings.Contains(v, s) {
						t.Errorf("%s: response header %s contains credential %q", c.name, k, s)
					}
				}
			}
		}
		got := e.fake.requests(c.id)[before:]
		if len(got) == 0 {
			t.Errorf("%s: the fake received no request for %s", c.name, c.id)
			continue
		}
		for _, r := range got {
			if !strings.HasPrefix(r.Path, infraEnvPrefix+c.id) {
				t.Errorf("%s: upstream path %q does not address %s", c.name, r.Path, c.id)
			}
			if v := r.Query.Get("api_key"); v != c.wantC.apiKey {
				t.Errorf("%s: %s request api_key=%q, want %q", c.name, r.Kind, v, c.wantC.apiKey)
			}
			if v := r.Header.Get("Image-Token"); v != c.wantC.imageToken {
				t.Errorf("%s: %s request Image-Token %q, want %q", c.name, r.Kind, v, c.wantC.imageToken)
			}
			if v := r.Header.Get("Authorization"); v != c.wantC.authorization {
				t.Errorf("%s: %s request Authorization %q, want %q", c.name, r.Kind, v, c.wantC.authorization)
			}
			if _, ok := r.Query["image_token"]; ok {
				t.Errorf("%s: image_token forwarded as a query parameter", c.name)
			}
		}
	}
	// Bad JWTs are 404 and never reach assisted-service.
	n := len(e.fake.allRequests())
	for _, tok := range []string{"not-a-jwt", "a.b.c", makeJWT(`{"name":"x"}`)} {
		if resp, body := e.in.do(t, "GET", "/bytoken/"+tok+"/"+ocpVersion+"/x86_64/full.iso", nil); resp.StatusCode != 404 {
			t.Errorf("bytoken %q: status %d, want 404 (%q)", tok, resp.StatusCode, body)
		}
	}
	if m := len(e.fake.allRequests()); m != n {
		t.Errorf("bad JWTs caused %d upstream requests", m-n)
	}
}

// ---------------------------------------------------------------------------

// blobDigests lists the committed blobs under dataDir/blobs and any other
// regular files found there.
func blobDigests(t *testing.T, dataDir string) (blobs, others []string) {
	t.Helper()
	root := filepath.Join(dataDir, "blobs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		if _, err := hex.DecodeString(name); err == nil && len(name) == 64 {
			blobs = append(blobs, name)
		} else {
			others = append(others, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return blobs, others
}

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// 8. Images failing validation (or download) are never stored or served;
// default size checks apply.
func TestFailedValidationNeverServed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, _ := fixture.Build(t, dir, fixture.Options{KernelSize: 6 << 20, RootfsSize: 110 << 20})
	bogus, _ := fixture.Build(t, dir, fixture.Options{VolumeID: "bogus-1", KernelSize: 6 << 20, RootfsSize: 110 << 20})
	smallKernel, _ := fixture.Build(t, dir, fixture.Options{RootfsSize: 110 << 20})
	goodSize := func() int64 {
		st, err := os.Stat(good)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}()

	// Serves the first half of the good ISO with the full Content-Length.
	var truncatedHits atomic.Int64
	trunc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		truncatedHits.Add(1)
		f, err := os.Open(good)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Length", strconv.FormatInt(goodSize, 10))
		w.WriteHeader(200)
		buf := make([]byte, goodSize/2)
		_, _ = f.ReadAt(buf, 0)
		_, _ = w.Write(buf)
	}))
	t.Cleanup(trunc.Close)

	fake := newFakeAS(t)
	id := "7a000000-0000-4000-8000-000000000001"
	fake.set(id, &infraEnv{ignition: ignitionFor("validation"), lastModified: fakeLastMod})

	env := baseEnv(t.TempDir())
	delete(env, "OS_IMAGE_MIN_ROOTFS_BYTES")
	delete(env, "OS_IMAGE_MIN_KERNEL_BYTES")
	env["ASSISTED_SERVICE_HOST"] = fake.hostPort()
	env["OS_IMAGES"] = osImagesJSON(t,
		config.OSImage{OpenshiftVersion: "4.17", CPUArchitecture: "x86_64", URL: "file://" + good, Version: "417.94.1"},
		config.OSImage{OpenshiftVersion: "4.90", CPUArchitecture: "x86_64", URL: "file://" + bogus, Version: "490.94.1"},
		config.OSImage{OpenshiftVersion: "4.91", CPUArchitecture: "x86_64", URL: trunc.URL + "/truncated.iso", Version: "491.94.1"},
		config.OSImage{OpenshiftVersion: "4.92", CPUArchitecture: "x86_64", URL: "file://" + smallKernel, Version: "492.94.1"},
	)
	in := startInstance(t, env)
	h := in.waitReady(t, 120*time.Second)
	if !h.Ready {
		t.Errorf("health says not ready: %+v", h)
	}
	// A failed image is retried after a backoff (5 s, then longer) and is
	// "downloading" again meanwhile; when the good image took longer than
	// that, the first 200 may show a retry. Wait for a moment when every
	// bad image is between attempts.
	var states, errs map[string]string
	byVersion := func(h healthDoc) {
		states, errs = map[string]string{}, map[string]string{}
		for _, im := range h.Images {
			states[im.OpenshiftVersion] = im.State
			errs[im.OpenshiftVersion] = im.Error
		}
	}
	byVersion(h)
	for deadline := time.Now().Add(120 * time.Second); states["4.90"] != "failed" || states["4.91"] != "failed" || states["4.92"] != "failed"; {
		if time.Now().After(deadline) {
			break // the checks below say what is wrong
		}
		time.Sleep(20 * time.Millisecond)
		_, body := in.do(t, "GET", "/health", nil)
		var h healthDoc
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatalf("/health body is not JSON: %v: %q", err, body)
		}
		byVersion(h)
	}
	if states["4.17"] != "ready" {
		t.Errorf("good image state %q (%s)", states["4.17"], errs["4.17"])
	}
	for _, v := range []string{"4.90", "4.91", "4.92"} {
		if states[v] != "failed" || errs[v] == "" {
			t.Errorf("image %s: state %q, error %q; want failed with a message", v, states[v], errs[v])
		}
	}
	if !strings.Contains(strings.ToLower(errs["4.90"]), "volume") {
		t.Errorf("bogus volume id error %q does not mention the volume id", errs["4.90"])
	}
	if !strings.Contains(strings.ToLower(errs["4.92"]), "kernel") {
		t.Errorf("small kernel error %q does not mention the kernel", errs["4.92"])
	}
	if truncatedHits.Load() == 0 {
		t.Error("the truncated image was never requested")
	}

	for _, v := range []string{"4.90", "4.91", "4.92"} {
		for _, p := range []string{
			"/byid/" + id + "/" + v + "/x86_64/full.iso",
			"/images/" + id + "/pxe-initrd?version=" + v,
			"/boot-artifacts/kernel?version=" + v,
		} {
			resp, body := in.do(t, "GET", p, nil)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("GET %s: status %d, Retry-After %q; want 503 with Retry-After (body %.100q)", p, resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
		}
	}
	resp, _ := in.do(t, "HEAD", "/byid/"+id+"/4.17/x86_64/full.iso", nil)
	if resp.StatusCode != 200 || resp.ContentLength != goodSize {
		t.Errorf("good image: HEAD full.iso status %d, length %d; want 200, %d", resp.StatusCode, resp.ContentLength, goodSize)
	}

	blobs, others := blobDigests(t, in.dataDir)
	want := fileSHA256(t, good)
	if len(blobs) != 1 || blobs[0] != want {
		t.Errorf("blobs under DATA_DIR: %v; want only the good image %s", blobs, want)
	}
	if len(others) > 0 {
		t.Logf("non-blob files under blobs/ (in-flight retries?): %v", others)
	}
}

// 9. A restart on the same DATA_DIR serves from the store without
// downloading anything.
func TestRestartUsesStore(t *testing.T) {
	t.Parallel()
	iso, _ := fixture.Build(t, t.TempDir(), fixture.Options{})
	var failing atomic.Bool
	var hits atomic.Int64
	imgSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		http.ServeFile(w, r, iso)
	}))
	t.Cleanup(imgSrv.Close)

	fake := newFakeAS(t)
	id := "7b000000-0000-4000-8000-000000000001"
	fake.set(id, &infraEnv{ignition: ignitionFor("restart"), lastModified: fakeLastMod,
		kargs: ptr(`[{"operation":"append","value":"restart=1"}]`)})

	root := t.TempDir()
	env := baseEnv(root)
	env["ASSISTED_SERVICE_HOST"] = fake.hostPort()
	env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{
		OpenshiftVersion: ocpVersion, CPUArchitecture: "x86_64", URL: imgSrv.URL + "/rhcos.iso", Version: rhcosVersion,
	})

	first := startInstance(t, env)
	h1 := first.waitReady(t, 120*time.Second)
	if hits.Load() == 0 {
		t.Fatal("the first run did not download through the image server")
	}
	_, before := first.get(t, fullISOPath(id), nil, http.StatusOK)
	first.stop(t)

	failing.Store(true)
	hits.Store(0)
	second := startInstance(t, env)
	h2 := second.waitReady(t, 120*time.Second)
	if n := hits.Load(); n != 0 {
		t.Errorf("the restarted instance made %d requests to the image server", n)
	}
	if len(h1.Images) != 1 || len(h2.Images) != 1 || h2.Images[0].State != "ready" || h2.Images[0].Digest != h1.Images[0].Digest {
		t.Errorf("health after restart %+v, before %+v", h2, h1)
	}
	_, after := second.get(t, fullISOPath(id), nil, http.StatusOK)
	if !bytes.Equal(before, after) {
		t.Error("full.iso after the restart differs from before")
	}
	if got, want := ignitionOf(t, after), ignitionFor("restart"); !bytes.Equal(got, want) {
		t.Error("wrong ignition after restart")
	}
}

// 10. Sample mode: no image list, no assisted-service.
func TestSampleMode(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	env := map[string]string{
		"DATA_DIR":      filepath.Join(root, "data"),
		"DATA_TEMP_DIR": filepath.Join(root, "tmp"),
	}
	in := startInstance(t, env)
	h := in.waitReady(t, 120*time.Second)
	if len(h.Images) != 1 || h.Images[0].OpenshiftVersion != "4.99" || h.Images[0].State != "ready" {
		t.Fatalf("health %+v", h)
	}
	const sampleID = "00000000-0000-0000-0000-000000000000"
	want, err := os.ReadFile(filepath.Join(in.dataDir, "ignition", sampleID+".ign"))
	if err != nil {
		t.Fatalf("sample ignition not written: %v", err)
	}
	var js map[string]any
	if err := json.Unmarshal(want, &js); err != nil {
		t.Errorf("sample ignition is not JSON: %v", err)
	}
	resp, body := in.get(t, "/byid/"+sampleID+"/4.99/x86_64/full.iso", nil, http.StatusOK)
	if resp.ContentLength != int64(len(body)) || len(body) < 1<<20 {
		t.Errorf("sample full.iso: Content-Length %d, body %d", resp.ContentLength, len(body))
	}
	if got := ignitionOf(t, body); !bytes.Equal(got, want) {
		t.Errorf("config.ign in the sample ISO = %.200q, want the file in DATA_DIR/ignition", got)
	}
	// Other ids have no ignition.
	in.get(t, "/byid/11111111-0000-0000-0000-000000000000/4.99/x86_64/full.iso", nil, http.StatusNotFound)
	// The sample's boot artifacts are served too.
	in.get(t, "/boot-artifacts/kernel?version=4.99", nil, http.StatusOK)
}
