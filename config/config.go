package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults applied by Load.
const (
	DefaultAssistedServiceScheme         = "http"
	DefaultAssistedServiceTimeout        = 30 * time.Second
	DefaultDataDir                       = "/data"
	DefaultDataTempDir                   = "/data_temp"
	DefaultListenPort                    = "8080"
	DefaultMaxConcurrentRequests         = 400
	DefaultRequestWait                   = 10 * time.Second
	DefaultLogLevel                      = "info"
	DefaultMinRootfsBytes                = 100 << 20
	DefaultMinKernelBytes                = 5 << 20
	DefaultIgnitionCacheTTL              = 10 * time.Minute
	DefaultDownloadConcurrency           = 2
	DefaultStreamStallTimeout            = 60 * time.Second
	DefaultOSImageConnectTimeout         = 30 * time.Second
	DefaultOSImageHeaderTimeout          = 60 * time.Second
	DefaultOSImageStallTimeout           = 60 * time.Second
	DefaultOSImageMaxBytes               = 16 << 30
	DefaultScrubBytesPerSecond           = 100_000_000
	DefaultScrubInterval                 = 24 * time.Hour
	DefaultSnapshotCacheMaxBytes         = 32 << 20
	DefaultUpstreamMemoryMaxBytes        = 48 << 20
	DefaultMaxConcurrentUpstreamRequests = 64
	FetchEager                           = "eager"
	FetchLazy                            = "lazy"
)

