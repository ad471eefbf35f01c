package upstream

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/isoedge/isoedge/config"
)

// The peer protocol: sibling replicas share base image blobs (public
// content) over two GET routes under PeerPathPrefix.
//
//	GET /peer/v1/bases/{type}/{version}/{arch}?source=<hex SHA-256 of the source URL>
//	    200 {"digest":"sha256:…","size":N} when the peer stores that image
//	    from that source, else 404
//	GET /peer/v1/blobs/{digest}
//	    the blob (Range, If-Range on the ETag "sha256:…"), only while it is
//	    a base image the peer records; else 404
//
// Every answer carries PeerInstanceHeader, the answering process's random
// id, so a replica recognises itself behind any address. A peer's answer is
// a hint: the caller verifies the bytes against the digest (and whatever
// else it checks of a download) before it keeps them.
const (
	PeerPathPrefix = "/peer/v1/"
	PeerBasesPath  = PeerPathPrefix + "bases/"
	PeerBlobsPath  = PeerPathPrefix + "blobs/"
	// PeerInstanceHeader names the random id of the process answering.
	PeerInstanceHeader = "Isoedge-Instance"
)

// Bounds of peer requests: a sibling that is down or slow costs seconds,
// then the caller goes to the image's source.
const (
	PeerConnectTimeout = 2 * time.Second  // TCP connect, and the TLS handshake
	PeerHeaderTimeout  = 10 * time.Second // request sent to response headers
	PeerStallTimeout   = 10 * time.Second // a blob transfer receiving nothing this long fails
	peerLookupTimeout  = 5 * time.Second  // a whole lookup
	peerResolveTimeout = 2 * time.Second  // resolving PEERS_DNS
	maxPeerLookupBytes = 4 << 10          // a lookup answer is a few dozen bytes
	// PeerMinBytesPerSecond is the slowest average a blob transfer may
	// have: a sibling on the same network that cannot do better is
	// broken, and the source is tried instead.
	PeerMinBytesPerSecond = 1 << 20
)

var (
	// ErrPeerMiss reports a peer that does not store the image asked for.
	ErrPeerMiss = errors.New("upstream: the peer does not have the image")
	// ErrPeerSelf reports that the peer asked is this process.
	ErrPeerSelf = errors.New("upstream: the peer is this process")
)

// PeerConfig configures Peers. Zero durations mean the Peer* defaults.
type PeerConfig struct {
	URLs []string // base URLs of siblings (PEERS)
	// DNSName is resolved at each List; its addresses, on Scheme and Port,
	// are siblings, except the addresses of this host's interfaces.
	DNSName      string
	Scheme, Port string
	// Instance is this process's id; "" picks a random one.
	Instance string
	// ConnectTimeout, HeaderTimeout and StallTimeout bound each request;
	// MaxBytes bounds a blob.
	ConnectTimeout, HeaderTimeout, StallTimeout time.Duration
	MaxBytes                                    int64
	// Resolve and LocalAddrs replace the system resolver and the list of
	// this host's interface addresses (tests).
	Resolve    func(ctx context.Context, host string) ([]netip.Addr, error)
	LocalAddrs func() ([]netip.Addr, error)
}

// Peers asks sibling replicas for base image blobs. It is safe for
// concurrent use.
type Peers struct {
	cfg PeerConfig
	hc  *http.Client

	mu   sync.Mutex
	self map[string]bool // base URLs that answered with our own instance id
}

// PeerQuery names a base image: its key and the URL of its source, of
// which only the SHA-256 is sent (a URL may carry a token).
type PeerQuery struct {
	Type, Version, Arch string
	SourceURL           string
}

// PeerBlob is a peer's answer to a lookup: the blob it claims holds the
// image.
type PeerBlob struct {
	Digest string `json:"digest"` // sha256:<64 lowercase hex>
	Size   int64  `json:"size"`
}

// SourceHash is the value of the lookup's source parameter for a URL.
func SourceHash(sourceURL string) string {
	sum := sha256.Sum256([]byte(sourceURL))
	return hex.EncodeToString(sum[:])
}

// NewInstanceID returns a random process id (128 bits, hex).
func NewInstanceID() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// PeersFor returns the Peers of the configuration: PEERS and PEERS_DNS on
// the port siblings answer on (config.PeerListener). HTTPS peers are not
// verified (their certificate names a Service, not a pod address): what
// they send is verified by digest instead. Timeouts are the Peer* bounds,
// or the OS image ones when those are shorter.
func PeersFor(cfg *config.Config) *Peers {
	scheme, port := cfg.PeerListener()
	return NewPeers(PeerConfig{
		URLs: cfg.Peers, DNSName: cfg.PeersDNS, Scheme: scheme, Port: port,
		ConnectTimeout: min(cfg.OSImageConnectTimeout, PeerConnectTimeout),
		HeaderTimeout:  min(cfg.OSImageHeaderTimeout, PeerHeaderTimeout),
		StallTimeout:   min(cfg.OSImageStallTimeout, PeerStallTimeout),
		MaxBytes:       cfg.OSImageMaxBytes,
	})
}

