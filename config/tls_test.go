package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"reflect"
	"testing"
	"time"
)

// OpenShift's built-in TLS profiles (openshift/api config/v1
// TLSProfiles), OpenSSL spelling, as a Custom profile or a hand-written
// deployment would carry them.
const (
	intermediateOpenSSL = "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256," +
		"ECDHE-ECDSA-AES128-GCM-SHA256,ECDHE-RSA-AES128-GCM-SHA256,ECDHE-ECDSA-AES256-GCM-SHA384," +
		"ECDHE-RSA-AES256-GCM-SHA384,ECDHE-ECDSA-CHACHA20-POLY1305,ECDHE-RSA-CHACHA20-POLY1305," +
		"DHE-RSA-AES128-GCM-SHA256,DHE-RSA-AES256-GCM-SHA384"
	oldOpenSSL = intermediateOpenSSL + ",DHE-RSA-CHACHA20-POLY1305,ECDHE-ECDSA-AES128-SHA256,ECDHE-RSA-AES128-SHA256," +
		"ECDHE-ECDSA-AES128-SHA,ECDHE-RSA-AES128-SHA,ECDHE-ECDSA-AES256-SHA384,ECDHE-RSA-AES256-SHA384," +
		"ECDHE-ECDSA-AES256-SHA,ECDHE-RSA-AES256-SHA,DHE-RSA-AES128-SHA256,DHE-RSA-AES256-SHA256," +
		"AES128-GCM-SHA256,AES256-GCM-SHA384,AES128-SHA256,AES256-SHA256,AES128-SHA,AES256-SHA,DES-CBC3-SHA"
	// What the assisted-service operator writes for the Intermediate
	// profile: library-go's OpenSSLToIANACipherSuites drops the names it
	// cannot map (TLS 1.3, DHE) and spells the rest the IANA way.
	intermediateOperator = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256," +
		"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384," +
		"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
)

var intermediateSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func TestTLSVariables(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantMin     uint16
		wantSuites  []uint16
		wantSkipped []string
	}{
		{name: "unset", env: map[string]string{}},
		{name: "empty", env: map[string]string{"TLS_MIN_VERSION": "", "TLS_CIPHER_SUITES": ""}},
		{
			name:       "operator, Intermediate",
			env:        map[string]string{"TLS_MIN_VERSION": "VersionTLS12", "TLS_CIPHER_SUITES": intermediateOperator},
			wantMin:    tls.VersionTLS12,
			wantSuites: intermediateSuites,
		},
		{
			name:        "operator, Modern",
			env:         map[string]string{"TLS_MIN_VERSION": "VersionTLS13", "TLS_CIPHER_SUITES": ""},
			wantMin:     tls.VersionTLS13,
			wantSuites:  nil,
			wantSkipped: nil,
		},
		{
			name:        "OpenSSL names, Intermediate",
			env:         map[string]string{"TLS_MIN_VERSION": "VersionTLS12", "TLS_CIPHER_SUITES": intermediateOpenSSL},
			wantMin:     tls.VersionTLS12,
			wantSuites:  intermediateSuites,
			wantSkipped: []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384"},
		},
		{
			name:    "OpenSSL names, Old",
			env:     map[string]string{"TLS_MIN_VERSION": "VersionTLS10", "TLS_CIPHER_SUITES": oldOpenSSL},
			wantMin: tls.VersionTLS10,
			wantSuites: append(append([]uint16{}, intermediateSuites...),
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
				tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
				tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA),
			wantSkipped: []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
				"DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
				"ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "DHE-RSA-AES128-SHA256", "DHE-RSA-AES256-SHA256", "AES256-SHA256"},
		},
		{
			name:        "OpenSSL names, Modern",
			env:         map[string]string{"TLS_MIN_VERSION": "VersionTLS13", "TLS_CIPHER_SUITES": "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256"},
			wantMin:     tls.VersionTLS13,
			wantSkipped: []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"},
		},
		{
			name:       "duplicates in both spellings, spaces, empty elements, legacy name",
			env:        map[string]string{"TLS_CIPHER_SUITES": " ECDHE-RSA-AES128-GCM-SHA256 , ,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,"},
			wantSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256},
		},
		{
			name:        "IANA spelling of a DHE suite is skipped too",
			env:         map[string]string{"TLS_CIPHER_SUITES": "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,ECDHE-ECDSA-AES128-GCM-SHA256"},
			wantSuites:  []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			wantSkipped: []string{"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"},
		},
		{
			name:        "prefixed variables",
			env:         map[string]string{"CLUSTER-IMAGE_TLS_MIN_VERSION": "VersionTLS11", "TLS_MIN_VERSION": "bad", "CLUSTER-IMAGE_TLS_CIPHER_SUITES": "AES128-SHA"},
			wantMin:     tls.VersionTLS11,
			wantSuites:  []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA},
			wantSkipped: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadWith(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.TLSMinVersion != tt.wantMin {
				t.Errorf("TLSMinVersion = %#04x, want %#04x", c.TLSMinVersion, tt.wantMin)
			}
			if !reflect.DeepEqual(c.TLSCipherSuites, tt.wantSuites) {
				t.Errorf("TLSCipherSuites = %v\nwant %v", names(c.TLSCipherSuites), names(tt.wantSuites))
			}
			if !reflect.DeepEqual(c.TLSSkippedCiphers, tt.wantSkipped) {
				t.Errorf("TLSSkippedCiphers = %q\nwant %q", c.TLSSkippedCiphers, tt.wantSkipped)
			}
			cfg := c.TLSConfig(nil)
			wantMin := tt.wantMin
			if wantMin == 0 {
				wantMin = tls.VersionTLS12
			}
			if cfg.MinVersion != wantMin || !reflect.DeepEqual(cfg.CipherSuites, tt.wantSuites) {
				t.Errorf("TLSConfig: MinVersion %#04x suites %v", cfg.MinVersion, names(cfg.CipherSuites))
			}
			if len(cfg.CipherSuites) > 0 {
				cfg.CipherSuites[0] = 0
				if c.TLSCipherSuites[0] == 0 {
					t.Error("TLSConfig shares its suite list with the Config")
				}
			}
		})
	}
}