// Config is the validated configuration. Load fills every field; the zero
// value is not useful.
type Config struct {
	AssistedServiceScheme       string            // ASSISTED_SERVICE_SCHEME: "http" (default) or "https"
	AssistedServiceHost         string            // ASSISTED_SERVICE_HOST: host, host:port, [ipv6] or [ipv6]:port; "" means standalone (UsesLocalIgnition)
	AssistedServiceCAFile       string            // ASSISTED_SERVICE_API_TRUSTED_CA_FILE, falling back to HTTPS_CA_FILE
	AssistedServiceTimeout      time.Duration     // ASSISTED_SERVICE_TIMEOUT, default 30s, > 0
	IgnitionDir                 string            // IGNITION_DIR: local ignition source (<image_id>.ign files)
	DataDir                     string            // DATA_DIR, default "/data"
	DataTempDir                 string            // DATA_TEMP_DIR, default "/data_temp"
	ListenPort                  string            // LISTEN_PORT, default "8080"
	HTTPListenPort              string            // HTTP_LISTEN_PORT; with a key pair, not ListenPort
	HTTPSKeyFile, HTTPSCertFile string            // HTTPS_KEY_FILE, HTTPS_CERT_FILE: both or neither
	MaxConcurrentRequests       int               // MAX_CONCURRENT_REQUESTS, default 400, >= 1
	RequestWait                 time.Duration     // MAX_CONCURRENT_REQUESTS_WAIT, default 10s: how long a request waits for a slot before 503
	OSImages                    []OSImage         // OS_IMAGES, else RHCOS_VERSIONS, else the built-in sample list (Sample=true)
	Sample                      bool              // true when neither OS_IMAGES nor RHCOS_VERSIONS is set
	SampleIgnition              bool              // Sample, no ASSISTED_SERVICE_HOST and IGNITION_DIR unset, so Load chose IgnitionDir: only then may the sample ignition be written there
	AllowedDomains              []string          // ALLOWED_DOMAINS: spaces removed, split on ",", empty parts dropped
	InsecureSkipVerify          bool              // INSECURE_SKIP_VERIFY, default false
	OSImageCAFile               string            // OS_IMAGE_DOWNLOAD_TRUSTED_CA_FILE
	RegistryAuthFile            string            // REGISTRY_AUTH_FILE: containers-auth.json (a pull secret) for docker:// OS images; the file holds credentials, the path does not
	OSImagesRequestHeaders      map[string]string // OS_IMAGES_REQUEST_HEADERS (JSON object of strings); values may be secrets
	OSImagesRequestQueryParams  map[string]string // OS_IMAGES_REQUEST_QUERY_PARAMS (JSON object of strings); values may be secrets
	ImageServiceBaseURL         string            // IMAGE_SERVICE_BASE_URL: absolute http(s) URL without user info, query or fragment, nothing a boot config cannot hold; in sample mode defaults to this process's listener
	LogLevel                    string            // LOG_LEVEL, else LOGLEVEL, default "info"; lower case, "warning" becomes "warn"
	MinRootfsBytes              int64             // OS_IMAGE_MIN_ROOTFS_BYTES, default 100 MiB, >= 0
	MinKernelBytes              int64             // OS_IMAGE_MIN_KERNEL_BYTES, default 5 MiB, >= 0
	IgnitionCacheTTL            time.Duration     // IGNITION_CACHE_TTL, default 10m: how long a download's snapshot serves its Range requests
	DownloadConcurrency         int               // OS_IMAGES_DOWNLOAD_CONCURRENCY, default 2, >= 1
	Fetch                       string            // OS_IMAGES_FETCH: "eager" (default, the original's behaviour) or "lazy"
	DataDirMaxBytes             int64             // DATA_DIR_MAX_BYTES: store budget, 0 = unlimited
	StreamStallTimeout          time.Duration     // STREAM_STALL_TIMEOUT, default 60s: a client taking no data this long is disconnected

	// HTTPS listener (TLS_MIN_VERSION, TLS_CIPHER_SUITES, as the
	// assisted-service operator sets them from the cluster's TLS profile).
	TLSMinVersion     uint16   // TLS_MIN_VERSION: VersionTLS10 … VersionTLS13; 0 when unset (TLSConfig then uses DefaultTLSMinVersion)
	TLSCipherSuites   []uint16 // TLS_CIPHER_SUITES: the listed suites Go can configure, in order; nil means Go's defaults
	TLSSkippedCiphers []string // TLS_CIPHER_SUITES entries recognised but skipped (DHE, TLS 1.3 names), as written; log them once

	// OS image downloads.
	OSImageConnectTimeout time.Duration // OS_IMAGE_CONNECT_TIMEOUT, default 30s, > 0: TCP connect and TLS handshake
	OSImageHeaderTimeout  time.Duration // OS_IMAGE_HEADER_TIMEOUT, default 60s, > 0: request sent to response headers
	OSImageStallTimeout   time.Duration // OS_IMAGE_STALL_TIMEOUT, default 60s, > 0: a download receiving nothing this long is aborted (and resumed)
	OSImageMaxBytes       int64         // OS_IMAGE_MAX_BYTES, default 16 GiB, >= 1: larger images are refused

	// Background verification of stored blobs.
	ScrubBytesPerSecond int64         // SCRUB_BYTES_PER_SECOND, default 100000000, >= 0; 0 disables the scrub
	ScrubInterval       time.Duration // SCRUB_INTERVAL, default 24h, > 0: time between the starts of two scrub passes

	// Memory bounds.
	SnapshotCacheMaxBytes         int64 // SNAPSHOT_CACHE_MAX_BYTES, default 32 MiB, >= 1: built download plans kept for IGNITION_CACHE_TTL
	UpstreamMemoryMaxBytes        int64 // UPSTREAM_MEMORY_MAX_BYTES, default 48 MiB, >= 1: assisted-service answers held in memory at once
	MaxConcurrentUpstreamRequests int   // MAX_CONCURRENT_UPSTREAM_REQUESTS, default 64, >= 1: requests waiting on assisted-service; more get 503 + Retry-After

	// Sibling replicas asked for a base image before its source.
	Peers    []string // PEERS: http(s) base URLs, comma separated; at most MaxPeers
	PeersDNS string   // PEERS_DNS: a DNS name (headless Service) whose A/AAAA records are the siblings
}

