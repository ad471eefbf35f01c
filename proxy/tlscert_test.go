package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// testCertificate is a self-signed certificate for isoedge.test and
// 127.0.0.1, and a pool that trusts it.
type testCertificate struct {
	cert tls.Certificate
	pool *x509.CertPool
}

var (
	testCertOnce sync.Once
	testCertVal  testCertificate
	testCertErr  error
)

// testCert returns the package's test certificate, made once.
func testCert(t testing.TB) testCertificate {
	t.Helper()
	testCertOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			testCertErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "isoedge.test"},
			DNSNames:              []string{"isoedge.test"},
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			testCertErr = err
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			testCertErr = err
			return
		}
		pool := x509.NewCertPool()
		pool.AddCert(leaf)
		testCertVal = testCertificate{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool: pool}
	})
	if testCertErr != nil {
		t.Fatalf("test certificate: %v", testCertErr)
	}
	return testCertVal
}
