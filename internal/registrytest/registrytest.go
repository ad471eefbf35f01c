// Package registrytest runs a real container registry for tests: Debian's
// docker-registry (distribution 2.8) on 127.0.0.1, over TLS with a
// certificate made for the test and htpasswd authentication, storing into
// the test's temporary directory. It also builds and pushes images with
// go-containerregistry, so tests of any package can serve an OS image from
// a docker:// URL.
//
// The tools (docker-registry, htpasswd from apache2-utils) must be
// installed; a missing one fails the test.
package registrytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is a running registry.
type Registry struct {
	// Host is 127.0.0.1:PORT.
	Host string
	// CAFile is the PEM certificate the registry serves (self-signed):
	// pass it as OS_IMAGE_DOWNLOAD_TRUSTED_CA_FILE.
	CAFile string
	// AuthFile is a containers-auth.json with User and Password for Host:
	// pass it as REGISTRY_AUTH_FILE.
	AuthFile string
	// User and Password are the only credentials the registry accepts.
	User, Password string

	rt *http.Transport
}

// startTimeout bounds how long the registry may take to answer on a busy
// machine.
const startTimeout = 60 * time.Second

// Start runs a registry until the test ends.
func Start(t testing.TB) *Registry {
	t.Helper()
	bin := requireTool(t, "docker-registry")
	requireTool(t, "htpasswd")
	dir := t.TempDir()
	caFile, certFile, keyFile, pool := writeCert(t, dir)
	r := &Registry{
		CAFile: caFile, User: "isoedge", Password: randomHex(t, 16),
		rt: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	t.Cleanup(r.rt.CloseIdleConnections)
	out, err := exec.Command("htpasswd", "-Bbn", r.User, r.Password).Output()
	if err != nil {
		t.Fatalf("registrytest: htpasswd: %v", err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	writeFile(t, htpasswd, []byte(strings.TrimSpace(string(out))+"\n"))

	// The port is chosen by closing a listener: another process may take
	// it before the registry binds, so a registry that exits is retried.
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		r.Host = "127.0.0.1:" + strconv.Itoa(port)
		cfg := filepath.Join(dir, "config.yml")
		writeFile(t, cfg, []byte(fmt.Sprintf(configTemplate,
			filepath.Join(dir, "storage"), r.Host, randomHex(t, 16), certFile, keyFile, htpasswd)))
		p := startProcess(t, bin, cfg)
		err := r.waitUp(p)
		if err == nil {
			t.Cleanup(func() {
				p.stop()
				if t.Failed() {
					t.Logf("registrytest: registry log:\n%s", p.log.tail(4096))
				}
			})
			break
		}
		p.stop()
		if !p.exited() || attempt == 3 {
			t.Fatalf("registrytest: registry on %s: %v\n%s", r.Host, err, p.log.tail(4096))
		}
	}
	r.AuthFile = r.WriteAuthFile(t, r.User, r.Password)
	return r
}

const configTemplate = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: isoedge-registrytest
    path: %s
`

// WriteAuthFile writes a containers-auth.json holding user and password for
// the registry (the "auth" field form) and returns its path.
func (r *Registry) WriteAuthFile(t testing.TB, user, password string) string {
	t.Helper()
	doc := map[string]any{"auths": map[string]any{
		r.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))},
	}}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "auth.json")
	writeFile(t, p, b)
	return p
}

// Transport trusts the registry's certificate.
func (r *Registry) Transport() http.RoundTripper { return r.rt }

func (r *Registry) options() []remote.Option {
	return []remote.Option{
		remote.WithTransport(r.rt),
		remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password}),
	}
}

// Push writes img as repoTag ("repo:tag") and returns its URL by digest,
// docker://HOST/repo@sha256:….
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	ref := r.ref(t, repoTag)
	if err := remote.Write(ref, img, r.options()...); err != nil {
		t.Fatalf("registrytest: push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return "docker://" + ref.Context().String() + "@" + d.String()
}

// PushIndex writes idx (and every image in it) as repoTag and returns its
// URL by digest.
func (r *Registry) PushIndex(t testing.TB, repoTag string, idx v1.ImageIndex) string {
	t.Helper()
	ref := r.ref(t, repoTag)
	if err := remote.WriteIndex(ref, idx, r.options()...); err != nil {
		t.Fatalf("registrytest: push index %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return "docker://" + ref.Context().String() + "@" + d.String()
}

// PushISO pushes a one-layer linux/<platformArch> image holding files
// (absolute path → content, written in sorted order) as repo:latest and
// returns its URL by digest.
func (r *Registry) PushISO(t testing.TB, repo string, files map[string][]byte, platformArch string) string {
	t.Helper()
	return r.Push(t, repo+":latest", Image(t, platformArch, Layer(t, Files(files)...)))
}

func (r *Registry) ref(t testing.TB, repoTag string) name.Tag {
	t.Helper()
	ref, err := name.NewTag(r.Host+"/"+repoTag, name.StrictValidation)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	return ref
}

// waitUp polls /v2/ until the registry answers (401 without credentials),
// the process exits, or startTimeout passes.
func (r *Registry) waitUp(p *process) error {
	client := &http.Client{Transport: r.rt, Timeout: 5 * time.Second}
	deadline := time.Now().Add(startTimeout)
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get("https://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("/v2/ answered %d, want 401", resp.StatusCode)
		}
		last = err
		select {
		case <-p.done:
			return fmt.Errorf("registry exited: %v (last poll: %v)", p.err, last)
		case <-poll.C:
		}
	}
	return fmt.Errorf("not up after %s: %v", startTimeout, last)
}

// process is a running docker-registry.
type process struct {
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
	err  error // set before done is closed
}

func startProcess(t testing.TB, bin, cfg string) *process {
	t.Helper()
	p := &process{log: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", cfg)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	dieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("registrytest: start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop kills the registry and waits for it.
func (p *process) stop() {
	if !p.exited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func requireTool(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("registrytest: %s is not installed (Debian: docker-registry, apache2-utils): %v", tool, err)
	}
	return p
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// writeCert writes a self-signed certificate for 127.0.0.1 and localhost,
// which is also its own CA, and its key.
func writeCert(t testing.TB, dir string) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "isoedge registrytest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, "registry.crt")
	keyFile = filepath.Join(dir, "registry.key")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, certFile, keyFile, pool
}

func writeFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
