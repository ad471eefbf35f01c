package upstream

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// newTLSServer starts an HTTPS server and writes its certificate as PEM.
func newTLSServer(t *testing.T, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	var buf bytes.Buffer
	pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return srv, writeFile(t, t.TempDir(), "ca.crt", buf.String())
}

func TestClientCAFile(t *testing.T) {
	srv, caFile := newTLSServer(t, http.HandlerFunc(defaultAS))
	u, _ := url.Parse(srv.URL)
	tests := []struct {
		name   string
		caFile string
		ok     bool
	}{
		{"with CA file", caFile, true},
		{"system roots only", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(ClientConfig{Scheme: "https", Host: u.Host, CAFile: tt.caFile, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Ignition(t.Context(), testImageID, "full-iso", Credential{CredAPIKey, testSecret})
			if tt.ok && err != nil {
				t.Fatalf("err = %v", err)
			}
			if !tt.ok {
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("err = %v, want ErrUnavailable (untrusted certificate)", err)
				}
				checkErrText(t, err)
			}
		})
	}
}

func TestServiceTLSConfigOnlyTrustsFile(t *testing.T) {
	_, caFile := newTLSServer(t, http.NotFoundHandler())
	conf, err := serviceTLSConfig(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if conf.RootCAs == nil || conf.MinVersion == 0 {
		t.Fatalf("conf = %+v", conf)
	}
	if conf, _ := serviceTLSConfig(""); conf != nil {
		t.Error("no CA file must mean default roots")
	}
}

func TestFetcherCAFile(t *testing.T) {
	srv, caFile := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("iso"))
	}))
	tests := []struct {
		name string
		cfg  FetcherConfig
		ok   bool
	}{
		{"CA appended to system pool", FetcherConfig{CAFile: caFile}, true},
		{"no CA", FetcherConfig{}, false},
		{"insecure", FetcherConfig{InsecureSkipVerify: true}, true},
		{"insecure with unrelated CA", FetcherConfig{CAFile: otherCA(t), InsecureSkipVerify: true}, true},
		{"unrelated CA", FetcherConfig{CAFile: otherCA(t)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFetcher(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			_, err = f.Fetch(t.Context(), FetchRequest{URL: srv.URL + "/x.iso"}, &buf)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// otherCA writes a freshly generated self-signed certificate. (Every
// httptest server shares one certificate, so another server will not do.)
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "unrelated test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, t.TempDir(), "other.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

func TestNewFetcherCAErrors(t *testing.T) {
	dir := t.TempDir()
	for _, caFile := range []string{filepath.Join(dir, "missing"), writeFile(t, dir, "bad.crt", "junk")} {
		if _, err := NewFetcher(FetcherConfig{CAFile: caFile}); err == nil {
			t.Errorf("NewFetcher(%s) succeeded", caFile)
		}
	}
}
