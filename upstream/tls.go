package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// newTransport clones http.DefaultTransport, so HTTP(S)_PROXY and NO_PROXY
// are honoured and pooling defaults stay Go's, installs tlsConf if not nil,
// and bounds establishing a TCP connection by connect.
func newTransport(tlsConf *tls.Config, connect time.Duration) *http.Transport {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	if tlsConf != nil {
		t.TLSClientConfig = tlsConf
	}
	t.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	// Every new download makes up to three concurrent calls to one host:
	// keep enough idle connections that they are reused, not redialled.
	t.MaxIdleConnsPerHost = 64
	return t
}

// serviceTLSConfig trusts only the certificates in caFile, as AIS does for
// assisted-service; nil when caFile is "" (system roots).
func serviceTLSConfig(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if err := appendCAFile(pool, caFile); err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// downloadTLSConfig is the TLS configuration for OS image downloads: caFile
// is added to the system pool (an empty pool if the system one cannot be
// loaded), and insecure is honoured whether or not caFile is set (AIS drops
// it when a CA file is given, quirk Z.4). nil means Go's defaults.
func downloadTLSConfig(caFile string, insecure bool) (*tls.Config, error) {
	if caFile == "" && !insecure {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if err := appendCAFile(pool, caFile); err != nil {
			return nil, err
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

func appendCAFile(pool *x509.CertPool, caFile string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("upstream: read CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("upstream: CA file %s holds no PEM certificate", caFile)
	}
	return nil
}
