//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	infraEnvID   = "5f0c2f4e-8a57-4b4e-9d0e-2b7f5b3c9a11"
	ocpVersion   = "4.19"
	rhcosVersion = "419.96.202501010000-0"
	extraKarg    = "isoedge.test=1"
	networkFile  = "/etc/assisted/network/host0/eth0.nmconnection"

	bootTimeout  = 90 * time.Second
	readyTimeout = 3 * time.Minute
	serialTail   = 200
)

// extraKargs are the InfraEnv's kernel arguments: plain ones and ones with
// every punctuation character customize.CheckKernelArgument accepts. Each
// boot must show them on /proc/cmdline byte for byte, at the end, in order.
// (Quoted values are refused: GRUB turns y="p q" into "y=p q" and
// a"b"c into abc, while isolinux passes them on as written.)
var extraKargs = []string{extraKarg, "a=b,c", "x=1:2/3", "isoedge.punct=a-b_c.d,e:f/g=h+i@j%k~l"}

// ---------------------------------------------------------------------------
// Fake assisted-service

// fakeIgnition is the distinctive ignition the fake serves for an ISO type
// ("" for PXE, which sends no discovery_iso_type).
func fakeIgnition(isoType string) []byte {
	kind := isoType
	if kind == "" {
		kind = "pxe"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIisoedge-e2e-%s"]}]},"storage":{"files":[`, kind)
	for i := range 24 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"path":"/etc/isoedge-e2e/%s/%02d","mode":420,"contents":{"source":"data:,%s%%20file%%20%d%%20%x"}}`,
			kind, i, kind, i, sha256.Sum256([]byte(fmt.Sprint(kind, i))))
	}
	b.WriteString("]}}\n")
	return []byte(b.String())
}

// fakeRamdisk is the minimal-initrd the fake serves: a gzip'd newc cpio with
// the static network files and their parent directories, not padded (as
// assisted-service sends it).
func fakeRamdisk() []byte {
	conn := "[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\n\n[ipv4]\nmethod=manual\naddress1=192.0.2.10/24,192.0.2.1\n"
	raw, err := newcArchive([]cpioEntry{
		{Name: "etc/assisted/network/host0/eth0.nmconnection", Mode: modeFile | 0o600, Data: []byte(conn)},
		{Name: "etc/assisted/network/host0/mac_interface.ini", Mode: modeFile | 0o600, Data: []byte("52:54:00:12:34:56=eth0\n")},
	})
	if err != nil {
		panic(err)
	}
	gz, err := gzipBytes(raw)
	if err != nil {
		panic(err)
	}
	return gz
}

// fakeAS answers the three assisted-service calls isoedge makes.
type fakeAS struct {
	srv     *httptest.Server
	ramdisk []byte
	mu      sync.Mutex
	calls   []string
}

func newFakeAS(t *testing.T) *fakeAS {
	t.Helper()
	f := &fakeAS{ramdisk: fakeRamdisk()}
	prefix := "/api/assisted-install/v2/infra-envs/" + infraEnvID
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls = append(f.calls, r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		if r.Method != http.MethodGet {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case prefix + "/downloads/files":
			q := r.URL.Query()
			if q.Get("file_name") != "discovery.ign" {
				http.Error(w, "bad file_name", http.StatusBadRequest)
				return
			}
			ign := fakeIgnition(q.Get("discovery_iso_type"))
			w.Header().Set("Content-Length", fmt.Sprint(len(ign)))
			_, _ = w.Write(ign)
		case prefix + "/downloads/minimal-initrd":
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(f.ramdisk)
		case prefix:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"id":               infraEnvID,
				"name":             "isoedge-e2e",
				"kernel_arguments": kernelArgumentsJSON(extraKargs),
			})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// kernelArgumentsJSON is assisted-service's kernel_arguments: a string
// holding a JSON list of append operations.
func kernelArgumentsJSON(kargs []string) string {
	ops := make([]map[string]string, len(kargs))
	for i, k := range kargs {
		ops[i] = map[string]string{"operation": "append", "value": k}
	}
	b, err := json.Marshal(ops)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (f *fakeAS) callLog() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "\n")
}

// ---------------------------------------------------------------------------
// isoedge as a subprocess

type server struct {
	url  string
	cmd  *exec.Cmd
	logf string
	done chan error
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// buildIsoedge builds the service binary from the module root.
func buildIsoedge(t *testing.T, dir string) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from the e2e directory: %v", err)
	}
	bin := filepath.Join(dir, "isoedge")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startServer(t *testing.T, bin, work string, fake *fakeAS, iso string) *server {
	t.Helper()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	images, err := json.Marshal([]map[string]string{{
		"openshift_version": ocpVersion,
		"cpu_architecture":  "x86_64",
		"url":               "file://" + iso,
		"version":           rhcosVersion,
	}})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"DATA_DIR":                  filepath.Join(work, "data"),
		"DATA_TEMP_DIR":             filepath.Join(work, "data_temp"),
		"LISTEN_PORT":               fmt.Sprint(port),
		"ASSISTED_SERVICE_HOST":     strings.TrimPrefix(fake.srv.URL, "http://"),
		"IMAGE_SERVICE_BASE_URL":    base,
		"OS_IMAGE_MIN_ROOTFS_BYTES": "1",
		"OS_IMAGE_MIN_KERNEL_BYTES": "1",
		"OS_IMAGES":                 string(images),
		"LOG_LEVEL":                 "debug",
	}
	var environ []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ours := env[k]; ours || strings.HasPrefix(k, "CLUSTER-IMAGE_") || k == "RHCOS_VERSIONS" {
			continue
		}
		environ = append(environ, kv)
	}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	s := &server{url: base, logf: filepath.Join(work, "isoedge.log"), done: make(chan error, 1)}
	logFile, err := os.Create(s.logf)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin)
	s.cmd.Env = environ
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(s.logf)
			t.Logf("isoedge log (last lines):\n%s", tailLines(string(b), 60))
			t.Logf("assisted-service calls:\n%s", fake.callLog())
		}
	})
	return s
}

// waitReady waits for /health 200 with the minimal ISO template built.
func (s *server) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("isoedge exited: %v", err)
		default:
		}
		resp, err := http.Get(s.url + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
			var h struct {
				Images []struct {
					Type    string `json:"type"`
					State   string `json:"state"`
					Error   string `json:"error"`
					Derived string `json:"derived"`
				} `json:"images"`
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &h) == nil && len(h.Images) > 0 {
				switch d := h.Images[0].Derived; d {
				case "ok":
					return
				case "":
				default:
					t.Fatalf("minimal ISO template failed: %s", d)
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("isoedge not ready with a minimal template after %v; last /health: %s", readyTimeout, last)
}

// download saves GET path to dst.
func (s *server) download(t *testing.T, path, dst string) {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, body)
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		t.Fatalf("GET %s: %d bytes, Content-Length %d", path, n, resp.ContentLength)
	}
}

// ---------------------------------------------------------------------------
// qemu

// bootResult is what the guest reported on its serial console.
type bootResult struct {
	log      string
	cmdline  string
	ignSHA   string
	nmstate  string // sha256 of /usr/bin/nmstatectl or MISSING
	ign      []byte
	ignErr   error
	files    []string
	done     bool
	duration time.Duration
}

// boot runs qemu-system-x86_64 with args added to the common ones and
// parses the serial log.
func boot(t *testing.T, work, name string, args ...string) *bootResult {
	t.Helper()
	serial := filepath.Join(work, name+".serial.log")
	common := []string{
		"-accel", "tcg", "-m", "512", "-smp", "1",
		"-display", "none", "-monitor", "none",
		"-serial", "file:" + serial,
		"-nic", "none", "-no-reboot",
	}
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", append(common, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	dur := time.Since(start)
	raw, _ := os.ReadFile(serial)
	r := parseSerial(string(raw))
	r.duration = dur
	t.Logf("%s: qemu ran %.1fs", name, dur.Seconds())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s: qemu %v, output: %s\nserial log (last %d lines):\n%s",
				name, cmd.Args, out.String(), serialTail, tailLines(r.log, serialTail))
		}
	})
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		t.Fatalf("%s: no power-off within %v", name, bootTimeout)
	case err != nil:
		t.Fatalf("%s: qemu: %v", name, err)
	case !r.done:
		t.Fatalf("%s: guest powered off without ISOEDGE-DONE", name)
	}
	return r
}

func parseSerial(raw string) *bootResult {
	r := &bootResult{log: strings.ReplaceAll(raw, "\r", "")}
	var b64 strings.Builder
	inIgn, sawEnd := false, false
	for _, line := range strings.Split(r.log, "\n") {
		after := func(marker string) (string, bool) {
			i := strings.Index(line, marker)
			if i < 0 {
				return "", false
			}
			return strings.TrimSpace(line[i+len(marker):]), true
		}
		if inIgn {
			if strings.Contains(line, "ISOEDGE-IGN-END") {
				inIgn, sawEnd = false, true
			} else {
				b64.WriteString(strings.TrimSpace(line))
			}
			continue
		}
		if v, ok := after("ISOEDGE-CMDLINE: "); ok {
			r.cmdline = v
		} else if v, ok := after("ISOEDGE-NMSTATECTL-SHA256: "); ok {
			r.nmstate = v
		} else if v, ok := after("ISOEDGE-IGN-SHA256: "); ok {
			r.ignSHA = v
		} else if strings.Contains(line, "ISOEDGE-IGN-BEGIN") {
			inIgn = true
		} else if v, ok := after("ISOEDGE-FILE: "); ok {
			r.files = append(r.files, v)
		} else if strings.Contains(line, "ISOEDGE-DONE") {
			r.done = true
		}
	}
	switch {
	case r.ignSHA == "MISSING":
		r.ignErr = errors.New("guest has no /config.ign")
	case !sawEnd:
		r.ignErr = errors.New("no complete ISOEDGE-IGN-BEGIN/END block")
	default:
		r.ign, r.ignErr = base64.StdEncoding.DecodeString(b64.String())
	}
	return r
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkIgnition asserts the guest's /config.ign is want, byte for byte.
func checkIgnition(t *testing.T, name string, r *bootResult, want []byte) {
	t.Helper()
	sum := sha256.Sum256(want)
	if r.ignSHA != hex.EncodeToString(sum[:]) {
		t.Errorf("%s: guest ignition sha256 %q, want %x", name, r.ignSHA, sum)
	}
	if r.ignErr != nil {
		t.Errorf("%s: ignition text: %v", name, r.ignErr)
	} else if !bytes.Equal(r.ign, want) {
		t.Errorf("%s: guest ignition differs:\n got %.300q\nwant %.300q", name, r.ign, want)
	}
}

func checkCmdline(t *testing.T, name string, r *bootResult, want, notWant []string) {
	t.Helper()
	args := strings.Fields(r.cmdline)
	has := func(s string) bool {
		for _, a := range args {
			if a == s || (strings.HasSuffix(s, "=") && strings.HasPrefix(a, s)) {
				return true
			}
		}
		return false
	}
	for _, w := range want {
		if !has(w) {
			t.Errorf("%s: kernel command line %q lacks %q", name, r.cmdline, w)
		}
	}
	for _, w := range notWant {
		if has(w) {
			t.Errorf("%s: kernel command line %q has %q", name, r.cmdline, w)
		}
	}
}

// checkKargsExact asserts the kernel command line ends with the extra
// kernel arguments exactly as the InfraEnv gave them.
func checkKargsExact(t *testing.T, name string, r *bootResult) {
	t.Helper()
	t.Logf("%s: /proc/cmdline %q", name, r.cmdline)
	if want := " " + strings.Join(extraKargs, " "); !strings.HasSuffix(r.cmdline, want) {
		t.Errorf("%s: kernel command line %q does not end with %q", name, r.cmdline, want)
	}
}

func checkFile(t *testing.T, name string, r *bootResult, want string) {
	t.Helper()
	for _, f := range r.files {
		if f == want {
			return
		}
	}
	t.Errorf("%s: guest has no %s; files under /etc/assisted: %q", name, want, r.files)
}

// checkRootfsURL fetches the coreos.live.rootfs_url the guest was given, as
// the live system would, and compares it with the fixture's rootfs.img.
func checkRootfsURL(t *testing.T, name string, r *bootResult, rootfs string) {
	t.Helper()
	var u string
	for _, a := range strings.Fields(r.cmdline) {
		if v, ok := strings.CutPrefix(a, "coreos.live.rootfs_url="); ok {
			u = strings.Trim(v, `"`)
		}
	}
	if u == "" {
		t.Errorf("%s: no coreos.live.rootfs_url= on %q", name, r.cmdline)
		return
	}
	want, err := os.ReadFile(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Errorf("%s: GET rootfs URL %s: %v", name, u, err)
		return
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		t.Errorf("%s: GET rootfs URL %s: %v", name, u, err)
	case resp.StatusCode != http.StatusOK:
		t.Errorf("%s: GET rootfs URL %s: status %d: %.200s", name, u, resp.StatusCode, got)
	case !bytes.Equal(got, want):
		t.Errorf("%s: rootfs URL %s served %d bytes that are not the fixture's rootfs.img (%d bytes)", name, u, len(got), len(want))
	}
}

