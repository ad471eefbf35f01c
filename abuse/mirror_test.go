//go:build abuse

package abuse

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mirrorReq is one request a mirror received.
type mirrorReq struct {
	Method string
	URI    string // request line target, query included
	Host   string
	Header http.Header
	When   time.Time
}

// Behaviours of a mirror file.
const (
	serveNormal  = ""        // http.ServeContent: Range, If-Range, ETag as set
	serveStall   = "stall"   // headers with Content-Length and 64 KiB, then nothing
	serveEndless = "endless" // 200 without Content-Length, bytes until capped
)

type mirrorFile struct {
	data    []byte
	etag    string    // strong ETag, "" for none
	modTime time.Time // Last-Modified, zero for none
	mode    string
}

// mirror is a hostile OS image mirror on a loopback address. Behaviour can
// be switched while it runs; it records and counts every request.
type mirror struct {
	t    testing.TB
	ln   net.Listener
	srv  *http.Server
	base string // scheme://host:port
	tls  bool
	cert []byte // PEM of its certificate when tls

	mu        sync.Mutex
	files     map[string]*mirrorFile
	redirects map[string]string // path → Location
	reqs      []mirrorReq
	gate      chan struct{} // requests wait while non-nil and open

	rate        atomic.Int64 // bytes per second per response, 0 = unthrottled
	sent        atomic.Int64 // body bytes written, all responses
	endlessCap  int64        // per response
	endlessLeft atomic.Int64 // over all responses
	closed      chan struct{}
}

// newMirror starts a plain-HTTP mirror on host (127.0.0.1, 127.0.0.2, …).
func newMirror(t testing.TB, host string) *mirror { return startMirror(t, host, false) }

// newTLSMirror starts an HTTPS mirror with a self-signed certificate for host.
func newTLSMirror(t testing.TB, host string) *mirror { return startMirror(t, host, true) }

func startMirror(t testing.TB, host string, useTLS bool) *mirror {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	m := &mirror{
		t: t, ln: ln, tls: useTLS,
		files: map[string]*mirrorFile{}, redirects: map[string]string{},
		endlessCap: 256 << 20, closed: make(chan struct{}),
	}
	m.endlessLeft.Store(1 << 30)
	m.srv = &http.Server{Handler: m, ErrorLog: nil}
	scheme := "http"
	if useTLS {
		scheme = "https"
		certPEM, keyPEM := selfSigned(t, host)
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		m.cert = certPEM
		m.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}}
		ln = tls.NewListener(ln, m.srv.TLSConfig)
	}
	m.base = scheme + "://" + m.ln.Addr().String()
	go m.srv.Serve(ln)
	t.Cleanup(m.close)
	return m
}

func (m *mirror) close() {
	m.mu.Lock()
	select {
	case <-m.closed:
	default:
		close(m.closed)
	}
	if m.gate != nil {
		select {
		case <-m.gate:
		default:
			close(m.gate)
		}
	}
	m.mu.Unlock()
	m.srv.Close()
}

// url is the mirror's URL for path.
func (m *mirror) url(path string) string { return m.base + path }

// put serves data at path with a strong ETag etag ("" for none) and no
// Last-Modified.
func (m *mirror) put(path string, data []byte, etag string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[path] = &mirrorFile{data: data, etag: etag}
}

// putMode serves path with one of the hostile behaviours.
func (m *mirror) putMode(path string, data []byte, mode string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[path] = &mirrorFile{data: data, mode: mode}
}

// redirect answers path with 302 Found to location.
func (m *mirror) redirect(path, location string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.redirects[path] = location
}

// hold makes new requests wait until release.
func (m *mirror) hold() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gate == nil {
		m.gate = make(chan struct{})
	}
}

// release lets held and future requests through.
func (m *mirror) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gate != nil {
		close(m.gate)
		m.gate = nil
	}
}

// throttle limits each response to bytesPerSec (0: no limit).
func (m *mirror) throttle(bytesPerSec int64) { m.rate.Store(bytesPerSec) }

func (m *mirror) requests() []mirrorReq {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mirrorReq(nil), m.reqs...)
}

func (m *mirror) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.reqs)
}