// UsesLocalIgnition reports whether ignition comes from IgnitionDir instead of assisted-service.
func (c *Config) UsesLocalIgnition() bool { return c.AssistedServiceHost == "" }

// Load reads the configuration through lookup (os.LookupEnv in production; nil
// means os.LookupEnv) and validates it. Every error names the offending
// variable, e.g. `config: MAX_CONCURRENT_REQUESTS: invalid integer "x"`, and
// is an *Error except for ErrNoAssistedService.
func Load(lookup func(string) (string, bool)) (*Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	e := env{lookup}
	c := &Config{}
	var err error

	var from string
	c.AssistedServiceScheme, from = e.str("ASSISTED_SERVICE_SCHEME", DefaultAssistedServiceScheme)
	c.AssistedServiceScheme = strings.ToLower(c.AssistedServiceScheme)
	if c.AssistedServiceScheme != "http" && c.AssistedServiceScheme != "https" {
		return nil, &Error{from, fmt.Errorf("must be http or https, got %q", c.AssistedServiceScheme)}
	}
	c.AssistedServiceHost, from = e.str("ASSISTED_SERVICE_HOST", "")
	if c.AssistedServiceHost != "" {
		if err := checkHostPort(c.AssistedServiceHost); err != nil {
			return nil, &Error{from, err}
		}
	}
	c.AssistedServiceCAFile, _ = e.first("ASSISTED_SERVICE_API_TRUSTED_CA_FILE", "HTTPS_CA_FILE")
	if c.AssistedServiceTimeout, err = e.duration("ASSISTED_SERVICE_TIMEOUT", DefaultAssistedServiceTimeout, true); err != nil {
		return nil, err
	}

	c.IgnitionDir, _ = e.str("IGNITION_DIR", "")
	ignitionDirGiven := c.IgnitionDir != ""
	c.DataDir, _ = e.str("DATA_DIR", DefaultDataDir)
	c.DataTempDir, _ = e.str("DATA_TEMP_DIR", DefaultDataTempDir)

	if c.ListenPort, err = e.port("LISTEN_PORT", DefaultListenPort); err != nil {
		return nil, err
	}
	if c.HTTPListenPort, err = e.port("HTTP_LISTEN_PORT", ""); err != nil {
		return nil, err
	}
	c.HTTPSKeyFile, _ = e.str("HTTPS_KEY_FILE", "")
	c.HTTPSCertFile, _ = e.str("HTTPS_CERT_FILE", "")
	if (c.HTTPSKeyFile == "") != (c.HTTPSCertFile == "") {
		return nil, &Error{"HTTPS_KEY_FILE and HTTPS_CERT_FILE", errors.New("set both or neither")}
	}
	// With a key pair both ports are opened (HTTPS and plain HTTP); the
	// same number twice would fail only at the second bind.
	if c.HTTPSKeyFile != "" && c.HTTPListenPort == c.ListenPort {
		_, lp := e.str("LISTEN_PORT", "")
		_, hp := e.str("HTTP_LISTEN_PORT", "")
		return nil, &Error{lp + " and " + hp, fmt.Errorf("both are %s: with HTTPS_CERT_FILE and HTTPS_KEY_FILE they are two listeners and need two ports", c.ListenPort)}
	}

	if c.MaxConcurrentRequests, err = e.int("MAX_CONCURRENT_REQUESTS", DefaultMaxConcurrentRequests, 1); err != nil {
		return nil, err
	}
	if c.RequestWait, err = e.duration("MAX_CONCURRENT_REQUESTS_WAIT", DefaultRequestWait, false); err != nil {
		return nil, err
	}

	if err := c.loadOSImages(e); err != nil {
		return nil, err
	}
	if c.UsesLocalIgnition() && c.IgnitionDir == "" {
		if !c.Sample {
			return nil, ErrNoAssistedService
		}
		c.IgnitionDir = filepath.Join(c.DataDir, "ignition")
	}
	// Only a directory Load chose may receive the sample ignition: an
	// operator's IGNITION_DIR holds their own files.
	c.SampleIgnition = c.Sample && c.UsesLocalIgnition() && !ignitionDirGiven

	domains, _ := e.str("ALLOWED_DOMAINS", "")
	c.AllowedDomains = splitDomains(domains)
	if c.InsecureSkipVerify, err = e.bool("INSECURE_SKIP_VERIFY", false); err != nil {
		return nil, err
	}
	c.OSImageCAFile, _ = e.str("OS_IMAGE_DOWNLOAD_TRUSTED_CA_FILE", "")
	c.RegistryAuthFile, _ = e.str("REGISTRY_AUTH_FILE", "")
	if c.OSImagesRequestHeaders, err = stringMap(e, "OS_IMAGES_REQUEST_HEADERS", checkRequestHeaders); err != nil {
		return nil, err
	}
	if c.OSImagesRequestQueryParams, err = stringMap(e, "OS_IMAGES_REQUEST_QUERY_PARAMS", checkQueryParams); err != nil {
		return nil, err
	}

	c.ImageServiceBaseURL, from = e.str("IMAGE_SERVICE_BASE_URL", "")
	if c.ImageServiceBaseURL == "" && c.Sample {
		// The built-in sample serves its minimal ISO too: its rootfs URL
		// points at this process's own first listener.
		c.ImageServiceBaseURL = c.sampleBaseURL()
	}
	if c.ImageServiceBaseURL != "" {
		if err := checkBaseURL(c.ImageServiceBaseURL); err != nil {
			return nil, &Error{from, err}
		}
	}

	level, from := e.first("LOG_LEVEL", "LOGLEVEL")
	if level == "" {
		level = DefaultLogLevel
	}
	if c.LogLevel, err = normaliseLevel(level); err != nil {
		return nil, &Error{from, err}
	}

	if c.MinRootfsBytes, err = e.int64("OS_IMAGE_MIN_ROOTFS_BYTES", DefaultMinRootfsBytes, 0); err != nil {
		return nil, err
	}
	if c.MinKernelBytes, err = e.int64("OS_IMAGE_MIN_KERNEL_BYTES", DefaultMinKernelBytes, 0); err != nil {
		return nil, err
	}
	if c.IgnitionCacheTTL, err = e.duration("IGNITION_CACHE_TTL", DefaultIgnitionCacheTTL, false); err != nil {
		return nil, err
	}
	dc, err := e.int64("OS_IMAGES_DOWNLOAD_CONCURRENCY", DefaultDownloadConcurrency, 1)
	if err != nil {
		return nil, err
	}
	c.DownloadConcurrency = int(min(dc, 64))
	c.Fetch, from = e.str("OS_IMAGES_FETCH", FetchEager)
	if c.Fetch = strings.ToLower(c.Fetch); c.Fetch != FetchEager && c.Fetch != FetchLazy {
		return nil, &Error{from, fmt.Errorf("must be eager or lazy, got %q", c.Fetch)}
	}
	if c.DataDirMaxBytes, err = e.int64("DATA_DIR_MAX_BYTES", 0, 0); err != nil {
		return nil, err
	}
	if c.StreamStallTimeout, err = e.duration("STREAM_STALL_TIMEOUT", DefaultStreamStallTimeout, true); err != nil {
		return nil, err
	}
	if err := c.loadTLS(e); err != nil {
		return nil, err
	}
	if err := c.loadLimits(e); err != nil {
		return nil, err
	}
	if err := c.loadPeers(e); err != nil {
		return nil, err
	}
	return c, nil
}

