package config

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Redacted returns a summary of c for logging, keyed by variable name. It
// leaves out anything that may be a credential: the values of
// OSImagesRequestHeaders and OSImagesRequestQueryParams (only their keys are
// listed), image URLs (which may carry tokens) and the password in
// IMAGE_SERVICE_BASE_URL.
func (c *Config) Redacted() map[string]string {
	images := make([]string, len(c.OSImages))
	for i, im := range c.OSImages {
		images[i] = im.OpenshiftVersion + "/" + im.CPUArchitecture + "/" + im.Type
	}
	return map[string]string{
		"ASSISTED_SERVICE_SCHEME":              c.AssistedServiceScheme,
		"ASSISTED_SERVICE_HOST":                c.AssistedServiceHost,
		"ASSISTED_SERVICE_API_TRUSTED_CA_FILE": c.AssistedServiceCAFile,
		"ASSISTED_SERVICE_TIMEOUT":             c.AssistedServiceTimeout.String(),
		"IGNITION_DIR":                         c.IgnitionDir,
		"DATA_DIR":                             c.DataDir,
		"DATA_TEMP_DIR":                        c.DataTempDir,
		"LISTEN_PORT":                          c.ListenPort,
		"HTTP_LISTEN_PORT":                     c.HTTPListenPort,
		"HTTPS_KEY_FILE":                       c.HTTPSKeyFile,
		"HTTPS_CERT_FILE":                      c.HTTPSCertFile,
		"MAX_CONCURRENT_REQUESTS":              strconv.Itoa(c.MaxConcurrentRequests),
		"MAX_CONCURRENT_REQUESTS_WAIT":         c.RequestWait.String(),
		"OS_IMAGES":                            fmt.Sprintf("%d images: %s", len(c.OSImages), strings.Join(images, ",")),
		"SAMPLE":                               strconv.FormatBool(c.Sample),
		"ALLOWED_DOMAINS":                      strings.Join(c.AllowedDomains, ","),
		"INSECURE_SKIP_VERIFY":                 strconv.FormatBool(c.InsecureSkipVerify),
		"OS_IMAGE_DOWNLOAD_TRUSTED_CA_FILE":    c.OSImageCAFile,
		"REGISTRY_AUTH_FILE":                   c.RegistryAuthFile,
		"OS_IMAGES_REQUEST_HEADERS":            keysOnly(c.OSImagesRequestHeaders),
		"OS_IMAGES_REQUEST_QUERY_PARAMS":       keysOnly(c.OSImagesRequestQueryParams),
		"IMAGE_SERVICE_BASE_URL":               redactURL(c.ImageServiceBaseURL),
		"LOG_LEVEL":                            c.LogLevel,
		"OS_IMAGE_MIN_ROOTFS_BYTES":            strconv.FormatInt(c.MinRootfsBytes, 10),
		"OS_IMAGE_MIN_KERNEL_BYTES":            strconv.FormatInt(c.MinKernelBytes, 10),
		"IGNITION_CACHE_TTL":                   c.IgnitionCacheTTL.String(),
		"OS_IMAGES_DOWNLOAD_CONCURRENCY":       strconv.Itoa(c.DownloadConcurrency),
		"OS_IMAGES_FETCH":                      c.Fetch,
		"STREAM_STALL_TIMEOUT":                 c.StreamStallTimeout.String(),
		"DATA_DIR_MAX_BYTES":                   strconv.FormatInt(c.DataDirMaxBytes, 10),
		"TLS_MIN_VERSION":                      tlsVersionName(c.effectiveTLSMinVersion()),
		"TLS_CIPHER_SUITES":                    suiteNames(c.TLSCipherSuites),
		"OS_IMAGE_CONNECT_TIMEOUT":             c.OSImageConnectTimeout.String(),
		"OS_IMAGE_HEADER_TIMEOUT":              c.OSImageHeaderTimeout.String(),
		"OS_IMAGE_STALL_TIMEOUT":               c.OSImageStallTimeout.String(),
		"OS_IMAGE_MAX_BYTES":                   strconv.FormatInt(c.OSImageMaxBytes, 10),
		"SCRUB_BYTES_PER_SECOND":               strconv.FormatInt(c.ScrubBytesPerSecond, 10),
		"SCRUB_INTERVAL":                       c.ScrubInterval.String(),
		"SNAPSHOT_CACHE_MAX_BYTES":             strconv.FormatInt(c.SnapshotCacheMaxBytes, 10),
		"UPSTREAM_MEMORY_MAX_BYTES":            strconv.FormatInt(c.UpstreamMemoryMaxBytes, 10),
		"MAX_CONCURRENT_UPSTREAM_REQUESTS":     strconv.Itoa(c.MaxConcurrentUpstreamRequests),
		"PEERS":                                strings.Join(c.Peers, ","),
		"PEERS_DNS":                            c.PeersDNS,
	}
}

// suiteNames lists the IANA names of ids, comma-separated; none means Go's
// default suites.
func suiteNames(ids []uint16) string {
	if len(ids) == 0 {
		return "(Go defaults)"
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = tls.CipherSuiteName(id)
	}
	return strings.Join(names, ",")
}

// keysOnly lists the sorted keys of m, comma-separated.
func keysOnly(m map[string]string) string {
	return strings.Join(slices.Sorted(maps.Keys(m)), ",")
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid)"
	}
	return u.Redacted()
}
