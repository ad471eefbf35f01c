package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/isoedge/isoedge/config"
)

// RegistryConfig configures a RegistrySource. Zero durations and sizes mean
// the defaults of FetcherConfig.
type RegistryConfig struct {
	// AuthFile is a containers-auth.json (REGISTRY_AUTH_FILE); "" pulls
	// anonymously. It is read again by every Fetch, so a rotated pull
	// secret is used without a restart.
	AuthFile string
	// CAFile is a PEM file added to the system roots
	// (OS_IMAGE_DOWNLOAD_TRUSTED_CA_FILE).
	CAFile string
	// InsecureSkipVerify disables certificate checks (INSECURE_SKIP_VERIFY).
	// Plain http is refused all the same.
	InsecureSkipVerify bool
	// ConnectTimeout bounds establishing one TCP connection.
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for response headers.
	HeaderTimeout time.Duration
	// StallTimeout fails a pull whose response body delivers nothing for
	// this long, with ErrStalled (OS_IMAGE_STALL_TIMEOUT).
	StallTimeout time.Duration
	// MaxBytes bounds the size of the file taken from an image
	// (OS_IMAGE_MAX_BYTES). The layers a pull decompresses, all together,
	// are bounded by twice this.
	MaxBytes int64
	// Transport replaces the constructed transport (tests). It is still
	// wrapped: plain http is refused and StallTimeout applies.
	Transport http.RoundTripper
}

// RegistrySource takes files out of container images in a registry. It is
// safe for concurrent use.
type RegistrySource struct {
	authFile string
	rt       http.RoundTripper
	maxBytes int64
}

// RegistryRequest names one file in one image.
type RegistryRequest struct {
	// URL is docker://HOST[:PORT]/REPO@sha256:HEX or docker://…/REPO:TAG
	// (config.ParseDockerURL).
	URL string
	// Path is the absolute path of the file in the image; "" means
	// config.DefaultRegistryPath(Arch).
	Path string
	// Arch is the entry's cpu_architecture; it picks the image of a
	// manifest list (config.RegistryArch).
	Arch string
	// SHA256, if not "", is the hex digest the file must have (the
	// entry's sha256 key).
	SHA256 string
	// MaxBytes lowers RegistryConfig.MaxBytes for this file when > 0.
	MaxBytes int64
	// Progress, if not nil, is called with (bytes written, file size) at
	// most every 64 MiB and once at the end.
	Progress func(done, total int64)
}

// RegistryResult describes a successful Fetch.
type RegistryResult struct {
	N int64 // bytes of the file written to w
	// SHA256 is the hex digest of the N bytes written, computed while
	// streaming and already checked against Checksum and the request's
	// SHA256. Commit the file with it as the expected digest.
	SHA256 string
	// Checksum is the hex digest read from <path>.sha256 in the image, ""
	// when the image has none.
	Checksum string
	// Digest is the manifest digest of the image the file came from (the
	// platform's image when the reference names a manifest list).
	Digest string
	// Layer is the digest of the layer that holds the file.
	Layer string
}

// Errors a failed Fetch wraps, besides ErrTooLarge, ErrStalled and the
// context's errors. The catalog shows the error text and retries later.
var (
	// ErrRegistryAuth: the registry answered 401 or 403.
	ErrRegistryAuth = errors.New("upstream: registry refused access")
	// ErrImageNotFound: the registry has no such repository, manifest or
	// blob (404).
	ErrImageNotFound = errors.New("upstream: image not found in the registry")
	// ErrNoPlatform: a manifest list has no image for the entry's
	// architecture.
	ErrNoPlatform = errors.New("upstream: no image for the architecture")
	// ErrFileNotFound: the image has no regular file at the path (absent,
	// deleted by a whiteout, behind a link, or not a regular file).
	ErrFileNotFound = errors.New("upstream: file not found in the image")
	// ErrChecksumMismatch: the file's digest differs from <path>.sha256 or
	// from the expected sha256, or those two differ.
	ErrChecksumMismatch = errors.New("upstream: checksum mismatch")
	// ErrBadImage: a manifest, layer or .sha256 isoedge cannot use.
	ErrBadImage = errors.New("upstream: unusable image")
)

// userAgent is sent with every registry request.
const userAgent = "isoedge"

