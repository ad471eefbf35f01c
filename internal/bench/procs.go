package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a server process under test.
type proc struct {
	cmd   *exec.Cmd
	addr  string
	start time.Time // just before exec
	ready time.Duration
	done  chan struct{} // closed when the process has been reaped
}

func (p *proc) watch() {
	p.done = make(chan struct{})
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
}

// stop kills the process and reaps it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// terminate sends SIGTERM and waits up to timeout for the process to exit,
// then kills it. It returns how long the graceful exit took.
func (p *proc) terminate(timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case <-p.done:
		return time.Since(t0), nil
	case <-time.After(timeout):
		p.stop()
		return time.Since(t0), fmt.Errorf("pid %d did not exit within %s of SIGTERM", p.cmd.Process.Pid, timeout)
	}
}

// cpu returns the process's CPU time (user+system). It sums the
// nanosecond run times of all its threads from /proc/<pid>/task/*/schedstat;
// when schedstat is unavailable it falls back to /proc/<pid>/stat, whose
// resolution is one clock tick (10 ms).
func (p *proc) cpu() (time.Duration, error) {
	pid := p.cmd.Process.Pid
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err == nil {
		var sum int64
		ok := true
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
			if err != nil {
				if os.IsNotExist(err) {
					continue // thread exited
				}
				ok = false
				break
			}
			f := strings.Fields(string(b))
			if len(f) < 1 {
				ok = false
				break
			}
			ns, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				ok = false
				break
			}
			sum += ns
		}
		if ok {
			return time.Duration(sum), nil
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

// waitIdle waits, at most timeout, until p has used less than 1 % of a CPU
// over half a second: work a server does on its own after a start (isoedge
// deriving images) must not be counted in the next measurement. It says
// so when p does not settle.
func (p *proc) waitIdle(timeout time.Duration) {
	t0 := time.Now()
	for time.Since(t0) < timeout {
		c0, err := p.cpu()
		if err != nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
		c1, err := p.cpu()
		if err != nil {
			return
		}
		if c1-c0 < 5*time.Millisecond {
			fmt.Fprintf(logw, "  pid %d idle after %.1fs\n", p.cmd.Process.Pid, time.Since(t0).Seconds())
			return
		}
	}
	fmt.Fprintf(logw, "  WARNING: pid %d still busy after %s; measuring anyway\n", p.cmd.Process.Pid, timeout)
}

// rssMB returns VmRSS in MB (10^6 bytes).
func (p *proc) rssMB() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return float64(kb) * 1024 / 1e6, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", p.cmd.Process.Pid)
}

// fds returns the number of open file descriptors.
func (p *proc) fds() (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	return len(ents), err
}

// startPlain starts the baseline server; files maps URL path to file.
// With a certificate it is the TLS baseline (net/http over TLS).
func startPlain(bin string, files map[string]string, cert *benchCert) (*proc, error) {
	args := []string{}
	for path, file := range files {
		args = append(args, "-serve", path+"="+file)
	}
	scheme := "http://"
	if cert != nil {
		args = append(args, "-tls-cert", cert.certFile, "-tls-key", cert.keyFile)
		scheme = "https://"
	}
	cmd := exec.Command(filepath.Join(bin, "plainserver"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	p := &proc{cmd: cmd, start: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.watch()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("plainserver: %w", err)
	}
	p.addr = strings.TrimSpace(line)
	if err := waitReady(scheme+p.addr+"/health", p, 10*time.Second, nil); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// edgeConfig is how an isoedge instance is started.
type edgeConfig struct {
	bin, work, port, assisted string
	osImages                  string // OS_IMAGES JSON
	maxConcurrent             int
	cert                      *benchCert // HTTPS on port when set
	env                       []string   // more variables (NAME=value)
}

// startIsoedge starts isoedge and waits until /health answers 200; p.ready
// is the time from exec to that answer.
func startIsoedge(c edgeConfig, timeout time.Duration) (*proc, error) {
	cmd := exec.Command(filepath.Join(c.bin, "isoedge"))
	cmd.Env = append(os.Environ(),
		"DATA_DIR="+filepath.Join(c.work, "data"),
		"DATA_TEMP_DIR="+filepath.Join(c.work, "tmp"),
		"LISTEN_PORT="+c.port,
		"LOG_LEVEL=warn",
		"ASSISTED_SERVICE_HOST="+c.assisted,
		"IMAGE_SERVICE_BASE_URL=http://127.0.0.1:"+c.port,
		"MAX_CONCURRENT_REQUESTS="+strconv.Itoa(c.maxConcurrent),
		"OS_IMAGES="+c.osImages,
	)
	cmd.Env = append(cmd.Env, c.env...)
	scheme := "http://"
	if c.cert != nil {
		cmd.Env = append(cmd.Env, "HTTPS_CERT_FILE="+c.cert.certFile, "HTTPS_KEY_FILE="+c.cert.keyFile)
		scheme = "https://"
	}
	cmd.Stderr = os.Stderr
	p := &proc{cmd: cmd, addr: "127.0.0.1:" + c.port, start: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.watch()
	var body []byte
	if err := waitReady(scheme+p.addr+"/health", p, timeout, &body); err != nil {
		p.stop()
		return nil, fmt.Errorf("isoedge: %w", err)
	}
	// Every configured image must be ready, not just the first.
	var h struct {
		Images []struct {
			Version string `json:"openshift_version"`
			State   string `json:"state"`
		} `json:"images"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		p.stop()
		return nil, fmt.Errorf("isoedge /health: %w", err)
	}
	for _, im := range h.Images {
		if im.State != "ready" {
			p.stop()
			return nil, fmt.Errorf("isoedge /health: image %s is %s at readiness: %s", im.Version, im.State, body)
		}
	}
	return p, nil
}

// readyClient polls without keep-alive, so every poll is a new connection
// like a kubelet probe's.
var readyClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// waitReady polls u every 2 ms until it answers 200, and sets p.ready to
// the time since p.start. The process exiting ends the wait.
func waitReady(u string, p *proc, timeout time.Duration, body *[]byte) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("exited before it was ready: %v", p.cmd.ProcessState)
		default:
		}
		resp, err := readyClient.Get(u)
		if err == nil {
			var b []byte
			if body != nil {
				b = make([]byte, 0, 1024)
				buf := make([]byte, 1024)
				for {
					n, err := resp.Body.Read(buf)
					b = append(b, buf[:n]...)
					if err != nil {
						break
					}
				}
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.ready = time.Since(p.start)
				if body != nil {
					*body = b
				}
				return nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s", timeout)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}