// NewPeers returns Peers for cfg.
func NewPeers(cfg PeerConfig) *Peers {
	cfg.ConnectTimeout = orDefault(cfg.ConnectTimeout, PeerConnectTimeout)
	cfg.HeaderTimeout = orDefault(cfg.HeaderTimeout, PeerHeaderTimeout)
	cfg.StallTimeout = orDefault(cfg.StallTimeout, PeerStallTimeout)
	cfg.MaxBytes = orDefault(cfg.MaxBytes, DefaultMaxImageBytes)
	if cfg.Instance == "" {
		cfg.Instance = NewInstanceID()
	}
	if cfg.Scheme == "" {
		cfg.Scheme = "http"
	}
	if cfg.Resolve == nil {
		cfg.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if cfg.LocalAddrs == nil {
		cfg.LocalAddrs = interfaceAddrs
	}
	// Bytes are verified by digest, so the peer's certificate is not.
	t := newTransport(&tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}, cfg.ConnectTimeout)
	t.Proxy = nil // siblings are pod addresses, never behind HTTP(S)_PROXY
	t.TLSHandshakeTimeout = cfg.ConnectTimeout
	t.ResponseHeaderTimeout = cfg.HeaderTimeout
	t.DisableCompression = true
	t.MaxIdleConnsPerHost = 4
	return &Peers{
		cfg: cfg,
		hc: &http.Client{
			Transport: t,
			// A peer answers itself or not at all: a redirect could send
			// the request anywhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		self: map[string]bool{},
	}
}

// Instance returns this process's id, sent as PeerInstanceHeader.
func (p *Peers) Instance() string { return p.cfg.Instance }

// Enabled reports whether any sibling is configured.
func (p *Peers) Enabled() bool { return p != nil && (len(p.cfg.URLs) > 0 || p.cfg.DNSName != "") }

// List returns the base URLs of the siblings to ask, in random order (so
// that new replicas spread over their siblings): the configured URLs and
// the addresses PEERS_DNS resolves to now, without this host's interface
// addresses and URLs found to be this process. An error (the name does
// not resolve) comes with the URLs that are known.
func (p *Peers) List(ctx context.Context) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(u string) {
		p.mu.Lock()
		self := p.self[u]
		p.mu.Unlock()
		if !self && !seen[u] && len(out) < config.MaxPeers {
			seen[u] = true
			out = append(out, u)
		}
	}
	for _, u := range p.cfg.URLs {
		add(u)
	}
	var err error
	if p.cfg.DNSName != "" {
		err = p.resolve(ctx, add)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, err
}

func (p *Peers) resolve(ctx context.Context, add func(string)) error {
	ctx, cancel := context.WithTimeout(ctx, peerResolveTimeout)
	defer cancel()
	addrs, err := p.cfg.Resolve(ctx, p.cfg.DNSName)
	if err != nil {
		return fmt.Errorf("upstream: resolve peers %s: %w", p.cfg.DNSName, err)
	}
	local, err := p.cfg.LocalAddrs()
	if err != nil {
		return fmt.Errorf("upstream: this host's addresses: %w", err)
	}
	port, err := strconv.ParseUint(p.cfg.Port, 10, 16)
	if err != nil {
		return fmt.Errorf("upstream: peer port %q: %w", p.cfg.Port, err)
	}
	isLocal := map[netip.Addr]bool{}
	for _, a := range local {
		isLocal[a.Unmap().WithZone("")] = true
	}
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if !a.IsValid() || isLocal[a] || a.IsUnspecified() || a.IsMulticast() {
			continue
		}
		add(p.cfg.Scheme + "://" + netip.AddrPortFrom(a, uint16(port)).String())
	}
	return nil
}

// interfaceAddrs lists the addresses of this host's interfaces.
func interfaceAddrs() ([]netip.Addr, error) {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(ifAddrs))
	for _, ia := range ifAddrs {
		if pfx, err := netip.ParsePrefix(ia.String()); err == nil {
			out = append(out, pfx.Addr())
		}
	}
	return out, nil
}

