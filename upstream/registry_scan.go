package upstream

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Layer format limits.
const (
	// maxChecksumFile bounds <path>.sha256; machine-os-images writes the
	// 64 hex digits alone.
	maxChecksumFile = 4096
	// maxLayers bounds the layers of an image, each one a request:
	// overlay stacks stop near 128, so this is generous.
	maxLayers = 1000
	// maxZstdWindow bounds the memory a zstd layer can make the decoder
	// take: 128 MiB is what `zstd --long` writes; default levels use 8 MiB.
	maxZstdWindow = 128 << 20
)

// Whiteout names of the OCI image layer format: .wh.NAME deletes NAME from
// the layers below; .wh..wh..opq in a directory hides everything the
// layers below have in it; other .wh..wh. names are overlay bookkeeping.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// layerScan reads an image's layers from the top down until it knows the
// final version of file and of sum (file + ".sha256"), streaming file to w
// from the layer that decides it. See RegistrySource.Fetch.
type layerScan struct {
	img      v1.Image
	layers   []v1.Descriptor // bottom first, as in the manifest
	budget   int64           // decompressed bytes the remaining layers may have
	bound    int64           // budget at the start, for messages
	limit    int64           // bound on the file's size
	file     string
	sum      string
	w        io.Writer
	progress func(done, total int64)
	want     string // expected hex digest of the file, "" if none

	n         int64  // bytes of the file written
	checksum  string // hex digest from sum, "" if none
	fileLayer string // digest of the layer that holds file

	fileT, sumT target
}

// target follows one path down the layers.
type target struct {
	path  string
	done  bool   // decided: found, or hidden by an upper layer
	found bool   // done and a regular file
	why   string // done and not found: what hid it
	// In the layer being read:
	here   bool   // the path is in it
	hidden string // why the copies in lower layers are hidden, "" if not
}

func (s *layerScan) run(ctx context.Context) error {
	s.fileT = target{path: s.file}
	s.sumT = target{path: s.sum}
	total := len(s.layers)
	if total > maxLayers {
		return fmt.Errorf("the image has %d layers, more than the %d isoedge reads: %w", total, maxLayers, ErrBadImage)
	}
	for i := total - 1; i >= 0 && !(s.fileT.done && s.sumT.done); i-- {
		if err := s.scanLayer(ctx, i); err != nil {
			return err
		}
		if s.fileT.done && !s.fileT.found {
			return fmt.Errorf("%s is not in the image: %s: %w", s.file, s.fileT.why, ErrFileNotFound)
		}
	}
	if !s.fileT.found {
		return fmt.Errorf("%s is in none of the image's %d layers: %w", s.file, total, ErrFileNotFound)
	}
	return nil
}

// scanLayer reads layer i to its end.
func (s *layerScan) scanLayer(ctx context.Context, i int) error {
	d := s.layers[i]
	label := fmt.Sprintf("layer %d of %d (%s)", i+1, len(s.layers), d.Digest)
	if !d.MediaType.IsLayer() || !d.MediaType.IsDistributable() {
		return fmt.Errorf("%s: media type %q is not a distributable layer: %w", label, clip(string(d.MediaType)), ErrBadImage)
	}
	l, err := s.img.LayerByDigest(d.Digest)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	dec, closeDec, err := decompressor(br)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	defer closeDec()
	body := &budgetReader{r: dec, left: &s.budget, bound: s.bound}
	tr := tar.NewReader(body)

	for _, t := range []*target{&s.fileT, &s.sumT} {
		t.here, t.hidden = false, ""
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: reading the tar: %w", label, err)
		}
		name := path.Clean("/" + hdr.Name)
		if !s.fileT.done && s.fileT.see(name, hdr, label) {
			if err := s.takeFile(ctx, hdr, tr, label, d.Digest.String()); err != nil {
				return err
			}
		}
		if !s.sumT.done && s.sumT.see(name, hdr, label) {
			if err := s.takeSum(hdr, tr, label); err != nil {
				return err
			}
		}
	}
	// Read to the end so that go-containerregistry checks the layer's
	// size and digest: past the tar's end marker to the end of the
	// decompressed stream, which must also be the end of the blob.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = fmt.Errorf("data after the end of the compressed stream: %w", ErrBadImage)
		}
		return fmt.Errorf("%s: %w", label, err)
	}
	s.fileT.settle()
	s.sumT.settle()
	return nil
}

// see updates t for one tar entry and reports whether the entry is t's
// path itself.
func (t *target) see(name string, hdr *tar.Header, label string) bool {
	dir, base := path.Split(name)
	dir = path.Clean(dir)
	if strings.HasPrefix(base, whiteoutPrefix) {
		switch {
		case base == whiteoutOpaque:
			if under(t.path, dir) {
				t.hide(fmt.Sprintf("directory %s is made opaque in %s", dir, label))
			}
		case strings.HasPrefix(base, whiteoutMeta):
		default:
			gone := path.Join(dir, base[len(whiteoutPrefix):])
			if gone == t.path || under(t.path, gone) {
				t.hide(fmt.Sprintf("%s is deleted (whiteout) in %s", gone, label))
			}
		}
		return false
	}
	if name == t.path {
		return true
	}
	if name != "/" && under(t.path, name) && hdr.Typeflag != tar.TypeDir {
		what := "not a directory"
		if hdr.Typeflag == tar.TypeSymlink {
			what = "a symbolic link (links are not followed)"
		}
		t.hide(fmt.Sprintf("%s is %s in %s", name, what, label))
	}
	return false
}

