package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/isoedge/isoedge/config"
	rt "github.com/isoedge/isoedge/internal/registrytest"
)

// scanLocal runs the layer scan of Fetch on an image built in memory: the
// layer semantics without a registry.
func scanLocal(t *testing.T, img v1.Image, want string, limit int64) ([]byte, *layerScan, error) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	s := &layerScan{img: img, layers: m.Layers, budget: 2 * limit, bound: 2 * limit, limit: limit,
		file: isoPath, sum: sumPath, w: &buf, want: want}
	err = s.run(context.Background())
	return buf.Bytes(), s, err
}

// probe wraps a layer to count how often it is opened, and optionally to
// fail at the end of its blob as go-containerregistry does on a digest
// mismatch.
type probe struct {
	v1.Layer
	opened   *atomic.Int32
	failEOF  error
	mediaTyp types.MediaType
}

func (p probe) Compressed() (io.ReadCloser, error) {
	p.opened.Add(1)
	rc, err := p.Layer.Compressed()
	if err != nil || p.failEOF == nil {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(rc, errReader{p.failEOF}), rc}, nil
}

func (p probe) MediaType() (types.MediaType, error) {
	if p.mediaTyp != "" {
		return p.mediaTyp, nil
	}
	return p.Layer.MediaType()
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// rawLayer is an uncompressed tar layer (OCI tar media type).
type rawLayer struct{ data []byte }

func (l rawLayer) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(l.data))
	return h, err
}
func (l rawLayer) DiffID() (v1.Hash, error) { return l.Digest() }
func (l rawLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.data)), nil
}
func (l rawLayer) Uncompressed() (io.ReadCloser, error)    { return l.Compressed() }
func (l rawLayer) Size() (int64, error)                    { return int64(len(l.data)), nil }
func (l rawLayer) MediaType() (types.MediaType, error)     { return types.OCIUncompressedLayer, nil }
func (l rawLayer) String() string                          { return "raw layer" }
func (l rawLayer) Exists() (bool, error)                   { return true, nil }
func (l rawLayer) Annotations() (map[string]string, error) { return nil, nil }

func TestLayerScanSemantics(t *testing.T) {
	iso := []byte("the original ISO")
	newer := []byte("a newer ISO")
	base := rt.Layer(t, rt.Files(isoFiles(iso))...)
	const limit = 1 << 20
	for _, c := range []struct {
		name    string
		top     []rt.Entry // the layer above base
		want    []byte     // the file, nil when an error is expected
		sum     string     // Checksum expected
		kind    error
		errText string
	}{
		{name: "untouched", top: []rt.Entry{{Name: "etc/motd", Body: []byte("hi")}}, want: iso, sum: sha256Hex(iso)},
		{name: "dot-slash names", top: []rt.Entry{{Name: "./coreos/coreos-x86_64.iso", Body: newer}}, want: newer, sum: sha256Hex(iso)},
		{name: "parent deleted", top: []rt.Entry{rt.Whiteout("/coreos")}, kind: ErrFileNotFound, errText: "/coreos is deleted (whiteout) in layer 2 of 2"},
		{name: "parent opaque", top: []rt.Entry{{Name: "coreos/.wh..wh..opq"}}, kind: ErrFileNotFound, errText: "directory /coreos is made opaque"},
		{name: "root opaque", top: []rt.Entry{{Name: ".wh..wh..opq"}}, kind: ErrFileNotFound, errText: "directory / is made opaque"},
		{name: "opaque parent with a new file", top: []rt.Entry{{Name: "coreos/.wh..wh..opq"}, {Name: isoPath, Body: newer}}, want: newer, sum: ""},
		{name: "whiteout after the file in its layer", top: []rt.Entry{{Name: isoPath, Body: newer}, rt.Whiteout(isoPath)}, want: newer, sum: sha256Hex(iso)},
		{name: "other overlay names ignored", top: []rt.Entry{{Name: "coreos/.wh..wh.plnk"}}, want: iso, sum: sha256Hex(iso)},
		{name: "sibling whiteout", top: []rt.Entry{rt.Whiteout("/coreos/coreos-aarch64.iso")}, want: iso, sum: sha256Hex(iso)},
		{name: "checksum deleted", top: []rt.Entry{rt.Whiteout(sumPath)}, want: iso, sum: ""},
		{name: "parent is a symlink", top: []rt.Entry{{Name: "coreos", Symlink: "/usr/share/coreos"}}, kind: ErrFileNotFound, errText: "/coreos is a symbolic link (links are not followed)"},
		{name: "parent is a file", top: []rt.Entry{{Name: "coreos", Body: []byte("x")}}, kind: ErrFileNotFound, errText: "/coreos is not a directory"},
		{name: "file is a symlink", top: []rt.Entry{{Name: isoPath, Symlink: "/srv/rhcos.iso"}}, kind: ErrFileNotFound, errText: `a symbolic link to "/srv/rhcos.iso"`},
		{name: "file is a hard link", top: []rt.Entry{{Name: "srv/x.iso", Body: newer}, {Name: isoPath, Hardlink: "srv/x.iso"}}, kind: ErrFileNotFound, errText: "a hard link"},
		{name: "file is a directory", top: []rt.Entry{{Name: isoPath, Dir: true}}, kind: ErrFileNotFound, errText: "a directory"},
		{name: "file twice in a layer", top: []rt.Entry{{Name: isoPath, Body: newer}, {Name: isoPath, Body: iso}}, kind: ErrBadImage, errText: "written twice"},
		{name: "checksum twice in a layer, the later wins", top: []rt.Entry{{Name: sumPath, Body: []byte(sha256Hex(iso))}, {Name: sumPath, Body: []byte(sha256Hex(newer))}, {Name: isoPath, Body: newer}}, want: newer, sum: sha256Hex(newer)},
		{name: "checksum not hex", top: []rt.Entry{{Name: sumPath, Body: []byte(sha256Hex(iso) + "  coreos-x86_64.iso\n")}}, kind: ErrBadImage, errText: "does not hold a hex sha256 digest"},
		{name: "checksum too large", top: []rt.Entry{{Name: sumPath, Body: bytes.Repeat([]byte("a"), maxChecksumFile+1)}}, kind: ErrBadImage, errText: "want a hex sha256 digest"},
		{name: "checksum is a symlink", top: []rt.Entry{{Name: sumPath, Symlink: "x"}}, kind: ErrBadImage, errText: "symbolic link"},
		{name: "file too large", top: []rt.Entry{{Name: isoPath, Body: make([]byte, limit+1)}}, kind: ErrTooLarge, errText: "more than the bound"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, s, err := scanLocal(t, rt.Image(t, "amd64", base, rt.Layer(t, c.top...)), "", limit)
			if c.want == nil {
				wantErr(t, err, c.kind, c.errText)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) || s.checksum != c.sum {
				t.Errorf("got %q with checksum %q, want %q with %q", got, s.checksum, c.want, c.sum)
			}
		})
	}
}