func (m *mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.reqs = append(m.reqs, mirrorReq{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), When: time.Now()})
	gate, f, loc := m.gate, m.files[r.URL.Path], m.redirects[r.URL.Path]
	m.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		case <-m.closed:
			return
		}
	}
	if loc != "" {
		http.Redirect(w, r, loc, http.StatusFound)
		return
	}
	if f == nil {
		http.NotFound(w, r)
		return
	}
	switch f.mode {
	case serveStall:
		w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		n, _ := w.Write(f.data[:min(len(f.data), 64<<10)])
		m.sent.Add(int64(n))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-m.closed:
		}
	case serveEndless:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("endless!"), 128<<10/8)
		tw := &throttledWriter{ResponseWriter: w, m: m, start: time.Now(), done: r.Context().Done()}
		for sent := int64(0); sent < m.endlessCap; sent += int64(len(chunk)) {
			if m.endlessLeft.Add(-int64(len(chunk))) < 0 {
				break
			}
			if _, err := tw.Write(chunk); err != nil {
				return
			}
		}
		// Never a clean end: the body is cut, as a broken endless stream is.
		panic(http.ErrAbortHandler)
	default:
		if f.etag != "" {
			w.Header().Set("ETag", f.etag)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		tw := &throttledWriter{ResponseWriter: w, m: m, start: time.Now(), done: r.Context().Done()}
		http.ServeContent(tw, r, "", f.modTime, bytes.NewReader(f.data))
	}
}

// throttledWriter paces a response body at the mirror's rate and counts it.
type throttledWriter struct {
	http.ResponseWriter
	m       *mirror
	start   time.Time
	written int64
	done    <-chan struct{}
}

func (w *throttledWriter) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		n := min(len(p), 32<<10)
		k, err := w.ResponseWriter.Write(p[:n])
		total += k
		w.written += int64(k)
		w.m.sent.Add(int64(k))
		if err != nil {
			return total, err
		}
		p = p[n:]
		if rate := w.m.rate.Load(); rate > 0 {
			// Pacing, not waiting for a condition: the body must take time.
			due := w.start.Add(time.Duration(float64(w.written) / float64(rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				w.ResponseWriter.(http.Flusher).Flush()
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-w.done:
					t.Stop()
					return total, io.ErrClosedPipe
				case <-w.m.closed:
					t.Stop()
					return total, io.ErrClosedPipe
				}
			}
		}
	}
	return total, nil
}

// ---------------------------------------------------------------------------
// Raw TCP servers

// rawServer accepts TCP connections on a loopback address and hands each to
// handle; it counts them and closes them all at cleanup (or earlier, with
// shut).
type rawServer struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
	closed   chan struct{}
	once     sync.Once
}

func newRawServer(t testing.TB, host string, handle func(c net.Conn, closed <-chan struct{})) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, closed: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go handle(c, s.closed)
		}
	}()
	t.Cleanup(s.shut)
	return s
}

func (s *rawServer) addr() string { return s.ln.Addr().String() }

// shut closes the listener and every connection.
func (s *rawServer) shut() {
	s.once.Do(func() {
		close(s.closed)
		s.ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
}

// silentHandler reads whatever arrives and never answers.
func silentHandler(c net.Conn, closed <-chan struct{}) {
	_, _ = io.Copy(io.Discard, c)
	<-closed
}

// overlongHandler answers every request with a Content-Length of declared
// bytes and then sends bytes without end (capped at limit per connection),
// bytesPerSec at most.
func overlongHandler(declared, limit, bytesPerSec int64) func(net.Conn, <-chan struct{}) {
	return func(c net.Conn, closed <-chan struct{}) {
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", declared)
		chunk := bytes.Repeat([]byte("overlong"), 128<<10/8)
		start := time.Now()
		for sent := int64(0); sent < limit; sent += int64(len(chunk)) {
			// Pacing, so that the client's disk use can be watched.
			due := start.Add(time.Duration(float64(sent) / float64(bytesPerSec) * float64(time.Second)))
			select {
			case <-closed:
				return
			case <-time.After(time.Until(due)):
			}
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Certificates

// selfSigned returns a PEM certificate (its own CA) and key for host.
func selfSigned(t testing.TB, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP(host)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// writeFile writes b to a new file in a temporary directory.
func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
