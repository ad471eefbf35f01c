package upstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/isoedge/isoedge/config"
	rt "github.com/isoedge/isoedge/internal/registrytest"
)

const (
	isoPath = "/coreos/coreos-x86_64.iso"
	sumPath = isoPath + ".sha256"
)

// randomISO is n bytes that do not compress, so gzip and zstd layers are
// about as large as the file.
func randomISO(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// isoFiles is the machine-os-images layout: the ISO and its .sha256 as
// printf '%s' writes it (64 hex digits, no newline).
func isoFiles(iso []byte) map[string][]byte {
	return map[string][]byte{isoPath: iso, sumPath: []byte(sha256Hex(iso))}
}

func newSource(t *testing.T, cfg RegistryConfig) *RegistrySource {
	t.Helper()
	src, err := NewRegistrySource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func pullFile(t *testing.T, src *RegistrySource, req RegistryRequest) ([]byte, RegistryResult, error) {
	t.Helper()
	var buf bytes.Buffer
	res, err := src.Fetch(context.Background(), req, &buf)
	return buf.Bytes(), res, err
}

func mustPull(t *testing.T, src *RegistrySource, req RegistryRequest) ([]byte, RegistryResult) {
	t.Helper()
	got, res, err := pullFile(t, src, req)
	if err != nil {
		t.Fatalf("Fetch(%s): %v", req.URL, err)
	}
	if res.N != int64(len(got)) || res.SHA256 != sha256Hex(got) {
		t.Fatalf("result %+v does not describe the %d bytes written (sha256 %s)", res, len(got), sha256Hex(got))
	}
	return got, res
}

// wantErr checks that err wraps kind (unless nil) and says every part.
func wantErr(t *testing.T, err error, kind error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one saying %q", parts)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("error %q does not wrap %v", err, kind)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// TestRegistryPull pulls from a real registry (distribution 2.8 over TLS
// with htpasswd) holding images pushed by go-containerregistry.
func TestRegistryPull(t *testing.T) {
	reg := rt.Start(t)
	src := newSource(t, RegistryConfig{AuthFile: reg.AuthFile, CAFile: reg.CAFile})
	iso := randomISO(3<<20+123, 1)

	// machine-os-images: a base layer, the COPY of /coreos, then scripts.
	isoLayer := rt.Layer(t, rt.Files(isoFiles(iso))...)
	mosImage := rt.Image(t, "amd64",
		rt.Layer(t, rt.Entry{Name: "usr/bin/true", Body: []byte("base")}),
		isoLayer,
		rt.Layer(t, rt.Entry{Name: "bin/copy-iso", Body: []byte("#!/bin/bash\n")}))
	mosURL := reg.Push(t, "openshift/machine-os-images:4.99", mosImage)

	t.Run("by digest, exact bytes, checksum from the image", func(t *testing.T) {
		var progress [][2]int64
		got, res := mustPull(t, src, RegistryRequest{URL: mosURL, Arch: "x86_64",
			Progress: func(done, total int64) { progress = append(progress, [2]int64{done, total}) }})
		if !bytes.Equal(got, iso) {
			t.Fatalf("got %d bytes, want the %d pushed", len(got), len(iso))
		}
		if res.Checksum != sha256Hex(iso) {
			t.Errorf("Checksum = %q, want the .sha256 content", res.Checksum)
		}
		if want := digestOf(t, mosImage); res.Digest != want || !strings.HasSuffix(mosURL, want) {
			t.Errorf("Digest = %s, want %s", res.Digest, want)
		}
		if want := digestOf(t, isoLayer); res.Layer != want {
			t.Errorf("Layer = %s, want the ISO's layer %s", res.Layer, want)
		}
		n := int64(len(iso))
		if len(progress) == 0 || progress[len(progress)-1] != [2]int64{n, n} {
			t.Errorf("progress %v does not end at (%d, %d)", progress, n, n)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		wrong := "Wr0ng-" + reg.Password
		bad := newSource(t, RegistryConfig{AuthFile: reg.WriteAuthFile(t, reg.User, wrong), CAFile: reg.CAFile})
		got, _, err := pullFile(t, bad, RegistryRequest{URL: mosURL, Arch: "x86_64"})
		wantErr(t, err, ErrRegistryAuth, "401", "refused the credentials", reg.Host)
		for _, secret := range []string{wrong, reg.Password, base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + wrong))} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows a credential", err)
			}
		}
		if len(got) != 0 {
			t.Errorf("%d bytes written despite the error", len(got))
		}
	})

	t.Run("no credentials", func(t *testing.T) {
		anon := newSource(t, RegistryConfig{CAFile: reg.CAFile})
		_, _, err := pullFile(t, anon, RegistryRequest{URL: mosURL, Arch: "x86_64"})
		wantErr(t, err, ErrRegistryAuth, "401", "set REGISTRY_AUTH_FILE")
	})

	t.Run("auth file without the host", func(t *testing.T) {
		other := newSource(t, RegistryConfig{AuthFile: writeAuth(t, `{"auths":{"quay.io":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("a:b"))+`"}}}`), CAFile: reg.CAFile})
		_, _, err := pullFile(t, other, RegistryRequest{URL: mosURL, Arch: "x86_64"})
		wantErr(t, err, ErrRegistryAuth, "401", "no entry for "+reg.Host)
	})

	t.Run("certificate not trusted", func(t *testing.T) {
		untrusted := newSource(t, RegistryConfig{AuthFile: reg.AuthFile})
		_, _, err := pullFile(t, untrusted, RegistryRequest{URL: mosURL, Arch: "x86_64"})
		wantErr(t, err, nil, "certificate", "plain http to a registry refused")
	})

	t.Run("checksum file does not match", func(t *testing.T) {
		bad := map[string][]byte{isoPath: iso, sumPath: []byte(sha256Hex([]byte("another image")) + "\n")}
		url := reg.PushISO(t, "bad/sum", bad, "amd64")
		_, _, err := pullFile(t, src, RegistryRequest{URL: url, Arch: "x86_64"})
		wantErr(t, err, ErrChecksumMismatch, sumPath, sha256Hex(iso))
	})

	t.Run("checksum file before the ISO, whitespace around it", func(t *testing.T) {
		url := reg.Push(t, "sum/first:v1", rt.Image(t, "amd64", rt.Layer(t,
			rt.Entry{Name: sumPath, Body: []byte("  " + strings.ToUpper(sha256Hex(iso)) + " \n")},
			rt.Entry{Name: isoPath, Body: iso})))
		got, res := mustPull(t, src, RegistryRequest{URL: url, Arch: "x86_64"})
		if !bytes.Equal(got, iso) || res.Checksum != sha256Hex(iso) {
			t.Fatalf("got %d bytes, checksum %q", len(got), res.Checksum)
		}
	})

	t.Run("entry sha256", func(t *testing.T) {
		_, res := mustPull(t, src, RegistryRequest{URL: mosURL, Arch: "x86_64", SHA256: strings.ToUpper(sha256Hex(iso))})
		if res.SHA256 != sha256Hex(iso) {
			t.Errorf("SHA256 = %s", res.SHA256)
		}
		other := sha256Hex([]byte("x"))
		_, _, err := pullFile(t, src, RegistryRequest{URL: mosURL, Arch: "x86_64", SHA256: other})
		wantErr(t, err, ErrChecksumMismatch, other)
		// Without a .sha256 in the image the entry's digest is the check.
		url := reg.PushISO(t, "no/sum", map[string][]byte{isoPath: iso}, "amd64")
		_, _, err = pullFile(t, src, RegistryRequest{URL: url, Arch: "x86_64", SHA256: other})
		wantErr(t, err, ErrChecksumMismatch, "the entry's sha256 is "+other)
		_, res = mustPull(t, src, RegistryRequest{URL: url, Arch: "x86_64"})
		if res.Checksum != "" {
			t.Errorf("Checksum = %q for an image without .sha256", res.Checksum)
		}
	})

	t.Run("multi-arch index", func(t *testing.T) {
		armISO := randomISO(1<<20, 2)
		images := map[string]v1.Image{
			"amd64": rt.Image(t, "amd64", rt.Layer(t, rt.Files(isoFiles(iso))...)),
			"arm64": rt.Image(t, "arm64", rt.Layer(t, rt.Files(map[string][]byte{
				"/coreos/coreos-aarch64.iso": armISO, "/coreos/coreos-aarch64.iso.sha256": []byte(sha256Hex(armISO)),
			})...)),
		}
		for _, list := range []struct {
			name string
			idx  v1.ImageIndex
		}{{"oci-index", rt.Index(images)}, {"docker-list", rt.DockerList(rt.Index(images))}} {
			url := reg.PushIndex(t, "multi/"+list.name+":latest", list.idx)
			for _, c := range []struct {
				arch, platform string
				want           []byte
			}{{"x86_64", "amd64", iso}, {"aarch64", "arm64", armISO}, {"arm64", "arm64", armISO}} {
				got, res := mustPull(t, src, RegistryRequest{URL: url, Arch: c.arch})
				if !bytes.Equal(got, c.want) {
					t.Errorf("%s %s: got the wrong file (%d bytes)", list.name, c.arch, len(got))
				}
				if want := digestOf(t, images[c.platform]); res.Digest != want {
					t.Errorf("%s %s: Digest = %s, want the %s image %s", list.name, c.arch, res.Digest, c.platform, want)
				}
			}
			_, _, err := pullFile(t, src, RegistryRequest{URL: url, Arch: "ppc64le"})
			wantErr(t, err, ErrNoPlatform, "linux/ppc64le", "linux/amd64", "linux/arm64")
		}
	})

	t.Run("tag reference", func(t *testing.T) {
		url := "docker://" + reg.Host + "/openshift/machine-os-images:4.99"
		images, err := config.ParseOSImages(`[{"openshift_version":"4.99","cpu_architecture":"x86_64","version":"499.0","url":"` + url + `"}]`)
		if err != nil {
			t.Fatal(err)
		}
		if !images[0].MovableTag || images[0].Path != isoPath {
			t.Errorf("entry = %+v, want MovableTag and the default path", images[0])
		}
		got, res := mustPull(t, src, RegistryRequestFor(images[0]))
		if !bytes.Equal(got, iso) || res.Digest != digestOf(t, mosImage) {
			t.Errorf("tag pull: %d bytes, digest %s", len(got), res.Digest)
		}
	})

	t.Run("path missing", func(t *testing.T) {
		_, _, err := pullFile(t, src, RegistryRequest{URL: mosURL, Arch: "x86_64", Path: "/coreos/other.iso"})
		wantErr(t, err, ErrFileNotFound, "/coreos/other.iso", "none of the image's 3 layers")
		// A single image is used whatever its platform; the default path
		// of another architecture is simply not in it.
		_, _, err = pullFile(t, src, RegistryRequest{URL: mosURL, Arch: "s390x"})
		wantErr(t, err, ErrFileNotFound, "/coreos/coreos-s390x.iso")
	})

	t.Run("explicit path", func(t *testing.T) {
		got, _ := mustPull(t, src, RegistryRequest{URL: mosURL, Arch: "x86_64", Path: "/bin/copy-iso"})
		if string(got) != "#!/bin/bash\n" {
			t.Errorf("got %q", got)
		}
		for _, bad := range []string{"coreos/coreos-x86_64.iso", "/coreos/../coreos/coreos-x86_64.iso", "/"} {
			_, _, err := pullFile(t, src, RegistryRequest{URL: mosURL, Arch: "x86_64", Path: bad})
			wantErr(t, err, ErrFileNotFound, "not an absolute, clean path")
		}
	})

	t.Run("later layer deletes the file", func(t *testing.T) {
		url := reg.Push(t, "whiteout/file:v1", rt.Image(t, "amd64", isoLayer, rt.Layer(t, rt.Whiteout(isoPath))))
		_, _, err := pullFile(t, src, RegistryRequest{URL: url, Arch: "x86_64"})
		wantErr(t, err, ErrFileNotFound, "not in the image", "deleted (whiteout) in layer 2 of 2")
	})

	t.Run("later layer replaces the file", func(t *testing.T) {
		newer := randomISO(2<<20, 3)
		top := rt.Layer(t, rt.Files(isoFiles(newer))...)
		url := reg.Push(t, "replace/file:v1", rt.Image(t, "amd64", isoLayer, top))
		got, res := mustPull(t, src, RegistryRequest{URL: url, Arch: "x86_64"})
		if !bytes.Equal(got, newer) {
			t.Fatalf("got %d bytes, not the later layer's %d", len(got), len(newer))
		}
		if res.Layer != digestOf(t, top) || res.Checksum != sha256Hex(newer) {
			t.Errorf("result %+v, want the top layer and its checksum", res)
		}
	})

	t.Run("zstd OCI image", func(t *testing.T) {
		url := reg.Push(t, "zstd/image:v1", rt.OCI(rt.Image(t, "amd64", rt.ZstdLayer(t, rt.Files(isoFiles(iso))...))))
		got, _ := mustPull(t, src, RegistryRequest{URL: url, Arch: "x86_64"})
		if !bytes.Equal(got, iso) {
			t.Fatal("zstd layer: wrong bytes")
		}
	})

	t.Run("unknown manifest", func(t *testing.T) {
		url := "docker://" + reg.Host + "/openshift/machine-os-images@sha256:" + sha256Hex([]byte("nothing"))
		_, _, err := pullFile(t, src, RegistryRequest{URL: url, Arch: "x86_64"})
		wantErr(t, err, ErrImageNotFound, "404", "MANIFEST_UNKNOWN")
	})

	t.Run("stalled blob", func(t *testing.T) {
		stalled := newSource(t, RegistryConfig{AuthFile: reg.AuthFile, StallTimeout: 200 * time.Millisecond,
			Transport: &stallBlobs{next: reg.Transport(), after: 256 << 10}})
		got, _, err := pullFile(t, stalled, RegistryRequest{URL: mosURL, Arch: "x86_64"})
		wantErr(t, err, ErrStalled, "no data for 200ms")
		if len(got) >= len(iso) {
			t.Errorf("%d bytes written by a stalled pull", len(got))
		}
		// The next attempt starts again, into an empty writer.
		if again, _ := mustPull(t, src, RegistryRequest{URL: mosURL, Arch: "x86_64"}); !bytes.Equal(again, iso) {
			t.Error("the pull after a stall got other bytes")
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var buf bytes.Buffer
		_, err := src.Fetch(ctx, RegistryRequest{URL: mosURL, Arch: "x86_64", Progress: func(done, total int64) { cancel() }}, &buf)
		wantErr(t, err, context.Canceled)
		if buf.Len() >= len(iso) {
			t.Errorf("%d bytes written by a cancelled pull", buf.Len())
		}
	})

	t.Run("file larger than the bound", func(t *testing.T) {
		small := newSource(t, RegistryConfig{AuthFile: reg.AuthFile, CAFile: reg.CAFile, MaxBytes: int64(len(iso)) - 1})
		got, _, err := pullFile(t, small, RegistryRequest{URL: mosURL, Arch: "x86_64"})
		wantErr(t, err, ErrTooLarge, "bound")
		if len(got) != 0 {
			t.Errorf("%d bytes written past a refused size", len(got))
		}
	})
}

// stallBlobs delivers `after` bytes of every blob, then nothing until the
// request is cancelled.
type stallBlobs struct {
	next  http.RoundTripper
	after int64
}

func (s *stallBlobs) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err == nil && req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
		resp.Body = &stallingBody{ReadCloser: resp.Body, left: s.after, ctx: req.Context()}
	}
	return resp, err
}

type stallingBody struct {
	io.ReadCloser
	left int64
	ctx  context.Context
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		<-b.ctx.Done()
		return 0, b.ctx.Err()
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