// TestLayerScanReadsOnlyWhatDecides: layers below the one that decides
// both the file and its .sha256 are never fetched; a .sha256 only found
// lower down is looked for there.
func TestLayerScanReadsOnlyWhatDecides(t *testing.T) {
	iso := []byte("iso bytes")
	var bottomOpened, isoOpened atomic.Int32
	bottom := probe{Layer: rt.Layer(t, rt.Entry{Name: "usr/lib/big", Body: make([]byte, 1<<16)}), opened: &bottomOpened}

	both := probe{Layer: rt.Layer(t, rt.Files(isoFiles(iso))...), opened: &isoOpened}
	img, err := mutate.AppendLayers(rt.Image(t, "amd64"), bottom, both, rt.Layer(t, rt.Entry{Name: "bin/x", Body: []byte("x")}))
	if err != nil {
		t.Fatal(err)
	}
	got, s, err := scanLocal(t, img, "", 1<<20)
	if err != nil || !bytes.Equal(got, iso) || s.checksum != sha256Hex(iso) {
		t.Fatalf("got %q, checksum %q, %v", got, s.checksum, err)
	}
	if bottomOpened.Load() != 0 || isoOpened.Load() != 1 {
		t.Errorf("bottom layer opened %d times (want 0), ISO layer %d (want 1)", bottomOpened.Load(), isoOpened.Load())
	}

	// The .sha256 below the ISO's layer: the lower layers are read for it.
	img, err = mutate.AppendLayers(rt.Image(t, "amd64"),
		rt.Layer(t, rt.Entry{Name: sumPath, Body: []byte(sha256Hex(iso))}),
		bottom,
		rt.Layer(t, rt.Entry{Name: isoPath, Body: iso}))
	if err != nil {
		t.Fatal(err)
	}
	bottomOpened.Store(0)
	got, s, err = scanLocal(t, img, "", 1<<20)
	if err != nil || !bytes.Equal(got, iso) || s.checksum != sha256Hex(iso) || bottomOpened.Load() != 1 {
		t.Fatalf("got %q, checksum %q, %v; middle layer opened %d times", got, s.checksum, err, bottomOpened.Load())
	}
	// The entry's sha256 is compared with a .sha256 read before the file:
	// nothing is streamed.
	img, err = mutate.AppendLayers(rt.Image(t, "amd64"), rt.Layer(t,
		rt.Entry{Name: sumPath, Body: []byte(sha256Hex(iso))}, rt.Entry{Name: isoPath, Body: iso}))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = scanLocal(t, img, sha256Hex([]byte("other")), 1<<20)
	wantErr(t, err, ErrChecksumMismatch, "differs from")
	if len(got) != 0 {
		t.Errorf("%d bytes streamed after the checksums disagreed", len(got))
	}
}