func (t *target) hide(why string) {
	if t.hidden == "" {
		t.hidden = why
	}
}

// settle decides t at the end of a layer: a copy in the layer wins over
// the layer's own whiteouts, which apply to the layers below only.
func (t *target) settle() {
	switch {
	case t.done:
	case t.here:
		t.done, t.found = true, true
	case t.hidden != "":
		t.done, t.why = true, t.hidden
	}
}

// regular explains why hdr cannot be read as a file, "" when it can.
func regular(hdr *tar.Header) string {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		return ""
	case tar.TypeSymlink:
		return fmt.Sprintf("a symbolic link to %q (links are not followed; set path to the target)", clip(hdr.Linkname))
	case tar.TypeLink:
		return fmt.Sprintf("a hard link to %q (only regular files are read)", clip(hdr.Linkname))
	case tar.TypeDir:
		return "a directory"
	}
	return fmt.Sprintf("not a regular file (tar type %q)", hdr.Typeflag)
}

// takeFile streams the file's entry to w.
func (s *layerScan) takeFile(ctx context.Context, hdr *tar.Header, tr io.Reader, label, layer string) error {
	if why := regular(hdr); why != "" {
		return fmt.Errorf("%s is %s in %s: %w", s.file, why, label, ErrFileNotFound)
	}
	if s.fileT.here {
		// The later copy would win, but the earlier one is already in w.
		return fmt.Errorf("%s is written twice in %s: %w", s.file, label, ErrBadImage)
	}
	s.fileT.here = true
	if hdr.Size > s.limit {
		return fmt.Errorf("%s has %d bytes, more than the bound of %d: %w", s.file, hdr.Size, s.limit, ErrTooLarge)
	}
	s.fileLayer = layer
	if s.progress != nil {
		s.progress(0, hdr.Size)
	}
	if err := copyWithProgress(ctx, writeTagger{s.w}, tr, 0, hdr.Size, s.progress, &s.n); err != nil {
		return fmt.Errorf("%s in %s: %w", s.file, label, err)
	}
	if s.n != hdr.Size {
		return fmt.Errorf("%s in %s: got %d of %d bytes: %w", s.file, label, s.n, hdr.Size, io.ErrUnexpectedEOF)
	}
	return nil
}

// takeSum reads the .sha256 entry. A later copy in the same layer replaces
// an earlier one, as extraction would.
func (s *layerScan) takeSum(hdr *tar.Header, tr io.Reader, label string) error {
	if why := regular(hdr); why != "" {
		return fmt.Errorf("%s is %s in %s: %w", s.sum, why, label, ErrBadImage)
	}
	if hdr.Size > maxChecksumFile {
		return fmt.Errorf("%s has %d bytes, want a hex sha256 digest: %w", s.sum, hdr.Size, ErrBadImage)
	}
	b, err := io.ReadAll(io.LimitReader(tr, maxChecksumFile))
	if err != nil {
		return fmt.Errorf("%s in %s: %w", s.sum, label, err)
	}
	sum := strings.ToLower(string(bytes.TrimSpace(b)))
	if !isHexSHA256(sum) {
		return fmt.Errorf("%s does not hold a hex sha256 digest (%d bytes): %w", s.sum, len(b), ErrBadImage)
	}
	s.sumT.here = true
	s.checksum = sum
	if s.want != "" && sum != s.want {
		return fmt.Errorf("the entry's sha256 %s differs from %s in the image (%s): %w", s.want, s.sum, sum, ErrChecksumMismatch)
	}
	return nil
}

// under reports whether p is strictly below directory dir.
func under(p, dir string) bool {
	if dir == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, dir+"/")
}

// decompressor returns the tar stream of a layer: gzip and zstd are told
// by their magic numbers, anything else is read as an uncompressed tar.
func decompressor(br *bufio.Reader) (io.Reader, func(), error) {
	magic, err := br.Peek(len(zstdMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w: %w", err, ErrBadImage)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.Equal(magic, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w: %w", err, ErrBadImage)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// budgetReader fails once the layers of one pull have produced more
// decompressed bytes than the pull may read: a small layer must not make
// isoedge inflate terabytes.
type budgetReader struct {
	r     io.Reader
	left  *int64
	bound int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if *b.left <= 0 {
		return 0, fmt.Errorf("the image's layers decompress to more than the %d bytes a pull may read: %w", b.bound, ErrTooLarge)
	}
	if int64(len(p)) > *b.left {
		p = p[:*b.left]
	}
	n, err := b.r.Read(p)
	*b.left -= int64(n)
	return n, err
}

// writeTagger marks errors of the destination, so they are reported as
// they are and not mistaken for the registry's.
type writeTagger struct{ w io.Writer }

func (t writeTagger) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

// writeError is an error of the destination writer.
type writeError struct{ err error }

func (e *writeError) Error() string { return "writing the file: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }
