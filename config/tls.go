package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// tlsVersions are the TLS_MIN_VERSION values: the names OpenShift's
// TLSSecurityProfile uses (minTLSVersion), which the assisted-service
// operator copies into the image service's environment unchanged.
var tlsVersions = map[string]uint16{
	"VersionTLS10": tls.VersionTLS10,
	"VersionTLS11": tls.VersionTLS11,
	"VersionTLS12": tls.VersionTLS12,
	"VersionTLS13": tls.VersionTLS13,
}

// DefaultTLSMinVersion is the server's minimum TLS version when
// TLS_MIN_VERSION is unset, as in OpenShift's Intermediate profile.
const DefaultTLSMinVersion = tls.VersionTLS12

// openSSLSuites translates the OpenSSL cipher names of OpenShift's TLS
// profiles (Old, Intermediate, Modern, and what a Custom profile usually
// lists) to their IANA names. Entries Go does not implement are here too, so
// that they are recognised and skipped rather than rejected as unknown.
var openSSLSuites = map[string]string{
	"ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-RSA-AES128-GCM-SHA256":   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-RSA-AES256-GCM-SHA384":   "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-RSA-CHACHA20-POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-ECDSA-AES128-SHA256":     "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
	"ECDHE-RSA-AES128-SHA256":       "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
	"ECDHE-ECDSA-AES128-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
	"ECDHE-RSA-AES128-SHA":          "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
	"ECDHE-ECDSA-AES256-SHA384":     "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
	"ECDHE-RSA-AES256-SHA384":       "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
	"ECDHE-ECDSA-AES256-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
	"ECDHE-RSA-AES256-SHA":          "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
	"ECDHE-RSA-DES-CBC3-SHA":        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
	"ECDHE-ECDSA-RC4-SHA":           "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
	"ECDHE-RSA-RC4-SHA":             "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
	"DHE-RSA-AES128-GCM-SHA256":     "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
	"DHE-RSA-AES256-GCM-SHA384":     "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
	"DHE-RSA-CHACHA20-POLY1305":     "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	"DHE-RSA-AES128-SHA256":         "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
	"DHE-RSA-AES256-SHA256":         "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
	"DHE-RSA-AES128-SHA":            "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
	"DHE-RSA-AES256-SHA":            "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
	"AES128-GCM-SHA256":             "TLS_RSA_WITH_AES_128_GCM_SHA256",
	"AES256-GCM-SHA384":             "TLS_RSA_WITH_AES_256_GCM_SHA384",
	"AES128-SHA256":                 "TLS_RSA_WITH_AES_128_CBC_SHA256",
	"AES256-SHA256":                 "TLS_RSA_WITH_AES_256_CBC_SHA256",
	"AES128-SHA":                    "TLS_RSA_WITH_AES_128_CBC_SHA",
	"AES256-SHA":                    "TLS_RSA_WITH_AES_256_CBC_SHA",
	"DES-CBC3-SHA":                  "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
	"RC4-SHA":                       "TLS_RSA_WITH_RC4_128_SHA",
}

// tls13Suites are the TLS 1.3 suite names (the same in OpenSSL and IANA
// spelling). Go always enables its TLS 1.3 suites and offers no way to
// choose among them, so these are recognised and skipped.
var tls13Suites = []string{
	"TLS_AES_128_GCM_SHA256",
	"TLS_AES_256_GCM_SHA384",
	"TLS_CHACHA20_POLY1305_SHA256",
	"TLS_AES_128_CCM_SHA256",
	"TLS_AES_128_CCM_8_SHA256",
}

// legacySuiteNames are names Go's crypto/tls keeps as constants (and
// OpenShift's library-go accepts) for suites whose IANA name is longer.
var legacySuiteNames = map[string]string{
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
}

// errNoUsableSuite is returned when every listed suite was skipped while
// TLS 1.2 or older is allowed: falling back to Go's defaults would accept
// suites the administrator did not list.
var errNoUsableSuite = errors.New("none of the listed cipher suites can be used with TLS 1.2 or older (set TLS_MIN_VERSION=VersionTLS13, or list a suite Go implements)")