func TestLayerScanFormats(t *testing.T) {
	iso := []byte("raw tar ISO")
	t.Run("uncompressed tar", func(t *testing.T) {
		img, err := mutate.AppendLayers(rt.OCI(rt.Image(t, "amd64")), rawLayer{rt.Tar(t, rt.Files(isoFiles(iso))...)})
		if err != nil {
			t.Fatal(err)
		}
		got, s, err := scanLocal(t, img, "", 1<<20)
		if err != nil || !bytes.Equal(got, iso) || s.checksum != sha256Hex(iso) {
			t.Fatalf("got %q, checksum %q, %v", got, s.checksum, err)
		}
	})
	t.Run("read to the end for the digest check", func(t *testing.T) {
		var n atomic.Int32
		bad := errors.New("error verifying sha256 checksum")
		img, err := mutate.AppendLayers(rt.Image(t, "amd64"), probe{Layer: rt.Layer(t, rt.Files(isoFiles(iso))...), opened: &n, failEOF: bad})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = scanLocal(t, img, "", 1<<20)
		if !errors.Is(err, bad) {
			t.Fatalf("error %v, want the digest check's", err)
		}
	})
	t.Run("foreign layer", func(t *testing.T) {
		var n atomic.Int32
		img, err := mutate.AppendLayers(rt.Image(t, "amd64"), probe{Layer: rt.Layer(t, rt.Files(isoFiles(iso))...), opened: &n, mediaTyp: types.DockerForeignLayer})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = scanLocal(t, img, "", 1<<20)
		wantErr(t, err, ErrBadImage, "not a distributable layer")
		if n.Load() != 0 {
			t.Error("a foreign layer was fetched")
		}
	})
	t.Run("too many layers", func(t *testing.T) {
		l := rt.Layer(t, rt.Entry{Name: "x", Body: []byte("x")})
		layers := make([]v1.Layer, maxLayers+1)
		for i := range layers {
			layers[i] = l
		}
		_, _, err := scanLocal(t, rt.Image(t, "amd64", layers...), "", 1<<20)
		wantErr(t, err, ErrBadImage, "1001 layers")
	})
	t.Run("decompression bound", func(t *testing.T) {
		// 8 MiB of zeros compress to a few KiB; a 1 MiB file bound lets a
		// pull inflate 2 MiB.
		img := rt.Image(t, "amd64", rt.Layer(t, rt.Files(isoFiles(iso))...), rt.Layer(t, rt.Entry{Name: "zeros", Body: make([]byte, 8<<20)}))
		_, _, err := scanLocal(t, img, "", 1<<20)
		wantErr(t, err, ErrTooLarge, "decompress to more than the 2097152 bytes")
	})
}

func TestRegistryErrorRedaction(t *testing.T) {
	ref, _, err := config.ParseDockerURL("docker://registry.example.com/a/b:v1")
	if err != nil {
		t.Fatal(err)
	}
	p := &pull{ref: ref, secrets: []string{"hunter22", "aHVudGVyMjI=", "ab"}, src: &RegistrySource{}}
	err = p.failure(errors.New(`Get "https://cdn.example.com/blobs/x?X-Amz-Signature=s1gn&Expires=9": token hunter22 aHVudGVyMjI= ab`))
	if strings.Contains(err.Error(), "hunter22") || strings.Contains(err.Error(), "aHVudGVyMjI=") || strings.Contains(err.Error(), "s1gn") {
		t.Errorf("error %q shows a secret", err)
	}
	if !strings.Contains(err.Error(), "registry.example.com/a/b:v1") || !strings.Contains(err.Error(), "[redacted]") || !strings.Contains(err.Error(), "https://cdn.example.com/blobs/x?[query redacted]") {
		t.Errorf("error %q lost its context", err)
	}
	// Write errors stay in the chain.
	disk := errors.New("no space left on device")
	err = p.failure(&writeError{disk})
	if !errors.Is(err, disk) {
		t.Errorf("%v does not wrap the destination's error", err)
	}
}
