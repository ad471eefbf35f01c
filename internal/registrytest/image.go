package registrytest

import (
	"archive/tar"
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Entry is one member of a layer's tar. Name is a path in the image,
// absolute or not ("coreos/x.iso" and "/coreos/x.iso" name the same file;
// a leading slash is dropped, as image builders write them). A whiteout is
// an empty regular file named .wh.NAME.
type Entry struct {
	Name     string
	Body     []byte
	Symlink  string // not "": a symbolic link to this target
	Hardlink string // not "": a hard link to this earlier entry
	Dir      bool   // a directory
}

// Files lists files as entries in sorted path order.
func Files(files map[string][]byte) []Entry {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]Entry, len(names))
	for i, n := range names {
		out[i] = Entry{Name: n, Body: files[n]}
	}
	return out
}

// Whiteout is the entry that deletes path from the layers below.
func Whiteout(path string) Entry {
	i := strings.LastIndexByte(path, '/')
	return Entry{Name: path[:i+1] + ".wh." + path[i+1:]}
}

// Tar writes entries, in order, as an uncompressed tar.
func Tar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: strings.TrimPrefix(e.Name, "/"), Mode: 0o644, Size: int64(len(e.Body)), Typeflag: tar.TypeReg}
		switch {
		case e.Symlink != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size, hdr.Mode = tar.TypeSymlink, e.Symlink, 0, 0o777
		case e.Hardlink != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, strings.TrimPrefix(e.Hardlink, "/"), 0
		case e.Dir:
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeDir, 0, 0o755
			hdr.Name = strings.TrimSuffix(hdr.Name, "/") + "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.Body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Layer is a gzip-compressed layer (docker media type) of entries.
func Layer(t testing.TB, entries ...Entry) v1.Layer {
	t.Helper()
	return layer(t, Tar(t, entries...))
}

// ZstdLayer is a zstd-compressed layer (OCI media type) of entries.
func ZstdLayer(t testing.TB, entries ...Entry) v1.Layer {
	t.Helper()
	return layer(t, Tar(t, entries...), tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
}

func layer(t testing.TB, data []byte, opts ...tarball.LayerOption) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Image is a docker schema 2 image for linux/<platformArch> with layers,
// the first one at the bottom.
func Image(t testing.TB, platformArch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: platformArch})
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.AppendLayers(img, layers...); err != nil {
		t.Fatal(err)
	}
	return img
}

// OCI returns img with OCI manifest and config media types.
func OCI(img v1.Image) v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// Index is an OCI image index of images, each under the platform
// linux/<key>. DockerList turns it into a docker manifest list.
func Index(images map[string]v1.Image) v1.ImageIndex {
	archs := make([]string, 0, len(images))
	for a := range images {
		archs = append(archs, a)
	}
	slices.Sort(archs)
	idx := v1.ImageIndex(empty.Index)
	for _, a := range archs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        images[a],
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: a}},
		})
	}
	return idx
}

// DockerList gives idx the docker manifest list media type.
func DockerList(idx v1.ImageIndex) v1.ImageIndex {
	return mutate.IndexMediaType(idx, types.DockerManifestList)
}
