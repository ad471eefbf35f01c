package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
	"github.com/isoedge/isoedge/proxy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// 8. The listener table (§B.0).
func TestListenerTable(t *testing.T) {
	t.Parallel()
	const cert, key = "/etc/isoedge/tls.crt", "/etc/isoedge/tls.key"
	cases := []struct {
		name string
		env  map[string]string
		want []proxy.ListenSpec
	}{
		{
			name: "HTTP_LISTEN_PORT unset, cert+key set: HTTPS on LISTEN_PORT",
			env:  map[string]string{"LISTEN_PORT": "8443", "HTTPS_CERT_FILE": cert, "HTTPS_KEY_FILE": key},
			want: []proxy.ListenSpec{{Addr: ":8443", TLS: true}},
		},
		{
			name: "HTTP_LISTEN_PORT unset, no cert: HTTP on LISTEN_PORT",
			env:  map[string]string{"LISTEN_PORT": "8443"},
			want: []proxy.ListenSpec{{Addr: ":8443"}},
		},
		{
			name: "HTTP_LISTEN_PORT unset, no cert, default LISTEN_PORT",
			env:  map[string]string{},
			want: []proxy.ListenSpec{{Addr: ":8080"}},
		},
		{
			name: "HTTP_LISTEN_PORT set, no cert: HTTP on HTTP_LISTEN_PORT only",
			env:  map[string]string{"LISTEN_PORT": "8443", "HTTP_LISTEN_PORT": "8081"},
			want: []proxy.ListenSpec{{Addr: ":8081"}},
		},
		{
			name: "HTTP_LISTEN_PORT set, cert+key set: HTTPS on LISTEN_PORT and restricted HTTP",
			env:  map[string]string{"LISTEN_PORT": "8443", "HTTP_LISTEN_PORT": "8081", "HTTPS_CERT_FILE": cert, "HTTPS_KEY_FILE": key},
			want: []proxy.ListenSpec{{Addr: ":8443", TLS: true}, {Addr: ":8081", PlainHTTP: true}},
		},
		{
			name: "HTTP_LISTEN_PORT set, cert+key set, default LISTEN_PORT",
			env:  map[string]string{"HTTP_LISTEN_PORT": "8081", "HTTPS_CERT_FILE": cert, "HTTPS_KEY_FILE": key},
			want: []proxy.ListenSpec{{Addr: ":8080", TLS: true}, {Addr: ":8081", PlainHTTP: true}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config.Load(func(k string) (string, bool) {
				v, ok := c.env[k]
				return v, ok
			})
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			if got := proxy.ListenSpecs(cfg); !reflect.DeepEqual(got, c.want) {
				t.Errorf("ListenSpecs = %+v, want %+v", got, c.want)
			}
		})
	}
}

