//go:build abuse

package abuse

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// memLimitKB is the bound on the binary's peak resident set (VmHWM): 128 MiB.
const memLimitKB = 128 << 10

// pollEvery is the pause between two looks at a condition being waited for.
const pollEvery = 50 * time.Millisecond

// service is the isoedge binary under test: one configuration, run as a
// child process once or several times (restarts share DATA_DIR).
type service struct {
	t       testing.TB
	env     map[string]string
	scheme  string // "https" when HTTPS_CERT_FILE is set
	dataDir string
	tempDir string
	logs    *logSink
	client  *http.Client

	cur      *child
	children []*child
	finished bool
}

// child is one run of the binary.
type child struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited and its output is read
	err      error         // cmd.Wait's result, valid after done
	expected bool          // the test stopped it on purpose
	logFrom  int           // offset of its first log byte in the sink
}

// logSink collects the output of every run of a service. It keeps the
// first 256 MiB; a test reading secrets from it checks truncated().
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped int64
}

const logSinkMax = 256 << 20

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len()+len(p) > logSinkMax {
		l.dropped += int64(len(p))
		return len(p), nil
	}
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logSink) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

func (l *logSink) truncated() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped > 0
}

// newService prepares (does not start) the binary with env on top of the
// defaults every abuse test uses: DATA_DIR and DATA_TEMP_DIR in a fresh
// temporary directory, LISTEN_PORT on a free loopback port, debug logs, and
// minimum rootfs/kernel sizes of one byte (fixtures are small). At the end
// of the test it checks that the process never exited on its own and that
// its VmHWM stayed within memLimitKB, then stops it.
func newService(t testing.TB, env map[string]string) *service {
	t.Helper()
	root := t.TempDir()
	s := &service{
		t:       t,
		env:     map[string]string{},
		scheme:  "http",
		dataDir: filepath.Join(root, "data"),
		tempDir: filepath.Join(root, "tmp"),
		logs:    &logSink{},
	}
	s.env["DATA_DIR"] = s.dataDir
	s.env["DATA_TEMP_DIR"] = s.tempDir
	s.env["LISTEN_PORT"] = freePort(t)
	s.env["LOG_LEVEL"] = "debug"
	s.env["OS_IMAGE_MIN_ROOTFS_BYTES"] = "1"
	s.env["OS_IMAGE_MIN_KERNEL_BYTES"] = "1"
	for k, v := range env {
		s.env[k] = v
	}
	s.dataDir, s.tempDir = s.env["DATA_DIR"], s.env["DATA_TEMP_DIR"]
	if s.env["HTTPS_CERT_FILE"] != "" {
		s.scheme = "https"
	}
	s.client = &http.Client{
		Transport: &http.Transport{
			DisableCompression:  true,
			MaxIdleConnsPerHost: 16,
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the test's own self-signed certificate
		},
		Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	t.Cleanup(s.cleanup)
	return s
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		// Never the same port twice: two listeners of one service (HTTPS
		// and plain HTTP) must differ.
		if !handedOut.ports[p] {
			handedOut.ports[p] = true
			return strconv.Itoa(p)
		}
	}
	t.Fatal("no free port")
	return ""
}

// handedOut are the ports freePort has returned.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// addr is host:port of the main listener.
func (s *service) addr() string { return "127.0.0.1:" + s.env["LISTEN_PORT"] }

// url is the main listener's URL for path.
func (s *service) url(path string) string { return s.scheme + "://" + s.addr() + path }

func (s *service) envList() []string {
	// Only what the test sets, plus what a process needs to run: nothing
	// from the developer's environment (a CLUSTER-IMAGE_* there would win).
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.tempDir}
	keys := make([]string, 0, len(s.env))
	for k := range s.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+s.env[k])
	}
	return out
}