func names(ids []uint16) []string {
	var out []string
	for _, id := range ids {
		out = append(out, tls.CipherSuiteName(id))
	}
	return out
}

func TestTLSRedacted(t *testing.T) {
	c, err := loadWith(nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Redacted(); r["TLS_MIN_VERSION"] != "VersionTLS12" || r["TLS_CIPHER_SUITES"] != "(Go defaults)" {
		t.Errorf("defaults: %q %q", r["TLS_MIN_VERSION"], r["TLS_CIPHER_SUITES"])
	}
	c, err = loadWith(map[string]string{"TLS_MIN_VERSION": "VersionTLS13", "TLS_CIPHER_SUITES": "ECDHE-RSA-AES128-GCM-SHA256,AES128-SHA"})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Redacted(); r["TLS_MIN_VERSION"] != "VersionTLS13" || r["TLS_CIPHER_SUITES"] != "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA" {
		t.Errorf("set: %q %q", r["TLS_MIN_VERSION"], r["TLS_CIPHER_SUITES"])
	}
}

// TestTLSConfigHandshakes serves TLS on a loopback listener with the
// configuration TLSConfig builds and checks which client handshakes it
// accepts.
func TestTLSConfigHandshakes(t *testing.T) {
	cert, pool := selfSigned(t)
	tests := []struct {
		name   string
		env    map[string]string
		client *tls.Config
		ok     bool
	}{
		{"default accepts TLS 1.3", nil, &tls.Config{}, true},
		{"default accepts TLS 1.2", nil, &tls.Config{MaxVersion: tls.VersionTLS12}, true},
		// The client allows old versions, so only the server can refuse.
		{"default refuses TLS 1.1", nil, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.0 minimum accepts TLS 1.0", map[string]string{"TLS_MIN_VERSION": "VersionTLS10", "TLS_CIPHER_SUITES": "ECDHE-ECDSA-AES128-SHA"}, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, true},
		{"TLS 1.3 minimum refuses TLS 1.2", map[string]string{"TLS_MIN_VERSION": "VersionTLS13"}, &tls.Config{MaxVersion: tls.VersionTLS12}, false},
		{"TLS 1.3 minimum accepts TLS 1.3", map[string]string{"TLS_MIN_VERSION": "VersionTLS13"}, &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{
			"listed suite accepted",
			map[string]string{"TLS_CIPHER_SUITES": "DHE-RSA-AES128-GCM-SHA256,ECDHE-ECDSA-AES128-GCM-SHA256"},
			&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
			true,
		},
		{
			"unlisted suite refused",
			map[string]string{"TLS_CIPHER_SUITES": "DHE-RSA-AES128-GCM-SHA256,ECDHE-ECDSA-AES128-GCM-SHA256"},
			&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
			false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadWith(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := tls.Listen("tcp", "127.0.0.1:0", c.TLSConfig([]tls.Certificate{cert}))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					_ = conn.(*tls.Conn).Handshake()
					conn.Close()
				}
			}()
			cc := tt.client.Clone()
			cc.RootCAs, cc.ServerName = pool, "127.0.0.1"
			d := &net.Dialer{Timeout: 10 * time.Second}
			conn, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cc)
			if tt.ok != (err == nil) {
				t.Fatalf("handshake error = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				return
			}
			defer conn.Close()
			st := conn.ConnectionState()
			if len(tt.client.CipherSuites) > 0 && st.CipherSuite != tt.client.CipherSuites[0] {
				t.Errorf("negotiated %s", tls.CipherSuiteName(st.CipherSuite))
			}
			if tt.client.MaxVersion != 0 && st.Version != tt.client.MaxVersion {
				t.Errorf("negotiated version %#04x", st.Version)
			}
		})
	}
}

// selfSigned returns an ECDSA certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "isoedge test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