// loadLimits fills the timeouts, sizes and rates of downloads, the scrub
// and memory use.
func (c *Config) loadLimits(e env) error {
	var err error
	for _, d := range []struct {
		dst  *time.Duration
		name string
		def  time.Duration
	}{
		{&c.OSImageConnectTimeout, "OS_IMAGE_CONNECT_TIMEOUT", DefaultOSImageConnectTimeout},
		{&c.OSImageHeaderTimeout, "OS_IMAGE_HEADER_TIMEOUT", DefaultOSImageHeaderTimeout},
		{&c.OSImageStallTimeout, "OS_IMAGE_STALL_TIMEOUT", DefaultOSImageStallTimeout},
		{&c.ScrubInterval, "SCRUB_INTERVAL", DefaultScrubInterval},
	} {
		if *d.dst, err = e.duration(d.name, d.def, true); err != nil {
			return err
		}
	}
	for _, n := range []struct {
		dst      *int64
		name     string
		def, min int64
	}{
		{&c.OSImageMaxBytes, "OS_IMAGE_MAX_BYTES", DefaultOSImageMaxBytes, 1},
		{&c.ScrubBytesPerSecond, "SCRUB_BYTES_PER_SECOND", DefaultScrubBytesPerSecond, 0},
		{&c.SnapshotCacheMaxBytes, "SNAPSHOT_CACHE_MAX_BYTES", DefaultSnapshotCacheMaxBytes, 1},
		{&c.UpstreamMemoryMaxBytes, "UPSTREAM_MEMORY_MAX_BYTES", DefaultUpstreamMemoryMaxBytes, 1},
	} {
		if *n.dst, err = e.int64(n.name, n.def, n.min); err != nil {
			return err
		}
	}
	c.MaxConcurrentUpstreamRequests, err = e.int("MAX_CONCURRENT_UPSTREAM_REQUESTS", DefaultMaxConcurrentUpstreamRequests, 1)
	return err
}