// writeSelfSigned writes a self-signed ECDSA certificate for 127.0.0.1 and
// localhost and its key as PEM files and returns their paths and the
// certificate.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(4711),
		Subject:               pkix.Name{CommonName: "isoedge test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, "tls.crt")
	keyFile = filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// handedOut holds the ports freePort returned, so that no two tests of
// this process are given the same one.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// freePort returns a TCP port that was free a moment ago, for a listener
// the code under test opens itself (LISTEN_PORT takes no 0). It is taken
// below the kernel's ephemeral range: a port the kernel handed out for
// ":0" would be handed out again, to any of the many outgoing connections
// of the tests running beside, before the listener under test opens it.
func freePort(t *testing.T) string {
	t.Helper()
	lo := 32768 // Linux's default start of ip_local_port_range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	first := 10000
	if lo-first < 1000 {
		t.Fatalf("ip_local_port_range starts at %d: no room for fixed ports below it", lo)
	}
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	for range 1000 {
		p := first + mrand.IntN(lo-first)
		if handedOut.ports[p] {
			continue
		}
		// Free on every address, as the listener under test binds it.
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		handedOut.ports[p] = true
		return strconv.Itoa(p)
	}
	t.Fatal("no free port found below the ephemeral range")
	return ""
}

// fetch GETs url with client and returns status and body.
func fetch(t *testing.T, client *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, body
}

// 9. HTTPS and the restricted plain-HTTP listener, through run().
func TestHTTPSBothListeners(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{})
	isoBytes, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	off, n := fixture.ISOOffset(t, iso, "/images/ignition.img")
	ignArea := span{name: "ignition", off: off, n: n}
	baseInitrd := fixture.ExtractFile(t, iso, "/images/pxeboot/initrd.img")
	kernel := fixture.ExtractFile(t, iso, "/images/pxeboot/vmlinuz")

	fake := newFakeAS(t)
	id := "c3a1b2d4-0000-4000-8000-000000000001"
	fake.set(id, &infraEnv{ignition: ignitionFor("https"), lastModified: fakeLastMod})

	certFile, keyFile, cert := writeSelfSigned(t, dir)
	tlsPort, httpPort := freePort(t), freePort(t)
	env := baseEnv(t.TempDir())
	env["ASSISTED_SERVICE_HOST"] = fake.hostPort()
	env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{
		OpenshiftVersion: ocpVersion, CPUArchitecture: "x86_64", URL: "file://" + iso, Version: rhcosVersion,
	})
	env["LISTEN_PORT"] = tlsPort
	env["HTTP_LISTEN_PORT"] = httpPort
	env["HTTPS_CERT_FILE"] = certFile
	env["HTTPS_KEY_FILE"] = keyFile
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	logs := &syncBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), logs, zapcore.DebugLevel))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("isoedge log:\n%s", logs.String())
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- run(ctx, cfg, log) }()

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tlsClient := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableCompression: true},
		Timeout:   30 * time.Second,
	}
	plainClient := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	httpsURL := "https://127.0.0.1:" + tlsPort
	httpURL := "http://127.0.0.1:" + httpPort

	// Wait until both listeners answer and the image is ready.
	deadline := time.Now().Add(120 * time.Second)
	for {
		select {
		case err := <-runErr:
			t.Fatalf("run returned early: %v", err)
		default:
		}
		r1, e1 := tlsClient.Get(httpsURL + "/health")
		r2, e2 := plainClient.Get(httpURL + "/health")
		ok := e1 == nil && e2 == nil && r1.StatusCode == 200 && r2.StatusCode == 200
		for _, r := range []*http.Response{r1, r2} {
			if r != nil {
				_, _ = io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 120s: https %v, http %v", e1, e2)
		}
		time.Sleep(20 * time.Millisecond)
	}

	full := "/byid/" + id + "/" + ocpVersion + "/x86_64/full.iso"
	initrd := "/images/" + id + "/pxe-initrd?version=" + ocpVersion
	kernelPath := "/boot-artifacts/kernel?version=" + ocpVersion

	t.Run("HTTPS", func(t *testing.T) {
		resp, body := fetch(t, tlsClient, httpsURL+full)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET https full.iso: status %d (%.200q)", resp.StatusCode, body)
		}
		if resp.TLS == nil {
			t.Error("response did not come over TLS")
		}
		if len(body) != len(isoBytes) {
			t.Fatalf("full.iso is %d bytes, base %d", len(body), len(isoBytes))
		}
		if got := ignitionOf(t, body); !bytes.Equal(got, ignitionFor("https")) {
			t.Errorf("config.ign over HTTPS %.120q, want the fake's ignition", got)
		}
		assertSameOutside(t, body, isoBytes, ignArea)
		for _, p := range []string{initrd, kernelPath, "/health"} {
			if resp, body := fetch(t, tlsClient, httpsURL+p); resp.StatusCode != http.StatusOK {
				t.Errorf("GET https %s: status %d (%.200q)", p, resp.StatusCode, body)
			}
		}
	})

	t.Run("PlainHTTP", func(t *testing.T) {
		for _, p := range []string{
			full,
			"/images/" + id + "?version=" + ocpVersion + "&type=full-iso",
			"/images/" + id + "/s390x-initrd-addrsize?version=" + ocpVersion,
		} {
			resp, body := fetch(t, plainClient, httpURL+p)
			if resp.StatusCode != http.StatusNotFound || strings.TrimSpace(string(body)) != "404 page not found" {
				t.Errorf("GET http %s: status %d body %.200q; want 404 \"404 page not found\"", p, resp.StatusCode, body)
			}
		}
		resp, body := fetch(t, plainClient, httpURL+initrd)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET http pxe-initrd: status %d (%.200q)", resp.StatusCode, body)
		}
		if !bytes.HasPrefix(body, baseInitrd) {
			t.Error("pxe-initrd over HTTP does not start with the ISO's initrd")
		} else if files := fixture.CpioFiles(t, body[len(baseInitrd):]); !bytes.Equal(files["config.ign"], ignitionFor("https")) {
			t.Error("pxe-initrd over HTTP has the wrong config.ign")
		}
		resp, body = fetch(t, plainClient, httpURL+kernelPath)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, kernel) {
			t.Errorf("GET http kernel: status %d, %d bytes; want 200 and the ISO's vmlinuz", resp.StatusCode, len(body))
		}
		for _, p := range []string{"/boot-artifacts/rootfs?version=" + ocpVersion, "/health"} {
			if resp, body := fetch(t, plainClient, httpURL+p); resp.StatusCode != http.StatusOK {
				t.Errorf("GET http %s: status %d (%.200q)", p, resp.StatusCode, body)
			}
		}
	})

	tlsClient.CloseIdleConnections()
	plainClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("run returned %v after cancel, want nil", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return within 60s of cancelling its context")
	}
	// Both ports are closed again.
	for _, p := range []string{tlsPort, httpPort} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, time.Second); err == nil {
			c.Close()
			t.Errorf("port %s still accepts connections after run returned", p)
		}
	}
}