// start runs the binary and waits until its main listener answers /live.
// A port taken in the meantime by someone else is retried with another.
func (s *service) start() {
	s.t.Helper()
	if s.cur != nil && !s.cur.exited() {
		s.t.Fatalf("start: isoedge is already running")
	}
	for attempt := 0; ; attempt++ {
		c := s.spawn()
		err := s.waitLive(c, 60*time.Second)
		if err == nil {
			return
		}
		if c.exited() && attempt < 3 && strings.Contains(s.logsOf(c), "address already in use") {
			c.expected = true
			s.env["LISTEN_PORT"] = freePort(s.t)
			if s.env["HTTP_LISTEN_PORT"] != "" {
				s.env["HTTP_LISTEN_PORT"] = freePort(s.t)
			}
			continue
		}
		s.t.Fatalf("isoedge did not come up: %v\n%s", err, tail(s.logsOf(c), 8000))
	}
}

func (s *service) spawn() *child {
	s.t.Helper()
	if err := os.MkdirAll(filepath.Dir(s.dataDir), 0o755); err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(isoedgeBin)
	cmd.Env = s.envList()
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	// The child must not outlive a test binary that is killed (timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{cmd: cmd, done: make(chan struct{}), logFrom: s.logs.Len()}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", isoedgeBin, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	s.cur = c
	s.children = append(s.children, c)
	return c
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (s *service) logsOf(c *child) string {
	all := s.logs.String()
	if c.logFrom > len(all) {
		return ""
	}
	return all[c.logFrom:]
}

func (s *service) waitLive(c *child, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if c.exited() {
			return fmt.Errorf("isoedge exited: %v", c.err)
		}
		resp, err := s.client.Get(s.url("/live"))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer from /live within %v (last error %v)", timeout, err)
		}
		time.Sleep(pollEvery)
	}
}

// pid is the running process's id.
func (s *service) pid() int { return s.cur.cmd.Process.Pid }

// vmHWM returns the running process's peak resident set in kB.
func (s *service) vmHWM() (int64, error) {
	return procStatusKB(s.pid(), "VmHWM")
}

func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// checkAlive fails the test if the running process has exited.
func (s *service) checkAlive(when string) bool {
	s.t.Helper()
	if s.cur == nil {
		s.t.Errorf("%s: isoedge was never started", when)
		return false
	}
	if s.cur.exited() && !s.cur.expected {
		s.t.Errorf("%s: isoedge exited on its own: %v", when, s.cur.err)
		return false
	}
	return true
}

// checkMemory fails the test if the running process's VmHWM is over the bound.
func (s *service) checkMemory(when string) int64 {
	s.t.Helper()
	kb, err := s.vmHWM()
	if err != nil {
		s.t.Errorf("%s: reading VmHWM: %v", when, err)
		return 0
	}
	if kb > memLimitKB {
		s.t.Errorf("%s: VmHWM %d kB (%.1f MiB) exceeds %d kB (128 MiB)", when, kb, float64(kb)/1024, memLimitKB)
	}
	return kb
}

// stop checks the running process (alive, memory) and stops it with
// SIGTERM, then SIGKILL after 30 s.
func (s *service) stop() {
	s.t.Helper()
	s.halt(syscall.SIGTERM, "before stopping", true)
}

// kill checks the running process (alive, memory) and kills it with SIGKILL.
func (s *service) kill() {
	s.t.Helper()
	s.halt(syscall.SIGKILL, "before SIGKILL", true)
}