// sampleBaseURL is the URL of the listener that serves boot artifacts:
// HTTPS on LISTEN_PORT with a key pair, else HTTP on HTTP_LISTEN_PORT if
// set, else HTTP on LISTEN_PORT.
func (c *Config) sampleBaseURL() string {
	switch {
	case c.HTTPSCertFile != "" && c.HTTPSKeyFile != "":
		return "https://localhost:" + c.ListenPort
	case c.HTTPListenPort != "":
		return "http://localhost:" + c.HTTPListenPort
	}
	return "http://localhost:" + c.ListenPort
}

// loadOSImages fills OSImages and Sample: OS_IMAGES if non-empty, else
// RHCOS_VERSIONS if non-empty, else the built-in sample list.
func (c *Config) loadOSImages(e env) error {
	s, from := e.first("OS_IMAGES", "RHCOS_VERSIONS")
	if s == "" {
		c.OSImages, c.Sample = sampleImages(), true
		return nil
	}
	images, err := ParseOSImages(s)
	if err != nil {
		return &Error{from, err}
	}
	c.OSImages = images
	return nil
}

// splitDomains removes every space, splits on commas and drops empty parts.
func splitDomains(s string) []string {
	var out []string
	for _, d := range strings.Split(strings.ReplaceAll(s, " ", ""), ",") {
		if d != "" {
			out = append(out, d)
		}
	}
	return out
}

// stringMap parses name as a JSON object of strings and checks it with
// check; unset or empty gives nil. The error never quotes the value, which
// may hold credentials (check must not quote map values either).
func stringMap(e env, name string, check func(map[string]string) error) (map[string]string, error) {
	s, from := e.str(name, "")
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, &Error{from, fmt.Errorf("invalid JSON at offset %d", se.Offset)}
		}
		return nil, &Error{from, errors.New("want a JSON object with string values")}
	}
	if err := check(m); err != nil {
		return nil, &Error{from, err}
	}
	return m, nil
}

// normaliseLevel accepts the logrus level names isoedge supports.
func normaliseLevel(s string) (string, error) {
	l := strings.ToLower(s)
	switch l {
	case "debug", "info", "warn", "error", "fatal", "panic":
		return l, nil
	case "warning":
		return "warn", nil
	}
	return "", fmt.Errorf("invalid log level %q (want debug, info, warn, error, fatal or panic)", s)
}