// 10. A bad environment makes the binary exit with status 1 before it
// listens or touches DATA_DIR.
func TestBadEnvExits(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "isoedge")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range []struct {
		name, key, value string
	}{
		{"MaxConcurrentRequests", "MAX_CONCURRENT_REQUESTS", "abc"},
		{"OSImages", "OS_IMAGES", "[{}]"},
		{"ListenPort", "LISTEN_PORT", "abc"},
		{"HTTPListenPort", "HTTP_LISTEN_PORT", "70000"},
		{"TLSMinVersion", "TLS_MIN_VERSION", "VersionTLS14"},
		{"TLSCipherSuites", "TLS_CIPHER_SUITES", "ECDHE-RSA-AES128-GCM-SHA256,NOT-A-CIPHER"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = []string{
				"PATH=" + os.Getenv("PATH"),
				"HOME=" + t.TempDir(),
				"DATA_DIR=" + dataDir,
				"DATA_TEMP_DIR=" + dataDir + "_tmp",
				"ASSISTED_SERVICE_HOST=127.0.0.1:1",
				c.key + "=" + c.value,
			}
			if c.key != "LISTEN_PORT" {
				cmd.Env = append(cmd.Env, "LISTEN_PORT="+freePort(t))
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("%s=%s: exit %v after %v, want status 1; stderr:\n%s", c.key, c.value, err, time.Since(start), stderr.String())
			}
			if !strings.Contains(stderr.String(), c.key) {
				t.Errorf("stderr does not name %s:\n%s", c.key, stderr.String())
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("DATA_DIR was created (stat: %v) although the configuration is invalid", err)
			}
		})
	}
}

// TestTLSProfile: TLS_MIN_VERSION and TLS_CIPHER_SUITES, as the
// assisted-service operator sets them from the cluster's TLS profile,
// apply to the HTTPS listener; checked with OpenSSL's client.
func TestTLSProfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{})
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	port := freePort(t)
	env := baseEnv(t.TempDir())
	env["IGNITION_DIR"] = t.TempDir()
	env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{OpenshiftVersion: ocpVersion, CPUArchitecture: "x86_64", URL: "file://" + iso, Version: rhcosVersion})
	env["LISTEN_PORT"] = port
	env["HTTPS_CERT_FILE"] = certFile
	env["HTTPS_KEY_FILE"] = keyFile
	env["TLS_MIN_VERSION"] = "VersionTLS13"
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- run(ctx, cfg, zap.NewNop()) }()
	t.Cleanup(func() {
		cancel()
		<-runErr
	})
	sClient := func(version string) (string, error) {
		cmd := exec.Command("openssl", "s_client", "-connect", "127.0.0.1:"+port, version, "-servername", "localhost")
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Wait for the listener, as a client that speaks TLS 1.3 sees it.
	deadline := time.Now().Add(120 * time.Second)
	for {
		out, err := sClient("-tls1_3")
		if err == nil && strings.Contains(out, "TLSv1.3") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS 1.3 handshake: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := sClient("-tls1_2"); err == nil || strings.Contains(out, "Cipher is ECDHE") {
		t.Errorf("a TLS 1.2 client was accepted with TLS_MIN_VERSION=VersionTLS13:\n%s", out)
	}
}