// Lookup asks peer whether it stores the image q names. ErrPeerMiss: it
// does not; ErrPeerSelf: the peer is this process (it is left out of List
// from now on). The answer is checked for form and bounds only: a digest,
// a size from 1 to the image bound.
func (p *Peers) Lookup(ctx context.Context, peer string, q PeerQuery) (PeerBlob, error) {
	ctx, cancel := context.WithTimeout(ctx, peerLookupTimeout)
	defer cancel()
	u := peer + PeerBasesPath + url.PathEscape(q.Type) + "/" + url.PathEscape(q.Version) + "/" + url.PathEscape(q.Arch) +
		"?source=" + SourceHash(q.SourceURL)
	resp, err := p.get(ctx, peer, u)
	if err != nil {
		return PeerBlob{}, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return PeerBlob{}, fmt.Errorf("upstream: peer %s: %w", peer, ErrPeerMiss)
	case resp.StatusCode != http.StatusOK:
		return PeerBlob{}, fmt.Errorf("upstream: peer %s: lookup answered status %d", peer, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerLookupBytes+1))
	if err != nil {
		return PeerBlob{}, fmt.Errorf("upstream: peer %s: lookup: %w", peer, err)
	}
	if len(body) > maxPeerLookupBytes {
		return PeerBlob{}, fmt.Errorf("upstream: peer %s: lookup answer over %d bytes", peer, maxPeerLookupBytes)
	}
	var b PeerBlob
	if err := json.Unmarshal(body, &b); err != nil {
		return PeerBlob{}, fmt.Errorf("upstream: peer %s: lookup answer is not JSON", peer)
	}
	if !validDigest(b.Digest) {
		return PeerBlob{}, fmt.Errorf("upstream: peer %s: lookup answer without a sha256 digest", peer)
	}
	if b.Size <= 0 || b.Size > p.cfg.MaxBytes {
		return PeerBlob{}, fmt.Errorf("upstream: peer %s: image of %d bytes, want 1 to %d: %w", peer, b.Size, p.cfg.MaxBytes, ErrTooLarge)
	}
	return b, nil
}

// Fetch streams blob b from peer into w: exactly b.Size bytes, which the
// peer must declare, each read bounded by the stall timeout and the whole
// by PeerMinBytesPerSecond (after the header timeout). progress, if
// not nil, is called as in FetchRequest. It returns the bytes written; the
// caller verifies them against b.Digest.
func (p *Peers) Fetch(ctx context.Context, peer string, b PeerBlob, w io.Writer, progress func(done, total int64)) (int64, error) {
	if !validDigest(b.Digest) || b.Size <= 0 || b.Size > p.cfg.MaxBytes {
		return 0, fmt.Errorf("upstream: peer %s: refusing blob %q of %d bytes", peer, b.Digest, b.Size)
	}
	// A steady trickle passes the stall bound; the whole transfer is
	// bounded too.
	ctx, stop := context.WithTimeout(ctx, p.cfg.HeaderTimeout+time.Duration(b.Size/PeerMinBytesPerSecond+1)*time.Second)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	resp, err := p.get(ctx, peer, peer+PeerBlobsPath+b.Digest)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return 0, fmt.Errorf("upstream: peer %s: blob %s: %w", peer, b.Digest, ErrPeerMiss)
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("upstream: peer %s: blob %s: status %d", peer, b.Digest, resp.StatusCode)
	case resp.ContentLength != b.Size:
		return 0, fmt.Errorf("upstream: peer %s: blob %s: Content-Length %d, want %d", peer, b.Digest, resp.ContentLength, b.Size)
	}
	body := newStallReader(resp.Body, p.cfg.StallTimeout, cancel)
	defer body.stop()
	var n int64
	err = copyBounded(ctx, w, body, 0, b.Size, b.Size, b.Size, progress, &n)
	if err = stalledOr(ctx, p.cfg.StallTimeout, err); err != nil {
		return n, fmt.Errorf("upstream: peer %s: blob %s: %w", peer, b.Digest, err)
	}
	return n, nil
}

// get sends a GET to a peer with this process's id, and refuses an answer
// from this process.
func (p *Peers) get(ctx context.Context, peer, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("upstream: peer %s: cannot build request", peer)
	}
	req.Header.Set(PeerInstanceHeader, p.cfg.Instance)
	resp, err := p.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("upstream: peer %s: %w", peer, err)
	}
	if resp.Header.Get(PeerInstanceHeader) == p.cfg.Instance {
		resp.Body.Close()
		p.mu.Lock()
		p.self[peer] = true
		p.mu.Unlock()
		return nil, fmt.Errorf("upstream: peer %s: %w", peer, ErrPeerSelf)
	}
	return resp, nil
}

// validDigest reports whether s is sha256:<64 lowercase hex>.
func validDigest(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if (h[i] < '0' || h[i] > '9') && (h[i] < 'a' || h[i] > 'f') {
			return false
		}
	}
	return true
}