// NewRegistrySource returns a RegistrySource. It fails when the CA file or
// the auth file cannot be read or parsed, so a bad configuration stops
// the process at start rather than failing every pull.
func NewRegistrySource(cfg RegistryConfig) (*RegistrySource, error) {
	if cfg.AuthFile != "" {
		if _, _, err := loadAuthFile(cfg.AuthFile); err != nil {
			return nil, err
		}
	}
	rt := cfg.Transport
	if rt == nil {
		tlsConf, err := downloadTLSConfig(cfg.CAFile, cfg.InsecureSkipVerify)
		if err != nil {
			return nil, err
		}
		t := newTransport(tlsConf, orDefault(cfg.ConnectTimeout, DefaultConnectTimeout))
		t.ResponseHeaderTimeout = orDefault(cfg.HeaderTimeout, DefaultHeaderTimeout)
		// Layers are compressed already; a transparent gzip would only
		// hide the sizes the manifest declares.
		t.DisableCompression = true
		rt = t
	}
	return &RegistrySource{
		authFile: cfg.AuthFile,
		rt:       &registryTransport{next: rt, stall: orDefault(cfg.StallTimeout, DefaultStallTimeout)},
		maxBytes: orDefault(cfg.MaxBytes, DefaultMaxImageBytes),
	}, nil
}

// RegistryRequestFor is the request for an OS_IMAGES entry with a
// docker:// URL.
func RegistryRequestFor(img config.OSImage) RegistryRequest {
	return RegistryRequest{URL: img.URL, Path: img.Path, Arch: img.CPUArchitecture, SHA256: img.SHA256}
}

// Fetch pulls the image req.URL names (the image for req.Arch when it is a
// manifest list), finds the layer that holds the final version of
// req.Path and streams that one file into w, from its first byte: w must
// be empty. A compressed layer cannot be resumed mid-stream, so a pull
// interrupted for any reason starts again with an empty w.
//
// The layers are read from the top of the image down, each decompressed
// once and only as far as needed: the first layer (from the top) that has
// the path or deletes it (a whiteout of the path or of a parent, an opaque
// parent directory, a parent that is not a directory) decides, and the
// file is streamed straight from it. Layers above it are read in full
// (their tar headers are parsed, their files skipped), layers below it are
// not fetched at all, unless <path>.sha256 is neither in nor above that
// layer: then lower layers are read, headers only, until one decides about
// the .sha256. Every layer read is read to its end, so go-containerregistry
// checks its digest. The cost is one download of the file's layer and of
// every layer above it; for machine-os-images (the ISO and its .sha256 in
// one COPY layer near the top) that is the ISO's layer and a few small ones.
// A path written twice in the same layer is refused rather than buffered.
//
// The file's digest is computed while streaming and checked against the
// image's <path>.sha256 (a hex digest, surrounding whitespace ignored) and
// req.SHA256, whichever exist; if the .sha256 is read before the file and
// disagrees with req.SHA256, nothing is streamed. An error means the bytes
// in w must not be committed. On success, commit with RegistryResult.SHA256
// as the expected digest: a writer that already held bytes (a resumed
// partial file) then fails to commit instead of storing a mixed file.
//
// Errors start with "upstream: registry <image reference>: ", say why in
// words, wrap the Err* values above, and never hold a credential or a raw
// registry answer: only status codes, registry error codes and image paths.
func (r *RegistrySource) Fetch(ctx context.Context, req RegistryRequest, w io.Writer) (RegistryResult, error) {
	ref, _, err := config.ParseDockerURL(req.URL)
	if err != nil {
		return RegistryResult{}, fmt.Errorf("upstream: registry: %w", err)
	}
	p := &pull{src: r, ref: ref, req: req}
	res, err := p.run(ctx, w)
	if err != nil {
		return RegistryResult{}, p.failure(err)
	}
	return res, nil
}

// pull is the state of one Fetch.
type pull struct {
	src     *RegistrySource
	ref     name.Reference
	req     RegistryRequest
	cred    registryCred
	hasCred bool
	secrets []string
}

