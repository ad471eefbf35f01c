package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// withLimitDefaults sets the fields Load fills from variables that were
// unset: download timeouts and sizes, the scrub and memory bounds.
func withLimitDefaults(c *Config) *Config {
	c.OSImageConnectTimeout = 30 * time.Second
	c.OSImageHeaderTimeout = 60 * time.Second
	c.OSImageStallTimeout = 60 * time.Second
	c.OSImageMaxBytes = 16 << 30
	c.ScrubBytesPerSecond = 100_000_000
	c.ScrubInterval = 24 * time.Hour
	c.SnapshotCacheMaxBytes = 32 << 20
	c.UpstreamMemoryMaxBytes = 48 << 20
	c.MaxConcurrentUpstreamRequests = 64
	return c
}

// loadWith loads a valid base environment plus extra.
func loadWith(extra map[string]string) (*Config, error) {
	m := map[string]string{"ASSISTED_SERVICE_HOST": "as:8090"}
	for k, v := range extra {
		m[k] = v
	}
	return Load(envMap(m))
}

func TestLimitVariables(t *testing.T) {
	c, err := loadWith(map[string]string{
		"OS_IMAGE_CONNECT_TIMEOUT":                       "5s",
		"OS_IMAGE_HEADER_TIMEOUT":                        "1m30s",
		"OS_IMAGE_STALL_TIMEOUT":                         "2m",
		"OS_IMAGE_MAX_BYTES":                             "1_000_000",
		"SCRUB_BYTES_PER_SECOND":                         "0",
		"SCRUB_INTERVAL":                                 "168h",
		"SNAPSHOT_CACHE_MAX_BYTES":                       "0x100000",
		"UPSTREAM_MEMORY_MAX_BYTES":                      "1",
		"CLUSTER-IMAGE_MAX_CONCURRENT_UPSTREAM_REQUESTS": "3",
		"MAX_CONCURRENT_UPSTREAM_REQUESTS":               "x", // hidden by the prefixed one
	})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.OSImageConnectTimeout, c.OSImageHeaderTimeout, c.OSImageStallTimeout, c.OSImageMaxBytes,
		c.ScrubBytesPerSecond, c.ScrubInterval, c.SnapshotCacheMaxBytes, c.UpstreamMemoryMaxBytes, c.MaxConcurrentUpstreamRequests}
	want := []any{5 * time.Second, 90 * time.Second, 2 * time.Minute, int64(1_000_000),
		int64(0), 168 * time.Hour, int64(1 << 20), int64(1), 3}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d = %v, want %v", i, got[i], want[i])
		}
	}
	r := c.Redacted()
	for k, v := range map[string]string{
		"OS_IMAGE_CONNECT_TIMEOUT":         "5s",
		"OS_IMAGE_HEADER_TIMEOUT":          "1m30s",
		"OS_IMAGE_STALL_TIMEOUT":           "2m0s",
		"OS_IMAGE_MAX_BYTES":               "1000000",
		"SCRUB_BYTES_PER_SECOND":           "0",
		"SCRUB_INTERVAL":                   "168h0m0s",
		"SNAPSHOT_CACHE_MAX_BYTES":         "1048576",
		"UPSTREAM_MEMORY_MAX_BYTES":        "1",
		"MAX_CONCURRENT_UPSTREAM_REQUESTS": "3",
	} {
		if r[k] != v {
			t.Errorf("Redacted()[%s] = %q, want %q", k, r[k], v)
		}
	}
}