// parseTLSMinVersion parses a TLS_MIN_VERSION value; "" gives 0 (unset).
func parseTLSMinVersion(s string) (uint16, error) {
	if s == "" {
		return 0, nil
	}
	v, ok := tlsVersions[s]
	if !ok {
		return 0, fmt.Errorf("unknown TLS version %q (want VersionTLS10, VersionTLS11, VersionTLS12 or VersionTLS13)", s)
	}
	return v, nil
}

// parseCipherSuites parses a comma-separated TLS_CIPHER_SUITES value of
// OpenSSL or IANA names, in the order given, without duplicates. Names Go
// cannot configure are returned in skipped, as written. Empty elements are
// ignored (the operator writes "" when it has nothing to say).
func parseCipherSuites(s string) (suites []uint16, skipped []string, err error) {
	goSuites := map[string]*tls.CipherSuite{}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		goSuites[cs.Name] = cs
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		iana := name
		if n, ok := openSSLSuites[name]; ok {
			iana = n
		} else if n, ok := legacySuiteNames[name]; ok {
			iana = n
		}
		cs, implemented := goSuites[iana]
		switch {
		case implemented && slices.ContainsFunc(cs.SupportedVersions, func(v uint16) bool { return v < tls.VersionTLS13 }):
			if !slices.Contains(suites, cs.ID) {
				suites = append(suites, cs.ID)
			}
		case implemented, slices.Contains(tls13Suites, iana), knownIANASuite(iana):
			skipped = append(skipped, name)
		default:
			return nil, nil, fmt.Errorf("unknown cipher suite %q (want OpenSSL names such as ECDHE-RSA-AES128-GCM-SHA256 or IANA names such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)", name)
		}
	}
	return suites, skipped, nil
}

// knownIANASuite reports whether name is the IANA name of a suite in
// openSSLSuites, so an IANA-spelled DHE suite is skipped like its OpenSSL
// spelling.
func knownIANASuite(name string) bool {
	for _, v := range openSSLSuites {
		if v == name {
			return true
		}
	}
	return false
}

// loadTLS fills TLSMinVersion, TLSCipherSuites and TLSSkippedCiphers.
func (c *Config) loadTLS(e env) error {
	s, from := e.str("TLS_MIN_VERSION", "")
	v, err := parseTLSMinVersion(strings.TrimSpace(s))
	if err != nil {
		return &Error{from, err}
	}
	c.TLSMinVersion = v
	s, from = e.str("TLS_CIPHER_SUITES", "")
	suites, skipped, err := parseCipherSuites(s)
	if err != nil {
		return &Error{from, err}
	}
	if len(suites) == 0 && len(skipped) > 0 && c.effectiveTLSMinVersion() < tls.VersionTLS13 {
		return &Error{from, fmt.Errorf("%w; skipped: %s", errNoUsableSuite, strings.Join(skipped, ","))}
	}
	c.TLSCipherSuites, c.TLSSkippedCiphers = suites, skipped
	return nil
}

func (c *Config) effectiveTLSMinVersion() uint16 {
	if c.TLSMinVersion == 0 {
		return DefaultTLSMinVersion
	}
	return c.TLSMinVersion
}

// TLSConfig returns the HTTPS listener's configuration: certs, the minimum
// version (DefaultTLSMinVersion when TLS_MIN_VERSION is unset) and, when
// TLS_CIPHER_SUITES listed any Go implements, those suites for TLS 1.2 and
// older (Go ignores the list for TLS 1.3). Each call returns a new
// *tls.Config, safe for the caller to modify.
func (c *Config) TLSConfig(certs []tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: certs,
		MinVersion:   c.effectiveTLSMinVersion(),
		CipherSuites: slices.Clone(c.TLSCipherSuites),
	}
}

// tlsVersionName is the TLS_MIN_VERSION spelling of v.
func tlsVersionName(v uint16) string {
	for name, n := range tlsVersions {
		if n == v {
			return name
		}
	}
	return fmt.Sprintf("0x%04x", v)
}