func (s *service) halt(sig syscall.Signal, when string, check bool) {
	s.t.Helper()
	c := s.cur
	if c == nil || c.exited() {
		if check {
			s.checkAlive(when)
		}
		return
	}
	if check {
		s.checkMemory(when)
	}
	c.expected = true
	s.client.CloseIdleConnections()
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		s.t.Errorf("isoedge did not stop within 30s of %v; killing it", sig)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// finish is the end-of-test check: every run of the binary exited only when
// the test stopped it, the running one is alive, its VmHWM is within the
// bound; then it is stopped. Idempotent; cleanup calls it.
func (s *service) finish() {
	s.t.Helper()
	if s.finished {
		return
	}
	s.finished = true
	for i, c := range s.children {
		if c != s.cur && c.exited() && !c.expected {
			s.t.Errorf("run %d of isoedge exited on its own: %v", i+1, c.err)
		}
	}
	if s.cur == nil {
		return
	}
	if s.checkAlive("at the end of the test") {
		kb := s.checkMemory("at the end of the test")
		s.t.Logf("isoedge VmHWM %.1f MiB", float64(kb)/1024)
		s.halt(syscall.SIGTERM, "", false)
	}
}

func (s *service) cleanup() {
	s.finish()
	for _, c := range s.children {
		if !c.exited() {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	if s.t.Failed() {
		s.t.Logf("isoedge log (last 30 kB of %d bytes):\n%s", s.logs.Len(), tail(s.logs.String(), 30000))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// waitFor polls cond until it reports done, failing the test after timeout
// or as soon as the process exits on its own. cond's string describes the
// state seen, for the failure message.
func (s *service) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		if s.cur != nil && s.cur.exited() && !s.cur.expected {
			s.t.Fatalf("isoedge exited (%v) while waiting for %s; last state: %s", s.cur.err, what, last)
		}
		done, state := cond()
		last = state
		if done {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not within %v; last state: %s", what, timeout, last)
		}
		time.Sleep(pollEvery)
	}
}

// ---------------------------------------------------------------------------
// HTTP helpers

// resp is a finished response.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request to the main listener and reads the whole body.
func (s *service) do(method, path string, hdr map[string]string) (resp, error) {
	return doURL(s.client, method, s.url(path), hdr)
}

func doURL(c *http.Client, method, url string, hdr map[string]string) (resp, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return resp{}, err
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	r, err := c.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return resp{}, fmt.Errorf("%s %s: reading body: %w", method, url, err)
	}
	return resp{status: r.StatusCode, header: r.Header, body: body}, nil
}

// get is do(GET) that fails the test on a transport error.
func (s *service) get(path string, hdr map[string]string) resp {
	s.t.Helper()
	r, err := s.do(http.MethodGet, path, hdr)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	return r
}

// mustGet is get with an expected status.
func (s *service) mustGet(path string, hdr map[string]string, want int) resp {
	s.t.Helper()
	r := s.get(path, hdr)
	if r.status != want {
		s.t.Fatalf("GET %s: status %d, want %d; body %.300q", path, r.status, want, r.body)
	}
	return r
}

// ---------------------------------------------------------------------------
// /health

// healthDoc is what the tests read from /health: the overall ready flag and
// each configured image's state string. Nothing else is asserted.
type healthDoc struct {
	Ready  bool `json:"ready"`
	Images []struct {
		Version string `json:"version"`
		Arch    string `json:"cpu_architecture"`
		State   string `json:"state"`
		Error   string `json:"error"`
	} `json:"images"`
}

// health reads /health: status, parsed body and raw body.
func (s *service) health() (int, healthDoc, string, error) {
	r, err := s.do(http.MethodGet, "/health", nil)
	if err != nil {
		return 0, healthDoc{}, "", err
	}
	var h healthDoc
	if err := json.Unmarshal(r.body, &h); err != nil {
		return r.status, healthDoc{}, string(r.body), fmt.Errorf("/health body is not JSON: %w", err)
	}
	return r.status, h, string(r.body), nil
}

// state returns the state string of the image with RHCOS version v and
// arch a, or "" when /health does not list it.
func (h healthDoc) state(v, a string) string {
	for _, img := range h.Images {
		if img.Version == v && img.Arch == a {
			return img.State
		}
	}
	return ""
}

// waitStates waits until /health shows each image (version/arch key) in
// the wanted state, and, if status is non-zero, /health answers it.
func (s *service) waitStates(timeout time.Duration, status int, want map[imageKey]string) {
	s.t.Helper()
	s.waitFor(timeout, fmt.Sprintf("/health %d with images %v", status, want), func() (bool, string) {
		code, h, raw, err := s.health()
		if err != nil {
			return false, err.Error()
		}
		if status != 0 && code != status {
			return false, fmt.Sprintf("%d %s", code, raw)
		}
		for k, st := range want {
			if h.state(k.version, k.arch) != st {
				return false, fmt.Sprintf("%d %s", code, raw)
			}
		}
		return true, raw
	})
}

// waitReady waits until /health is 200 and every listed image is ready.
func (s *service) waitReady(timeout time.Duration, images ...osImage) {
	s.t.Helper()
	want := map[imageKey]string{}
	for _, img := range images {
		want[img.key()] = "ready"
	}
	s.waitStates(timeout, http.StatusOK, want)
}