// TestNewVariableErrors: every bad value is a startup error naming the
// variable it came from.
func TestNewVariableErrors(t *testing.T) {
	tests := []struct{ name, value, msg string }{
		{"LISTEN_PORT", "abc", `must be a port number 1-65535, got "abc"`},
		{"LISTEN_PORT", "0", "must be a port number"},
		{"LISTEN_PORT", "65536", "must be a port number"},
		{"LISTEN_PORT", "-1", "must be a port number"},
		{"LISTEN_PORT", "+80", "must be a port number"},
		{"LISTEN_PORT", "80 ", "must be a port number"},
		{"LISTEN_PORT", "0x50", "must be a port number"},
		{"CLUSTER-IMAGE_LISTEN_PORT", "http", "must be a port number"},
		{"HTTP_LISTEN_PORT", "abc", `must be a port number 1-65535, got "abc"`},
		{"HTTP_LISTEN_PORT", "99999", "must be a port number"},
		{"TLS_MIN_VERSION", "1.2", `unknown TLS version "1.2"`},
		{"TLS_MIN_VERSION", "VersionTLS14", "unknown TLS version"},
		{"TLS_MIN_VERSION", "versiontls12", "unknown TLS version"},
		{"TLS_CIPHER_SUITES", "ECDHE-RSA-AES128-GCM-SHA256,NOT-A-CIPHER", `unknown cipher suite "NOT-A-CIPHER"`},
		{"TLS_CIPHER_SUITES", "ecdhe-rsa-aes128-gcm-sha256", "unknown cipher suite"},
		{"TLS_CIPHER_SUITES", "DHE-RSA-AES128-GCM-SHA256,TLS_AES_128_GCM_SHA256", "none of the listed cipher suites can be used"},
		{"OS_IMAGE_CONNECT_TIMEOUT", "0s", "must be > 0"},
		{"OS_IMAGE_CONNECT_TIMEOUT", "30", `invalid duration "30"`},
		{"OS_IMAGE_HEADER_TIMEOUT", "-1s", "must be > 0"},
		{"OS_IMAGE_HEADER_TIMEOUT", "", `invalid duration ""`},
		{"OS_IMAGE_STALL_TIMEOUT", "0s", "must be > 0"},
		{"OS_IMAGE_STALL_TIMEOUT", "soon", "invalid duration"},
		{"OS_IMAGE_MAX_BYTES", "0", "must be >= 1"},
		{"OS_IMAGE_MAX_BYTES", "16G", `invalid integer "16G"`},
		{"SCRUB_BYTES_PER_SECOND", "-1", "must be >= 0"},
		{"SCRUB_BYTES_PER_SECOND", "100MB", "invalid integer"},
		{"SCRUB_INTERVAL", "0s", "must be > 0"},
		{"SCRUB_INTERVAL", "1d", "invalid duration"},
		{"SNAPSHOT_CACHE_MAX_BYTES", "0", "must be >= 1"},
		{"SNAPSHOT_CACHE_MAX_BYTES", "", `invalid integer ""`},
		{"UPSTREAM_MEMORY_MAX_BYTES", "-5", "must be >= 1"},
		{"UPSTREAM_MEMORY_MAX_BYTES", "99999999999999999999", "invalid integer"},
		{"MAX_CONCURRENT_UPSTREAM_REQUESTS", "0", "must be >= 1"},
		{"MAX_CONCURRENT_UPSTREAM_REQUESTS", "many", "invalid integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := loadWith(map[string]string{tt.name: tt.value})
			var ce *Error
			if !errors.As(err, &ce) || ce.Var != tt.name {
				t.Fatalf("error %v, want an *Error for %s", err, tt.name)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "config: "+tt.name+": ") || !strings.Contains(msg, tt.msg) {
				t.Errorf("error %q, want prefix %q and %q", msg, "config: "+tt.name+": ", tt.msg)
			}
		})
	}
}

func TestPorts(t *testing.T) {
	tests := []struct {
		env           map[string]string
		listen, plain string
	}{
		{map[string]string{}, "8080", ""},
		{map[string]string{"LISTEN_PORT": "1", "HTTP_LISTEN_PORT": "65535"}, "1", "65535"},
		{map[string]string{"LISTEN_PORT": "08443"}, "8443", ""},
		{map[string]string{"LISTEN_PORT": "", "HTTP_LISTEN_PORT": ""}, "8080", ""},
	}
	for _, tt := range tests {
		c, err := loadWith(tt.env)
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		if c.ListenPort != tt.listen || c.HTTPListenPort != tt.plain {
			t.Errorf("%v: ListenPort %q, HTTPListenPort %q; want %q, %q", tt.env, c.ListenPort, c.HTTPListenPort, tt.listen, tt.plain)
		}
	}
}