// nmstate expectations for one boot.
type nmstateWant int

const (
	nmstateAbsent    nmstateWant = iota // full ISO: never
	nmstateIfPresent                    // if there, it is the fixture's
	nmstateRequired                     // there, and the fixture's
)

// checkNmstate asserts what the guest has at /usr/bin/nmstatectl.
func checkNmstate(t *testing.T, name string, r *bootResult, want nmstateWant, nmstatectl []byte) {
	t.Helper()
	sum := sha256.Sum256(nmstatectl)
	switch {
	case r.nmstate == "":
		t.Errorf("%s: no ISOEDGE-NMSTATECTL-SHA256 line", name)
	case r.nmstate == "MISSING":
		if want == nmstateRequired {
			t.Errorf("%s: no /usr/bin/nmstatectl although the minimal ISO loads images/nmstate.img", name)
		}
	case want == nmstateAbsent:
		t.Errorf("%s: unexpected /usr/bin/nmstatectl (sha256 %s)", name, r.nmstate)
	case r.nmstate != hex.EncodeToString(sum[:]):
		t.Errorf("%s: /usr/bin/nmstatectl sha256 %s, want the fixture's %x", name, r.nmstate, sum)
	}
}

// minimalHasNmstate reports whether the minimal ISO's grub.cfg loads
// /images/nmstate.img, read with xorriso.
func minimalHasNmstate(t *testing.T, iso, work string) bool {
	t.Helper()
	dst := filepath.Join(work, "minimal-grub.cfg")
	if err := run(work, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/"+grubCfgPath, dst); err != nil {
		t.Fatalf("read the minimal ISO's grub.cfg: %v", err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte("/images/nmstate.img"))
}

func checkNoFiles(t *testing.T, name string, r *bootResult) {
	t.Helper()
	if len(r.files) != 0 {
		t.Errorf("%s: unexpected files under /etc/assisted: %q", name, r.files)
	}
}

// ---------------------------------------------------------------------------
// The test

func TestBoot(t *testing.T) {
	if err := CheckHostTools(); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if keep := os.Getenv("ISOEDGE_E2E_WORKDIR"); keep != "" {
		// Kept after the run: fixture, downloads, serial logs, isoedge log,
		// in a new run-* directory under keep.
		if err := os.MkdirAll(keep, 0o755); err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp(keep, "run-")
		if err != nil {
			t.Fatal(err)
		}
		work = dir
		t.Logf("artifacts kept in %s", work)
	}
	fixDir := filepath.Join(work, "fixture")
	if err := os.MkdirAll(fixDir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	iso, err := BuildBootISO(fixDir, work)
	if err != nil {
		t.Fatalf("build the bootable fixture: %v", err)
	}
	st, _ := os.Stat(iso.Path)
	t.Logf("fixture %s (%d bytes) built in %.1fs", filepath.Base(iso.Path), st.Size(), time.Since(start).Seconds())

	bin := buildIsoedge(t, work)
	fake := newFakeAS(t)
	srv := startServer(t, bin, work, fake, iso.Path)
	start = time.Now()
	srv.waitReady(t)
	t.Logf("isoedge ready with the minimal template in %.1fs", time.Since(start).Seconds())

	dl := filepath.Join(work, "downloads")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		t.Fatal(err)
	}
	isoPath := func(kind string) string {
		return fmt.Sprintf("/byid/%s/%s/x86_64/%s.iso", infraEnvID, ocpVersion, kind)
	}
	q := url.Values{"arch": {"x86_64"}, "version": {ocpVersion}}.Encode()
	full := filepath.Join(dl, "full.iso")
	minimal := filepath.Join(dl, "minimal.iso")
	kernel := filepath.Join(dl, "vmlinuz")
	initrd := filepath.Join(dl, "pxe-initrd")
	srv.download(t, isoPath("full"), full)
	srv.download(t, isoPath("minimal"), minimal)
	srv.download(t, "/boot-artifacts/kernel?"+q, kernel)
	srv.download(t, "/images/"+infraEnvID+"/pxe-initrd?"+q, initrd)

	// OpenShift ≥ 4.18 minimal ISOs and PXE initrds carry nmstatectl, taken
	// from the rootfs; once isoedge adds images/nmstate.img, the guests
	// must have the fixture's nmstatectl.
	nmstate := nmstateIfPresent
	if minimalHasNmstate(t, minimal, work) {
		nmstate = nmstateRequired
	}
	t.Logf("minimal ISO loads images/nmstate.img: %v", nmstate == nmstateRequired)

	ovmfCode, ovmfVars, err := OVMF()
	if err != nil {
		t.Fatal(err)
	}
	uefi := func(t *testing.T, name string) []string {
		vars := filepath.Join(work, name+".OVMF_VARS.fd")
		b, err := os.ReadFile(ovmfVars)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vars, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return []string{
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + ovmfCode,
			"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		}
	}
	cdrom := func(p string) []string { return []string{"-cdrom", p, "-boot", "d"} }

	fullIgn, minimalIgn, pxeIgn := fakeIgnition("full-iso"), fakeIgnition("minimal-iso"), fakeIgnition("")
	liveISO := "coreos.liveiso=" + BootVolumeID
	var timings []string
	record := func(name string, r *bootResult) {
		timings = append(timings, fmt.Sprintf("%-22s %5.1fs", strings.TrimPrefix(name, "TestBoot/"), r.duration.Seconds()))
	}

	// Written to a USB stick, both ISOs must boot as disks: an isohybrid
	// MBR for BIOS, an EFI System Partition in the MBR (and GPT) for UEFI,
	// all pointing at the image's own sectors.
	checkHybridISO(t, "fixture", iso.Path, work)
	checkHybridISO(t, "full.iso", full, work)
	checkHybridISO(t, "minimal.iso", minimal, work)
	fullNoET := filepath.Join(dl, "full-without-el-torito.iso")
	minimalNoET := filepath.Join(dl, "minimal-without-el-torito.iso")
	withoutElTorito(t, full, fullNoET)
	withoutElTorito(t, minimal, minimalNoET)

	checkFullBoot := func(t *testing.T, name string, r *bootResult) {
		checkIgnition(t, name, r, fullIgn)
		checkCmdline(t, name, r, []string{extraKarg, liveISO, "ignition.firstboot"}, nil)
		checkKargsExact(t, name, r)
		checkNoFiles(t, name, r)
		checkNmstate(t, name, r, nmstateAbsent, nil)
	}
	checkMinimalBoot := func(t *testing.T, name string, r *bootResult) {
		checkIgnition(t, name, r, minimalIgn)
		checkCmdline(t, name, r, []string{extraKarg, "coreos.live.rootfs_url=", "ignition.firstboot"}, []string{"coreos.liveiso="})
		checkKargsExact(t, name, r)
		checkFile(t, name, r, networkFile)
		checkRootfsURL(t, name, r, iso.Rootfs)
		checkNmstate(t, name, r, nmstate, iso.Nmstatectl)
	}
	for _, b := range []struct {
		name, label string
		uefi        bool
		media       []string
		minimal     bool
		// esp: GRUB must come from the EFI System Partition the MBR
		// describes (El Torito hidden from the firmware).
		esp bool
	}{
		{"full-iso-bios", "full.iso BIOS", false, cdrom(full), false, false},
		{"full-iso-uefi", "full.iso UEFI", true, cdrom(full), false, false},
		{"minimal-iso-bios", "minimal.iso BIOS", false, cdrom(minimal), true, false},
		{"minimal-iso-uefi", "minimal.iso UEFI", true, cdrom(minimal), true, false},
		{"full-disk-bios", "full.iso disk BIOS", false, disk(full), false, false},
		{"full-disk-uefi", "full.iso disk UEFI", true, disk(full), false, false},
		{"full-disk-uefi-esp", "full.iso disk UEFI ESP", true, disk(fullNoET), false, true},
		{"minimal-disk-bios", "minimal.iso disk BIOS", false, disk(minimal), true, false},
		{"minimal-disk-uefi", "minimal.iso disk UEFI", true, disk(minimal), true, false},
		{"minimal-disk-uefi-esp", "minimal.iso disk UEFI ESP", true, disk(minimalNoET), true, true},
	} {
		t.Run(b.name, func(t *testing.T) {
			args := b.media
			if b.uefi {
				args = append(uefi(t, b.name), args...)
			}
			r := boot(t, work, b.name, args...)
			record(t.Name(), r)
			if b.uefi {
				from := grubFrom(r)
				t.Logf("%s: GRUB loaded from %q", b.label, from)
				if b.esp && !strings.HasPrefix(from, "(hd0,msdos2)/") {
					t.Errorf("%s: GRUB loaded from %q, want the EFI System Partition (hd0,msdos2)", b.label, from)
				}
			}
			if b.minimal {
				checkMinimalBoot(t, b.label, r)
			} else {
				checkFullBoot(t, b.label, r)
			}
		})
	}
	t.Run("pxe", func(t *testing.T) {
		got, err := os.ReadFile(kernel)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(iso.Kernel)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("boot-artifacts/kernel (%d bytes) is not the fixture's vmlinuz (%d bytes)", len(got), len(want))
		}
		// The kernel line assisted-service's iPXE script gives, with the
		// serial console of this test and the InfraEnv's kernel arguments.
		appendLine := strings.Join([]string{
			"initrd=initrd",
			"coreos.live.rootfs_url=" + srv.url + "/boot-artifacts/rootfs?" + q,
			"random.trust_cpu=on rd.luks.options=discard ignition.firstboot ignition.platform.id=metal",
			"console=ttyS0 panic=-1",
			strings.Join(extraKargs, " "),
		}, " ")
		r := boot(t, work, "pxe", "-kernel", kernel, "-initrd", initrd, "-append", appendLine)
		record(t.Name(), r)
		checkIgnition(t, "PXE", r, pxeIgn)
		checkCmdline(t, "PXE", r, []string{extraKarg, "coreos.live.rootfs_url="}, nil)
		checkKargsExact(t, "PXE", r)
		checkFile(t, "PXE", r, networkFile)
		checkRootfsURL(t, "PXE", r, iso.Rootfs)
		checkNmstate(t, "PXE", r, nmstate, iso.Nmstatectl)
	})
	t.Logf("boot times (qemu start to power-off, TCG):\n%s", strings.Join(timings, "\n"))
}