func (p *pull) run(ctx context.Context, w io.Writer) (RegistryResult, error) {
	req := p.req
	platformArch, _, ok := config.RegistryArch(req.Arch)
	if !ok {
		return RegistryResult{}, fmt.Errorf("cpu_architecture %q has no image platform: %w", req.Arch, ErrNoPlatform)
	}
	target := req.Path
	if target == "" {
		target = config.DefaultRegistryPath(req.Arch)
	}
	if !strings.HasPrefix(target, "/") || target == "/" || path.Clean(target) != target {
		return RegistryResult{}, fmt.Errorf("path %q is not an absolute, clean path to a file: %w", clip(target), ErrFileNotFound)
	}
	want := strings.ToLower(req.SHA256)
	if want != "" && !isHexSHA256(want) {
		return RegistryResult{}, fmt.Errorf("expected sha256 %q is not 64 hex digits: %w", req.SHA256, ErrChecksumMismatch)
	}
	limit := p.src.maxBytes
	if req.MaxBytes > 0 && req.MaxBytes < limit {
		limit = req.MaxBytes
	}

	auth := authn.Anonymous
	if p.src.authFile != "" {
		af, secrets, err := loadAuthFile(p.src.authFile)
		if err != nil {
			return RegistryResult{}, err
		}
		p.secrets = secrets
		if p.cred, p.hasCred = af.lookup(p.ref.Context()); p.hasCred {
			auth = p.cred.authenticator()
		}
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(p.src.rt),
		remote.WithAuth(auth),
		remote.WithUserAgent(userAgent),
	}
	desc, err := remote.Get(p.ref, opts...)
	if err != nil {
		return RegistryResult{}, err
	}
	img, digest, err := pickImage(desc, platformArch)
	if err != nil {
		return RegistryResult{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return RegistryResult{}, err
	}

	h := sha256.New()
	s := &layerScan{
		img: img, layers: m.Layers, budget: 2 * limit, bound: 2 * limit, limit: limit,
		file: target, sum: target + ".sha256",
		w: io.MultiWriter(w, h), progress: req.Progress, want: want,
	}
	if err := s.run(ctx); err != nil {
		return RegistryResult{}, err
	}
	got := hex.EncodeToString(h.Sum(nil))
	switch {
	case s.checksum != "" && got != s.checksum:
		return RegistryResult{}, fmt.Errorf("%s has sha256 %s but %s.sha256 in the image says %s: %w", target, got, target, s.checksum, ErrChecksumMismatch)
	case want != "" && got != want:
		return RegistryResult{}, fmt.Errorf("%s has sha256 %s, the entry's sha256 is %s: %w", target, got, want, ErrChecksumMismatch)
	}
	return RegistryResult{N: s.n, SHA256: got, Checksum: s.checksum, Digest: digest.String(), Layer: s.fileLayer}, nil
}

// pickImage resolves desc to one image: itself when it is an image, the
// linux/<arch> entry when it is a manifest list or OCI index. For arm64 an
// entry without variant or with v8 is preferred over other variants.
func pickImage(desc *remote.Descriptor, arch string) (v1.Image, v1.Hash, error) {
	switch {
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		return img, desc.Digest, err
	case desc.MediaType.IsIndex():
	case desc.MediaType.IsSchema1():
		return nil, v1.Hash{}, fmt.Errorf("docker schema 1 manifests are not supported: %w", ErrBadImage)
	default:
		return nil, v1.Hash{}, fmt.Errorf("manifest media type %q is neither an image nor a list: %w", clip(string(desc.MediaType)), ErrBadImage)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	var pick *v1.Descriptor
	var seen []string
	for i := range im.Manifests {
		d := &im.Manifests[i]
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue
		}
		if len(seen) < 16 {
			seen = append(seen, clip(d.Platform.OS+"/"+d.Platform.Architecture))
		}
		if d.Platform.OS != "linux" || d.Platform.Architecture != arch {
			continue
		}
		if pick == nil || (pick.Platform.Variant != "" && pick.Platform.Variant != "v8" && (d.Platform.Variant == "" || d.Platform.Variant == "v8")) {
			pick = d
		}
	}
	if pick == nil {
		return nil, v1.Hash{}, fmt.Errorf("the manifest list has no linux/%s image (it has %s): %w", arch, strings.Join(seen, ", "), ErrNoPlatform)
	}
	img, err := idx.Image(pick.Digest)
	return img, pick.Digest, err
}

// isHexSHA256 reports whether s is 64 lower-case hex digits.
func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// clip bounds text that comes from the registry or the image before it
// goes into an error, and quotes nothing: callers use %q where needed.
func clip(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
