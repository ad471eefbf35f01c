// Command bench measures isoedge against a plain sendfile file server
// (internal/bench/plainserver) in the same run: throughput and server CPU
// per GB, time to first byte behind a slow assisted-service, a Range
// storm, restart to ready, and memory and fds under slow streams; then
// isoedge over HTTPS against Go's net/http TLS file server (plainserver
// -tls-cert): server CPU per GB and slow streams. Run it with `make bench`;
// BENCHMARKS.md has a recorded run.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/isoedge/isoedge/internal/fixture"
)

const imageID = "6f1b8e0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

// edgeKeptFiles is how many files of an image isoedge keeps open between
// requests (proxy's maxIdleFiles).
const edgeKeptFiles = 4

// versions are the OS_IMAGES entries: the same base ISO under three
// OpenShift versions, so a restart restores three stored images.
var versions = [][2]string{
	{"4.17", "417.94.202501010000-0"},
	{"4.18", "418.94.202501010000-0"},
	{"4.19", "419.96.202501010000-0"},
}

// logw receives progress and per-round numbers; the table goes to stdout.
var logw io.Writer = os.Stderr

type options struct {
	rootfsMiB, initrdMiB             int64
	rounds, samples, storms, restart int
	hold                             time.Duration
	delay                            time.Duration
	keep                             bool
	peerRounds                       int
	mirrorMBps                       int64
	only                             string // "peers": only scenario 7
}

func main() {
	var o options
	flag.Int64Var(&o.rootfsMiB, "rootfs-mib", 1024, "size of the base ISO's rootfs in MiB")
	flag.Int64Var(&o.initrdMiB, "initrd-mib", 96, "size of the base ISO's initrd.img in MiB (RHCOS: ~100)")
	flag.IntVar(&o.rounds, "rounds", 7, "interleaved rounds per throughput scenario (median reported)")
	flag.IntVar(&o.samples, "ttfb-samples", 30, "TTFB samples per kind")
	flag.IntVar(&o.storms, "storm-rounds", 3, "range storms per server (median reported)")
	flag.IntVar(&o.restart, "restarts", 5, "restarts measured")
	flag.DurationVar(&o.hold, "hold", 3*time.Second, "how long slow streams are held open while sampling")
	flag.DurationVar(&o.delay, "upstream-delay", 50*time.Millisecond, "fake assisted-service latency per call in the TTFB scenario")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.IntVar(&o.peerRounds, "peer-rounds", 3, "replicas filled from a peer (median reported)")
	flag.Int64Var(&o.mirrorMBps, "mirror-mbps", 50, "rate of the paced mirror of the peer scenario, MB/s")
	flag.StringVar(&o.only, "only", "", `run one scenario: "peers" (7, peer fill)`)
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (o options) reproduce() string {
	only := ""
	if o.only != "" {
		only = " -only " + o.only
	}
	return fmt.Sprintf("go run ./internal/bench -rootfs-mib %d -initrd-mib %d -rounds %d -ttfb-samples %d -storm-rounds %d -restarts %d -hold %s -upstream-delay %s -peer-rounds %d -mirror-mbps %d%s",
		o.rootfsMiB, o.initrdMiB, o.rounds, o.samples, o.storms, o.restart, o.hold, o.delay, o.peerRounds, o.mirrorMBps, only)
}

// raiseNofile lifts RLIMIT_NOFILE to its hard limit; children inherit it
// (an explicit Setrlimit stops os/exec from restoring the original).
func raiseNofile() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}

func buildFixture(work string, o options) (iso string, err error) {
	t := &tb{dir: work}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fixture: %v", r)
		}
	}()
	initrd := fixture.DefaultInitrd(t, fixture.DefaultVolumeID)
	// A real initrd is ~100 MB; pad the small cpio with NULs (the kernel
	// skips NUL padding between archives).
	if pad := o.initrdMiB<<20 - int64(len(initrd)); pad > 0 {
		initrd = append(initrd, make([]byte, pad)...)
	}
	iso, _ = fixture.Build(t, work, fixture.Options{KernelSize: 8 << 20, RootfsSize: o.rootfsMiB << 20, Initrd: initrd})
	if t.failed != "" {
		return "", fmt.Errorf("fixture: %s", t.failed)
	}
	return iso, nil
}

// isoOffset is fixture.ISOOffset (xorriso) with errors instead of panics.
func isoOffset(work, iso, path string) (off, size int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fixture: %v", r)
		}
	}()
	off, size = fixture.ISOOffset(&tb{dir: work}, iso, path)
	return off, size, nil
}

// extract copies size bytes of src from off to dst, then pads it with
// zeros to total bytes.
func extract(src, dst string, off, size, total int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(in, off, size)); err != nil {
		out.Close()
		return err
	}
	if total > size {
		if err := out.Truncate(total); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

// contentLength asks u's size with a HEAD request.
func contentLength(u string) (int64, error) {
	resp, err := client.Head(u)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 {
		return 0, fmt.Errorf("HEAD %s: %s, length %d", u, resp.Status, resp.ContentLength)
	}
	return resp.ContentLength, nil
}

func run(o options) error {
	nofile := raiseNofile()
	work, err := os.MkdirTemp("", "isoedge-bench-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}

	cert, err := newBenchCert(work)
	if err != nil {
		return err
	}
	cert.trust()

	fmt.Fprintf(logw, "building binaries and a %d MiB-rootfs, %d MiB-initrd base ISO in %s (RLIMIT_NOFILE %d)\n", o.rootfsMiB, o.initrdMiB, work, nofile)
	bin := filepath.Join(work, "bin")
	for _, b := range [][2]string{{"isoedge", "."}, {"plainserver", "./internal/bench/plainserver"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, b[0]), b[1])
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", b[1], err)
		}
	}
	iso, err := buildFixture(work, o)
	if err != nil {
		return err
	}
	st, err := os.Stat(iso)
	if err != nil {
		return err
	}

	fake, err := newFakeAssisted()
	if err != nil {
		return err
	}
	defer fake.Close()
	if o.only == "peers" {
		t := &table{}
		started, load0 := time.Now(), loadavg()
		if err := runPeerFill(bin, work, iso, fake.addr, o.mirrorMBps*1e6, o.peerRounds, t); err != nil {
			return err
		}
		printHeader(o, st.Size(), -1, -1)
		t.print(os.Stdout)
		fmt.Printf("\nmeasured in %.0fs after setup; load average before %s, after %s\n", time.Since(started).Seconds(), load0, loadavg())
		return nil
	} else if o.only != "" {
		return fmt.Errorf("-only %q: the only scenario run alone is peers", o.only)
	}

	var imgs []string
	for _, v := range versions {
		imgs = append(imgs, fmt.Sprintf(`{"openshift_version":%q,"cpu_architecture":"x86_64","url":"file://%s","version":%q}`, v[0], iso, v[1]))
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	ec := edgeConfig{
		bin: bin, work: work, port: port, assisted: fake.addr,
		osImages:      "[" + strings.Join(imgs, ",") + "]",
		maxConcurrent: 5000,
	}
	fmt.Fprintf(logw, "starting isoedge: first ingest of %d OS images\n", len(versions))
	edge, err := startIsoedge(ec, 10*time.Minute)
	if err != nil {
		return err
	}
	defer func() {
		if edge != nil {
			edge.stop()
		}
	}()
	fmt.Fprintf(logw, "isoedge ready after first ingest in %.1fs\n", edge.ready.Seconds())

	base := "http://" + edge.addr
	edgeISO := base + "/byid/" + imageID + "/4.19/x86_64/full.iso"
	edgeRootfs := base + "/boot-artifacts/rootfs?version=4.19&arch=x86_64"
	edgePXE := base + "/images/" + imageID + "/pxe-initrd?version=4.19&arch=x86_64"
	isoSize, err := contentLength(edgeISO)
	if err != nil {
		return err
	}
	rootfsSize, err := contentLength(edgeRootfs)
	if err != nil {
		return err
	}
	pxeSize, err := contentLength(edgePXE)
	if err != nil {
		return err
	}
	if isoSize != st.Size() {
		return fmt.Errorf("isoedge full.iso is %d bytes, the base ISO %d", isoSize, st.Size())
	}
	// The baseline serves the same rootfs bytes, and a file as large as
	// the PXE initrd (initrd.img, then zeros where isoedge appends the
	// ignition archive).
	rootfsFile, pxeFile := filepath.Join(work, "rootfs.img"), filepath.Join(work, "pxe-initrd.img")
	off, size, err := isoOffset(work, iso, "images/pxeboot/rootfs.img")
	if err != nil {
		return err
	}
	if size != rootfsSize {
		return fmt.Errorf("rootfs: isoedge serves %d bytes, xorriso reports %d", rootfsSize, size)
	}
	if err := extract(iso, rootfsFile, off, size, size); err != nil {
		return err
	}
	off, size, err = isoOffset(work, iso, "images/pxeboot/initrd.img")
	if err != nil {
		return err
	}
	if err := extract(iso, pxeFile, off, size, pxeSize); err != nil {
		return err
	}
	plainFiles := map[string]string{"/full.iso": iso, "/rootfs.img": rootfsFile, "/pxe-initrd.img": pxeFile}
	plain, err := startPlain(bin, plainFiles, nil)
	if err != nil {
		return err
	}
	defer func() {
		if plain != nil {
			plain.stop()
		}
	}()
	plainBase := "http://" + plain.addr

	// Warm the page cache and both servers.
	fmt.Fprintln(logw, "warming the page cache")
	for _, u := range []string{edgeISO, plainBase + "/full.iso", edgeRootfs, plainBase + "/rootfs.img", edgePXE, plainBase + "/pxe-initrd.img"} {
		if _, err := download(u, ""); err != nil {
			return err
		}
	}

	t := &table{}
	started, load0 := time.Now(), loadavg()
	edge.waitIdle(30 * time.Second)

	// 1. Throughput and CPU.
	// Sequential scenarios download about 2 GB per batch.
	per2GB := func(n int64) int { return int(max(1, (2e9+n/2)/n)) }
	full, other := func(sc *tpScenario) *tpScenario { sc.limit, sc.target = 1.10, "≤ 1.10"; return sc },
		func(sc *tpScenario) *tpScenario { sc.limit, sc.target = 1.15, "≤ 1.15"; return sc }
	scs := []*tpScenario{
		full(&tpScenario{name: fmt.Sprintf("full.iso, 1 parallel (×%d)", per2GB(isoSize)), plainURL: plainBase + "/full.iso", edgeURL: edgeISO, par: 1, count: per2GB(isoSize)}),
		full(&tpScenario{name: "full.iso, 8 parallel (×8)", plainURL: plainBase + "/full.iso", edgeURL: edgeISO, par: 8, count: 8}),
		other(&tpScenario{name: fmt.Sprintf("boot-artifacts rootfs (×%d)", per2GB(rootfsSize)), plainURL: plainBase + "/rootfs.img", edgeURL: edgeRootfs, par: 1, count: per2GB(rootfsSize)}),
		other(&tpScenario{name: fmt.Sprintf("pxe-initrd (×%d)", per2GB(pxeSize)), plainURL: plainBase + "/pxe-initrd.img", edgeURL: edgePXE, par: 1, count: per2GB(pxeSize)}),
	}
	fmt.Fprintf(logw, "1. throughput: %d interleaved rounds\n", o.rounds)
	if err := runThroughput(plain, edge, scs, o.rounds); err != nil {
		return err
	}
	for _, sc := range scs {
		sc.rows(t)
	}

	// 3. Range storm.
	fmt.Fprintf(logw, "3. range storm: %d rounds\n", o.storms)
	edge.waitIdle(30 * time.Second)
	ps, es, err := runStorm(plain, edge, fake, plainBase+"/full.iso", edgeISO, isoSize, o.storms)
	if err != nil {
		return err
	}
	stormRows(t, ps, es)

	// 5. Slow streams.
	isoPath := strings.TrimPrefix(edgeISO, base)
	for _, n := range []int{400, 2000} {
		fmt.Fprintf(logw, "5. %d slow streams\n", n)
		pr, err := slowStreams(plain, "/full.iso", n, o.hold, false, 0)
		if err != nil {
			return fmt.Errorf("plain: %w", err)
		}
		er, err := slowStreams(edge, isoPath, n, o.hold, false, edgeKeptFiles)
		if err != nil {
			return fmt.Errorf("isoedge: %w", err)
		}
		fmt.Fprintf(logw, "  plain: RSS %.1f→%.1f MB, fds %d→%d, drained %v | isoedge: RSS %.1f→%.1f MB, fds %d→%d, drained %v\n",
			pr.idleRSS, pr.maxRSS, pr.idleFDs, pr.maxFDs, pr.drained, er.idleRSS, er.maxRSS, er.idleFDs, er.maxFDs, er.drained)
		streamRows(t, pr, er, n == 400)
	}

	// 4. Restart to ready with three stored images.
	fmt.Fprintf(logw, "4. %d restarts\n", o.restart)
	var edgeReady, plainReady, edgeStop []float64
	for i := range o.restart {
		d, err := edge.terminate(40 * time.Second)
		if err != nil {
			return err
		}
		edgeStop = append(edgeStop, d.Seconds())
		if edge, err = startIsoedge(ec, 30*time.Second); err != nil {
			return err
		}
		plain.stop()
		if plain, err = startPlain(bin, plainFiles, nil); err != nil {
			return err
		}
		fmt.Fprintf(logw, "  restart %d: isoedge SIGTERM→exit %.3fs, exec→/health 200 %.3fs | plain exec→200 %.3fs\n",
			i+1, d.Seconds(), edge.ready.Seconds(), plain.ready.Seconds())
		edgeReady = append(edgeReady, edge.ready.Seconds())
		plainReady = append(plainReady, plain.ready.Seconds())
	}
	plainBase = "http://" + plain.addr
	em := median(edgeReady)
	t.row(fmt.Sprintf("restart→/health 200, %d stored images: median s", len(versions)), f3(median(plainReady)), f3(em), check(em <= 0.5, "≤ 0.5 s"))
	t.row("restart→/health 200: max s", f3(maxOf(plainReady)), f3(maxOf(edgeReady)), check(maxOf(edgeReady) <= 0.5, "≤ 0.5 s"))
	t.row("SIGTERM→exit (idle): median s", "-", f3(median(edgeStop)), "")

	// 2. TTFB behind a slow assisted-service.
	fmt.Fprintf(logw, "2. TTFB with %s per assisted-service call: %d samples\n", o.delay, o.samples)
	fake.setDelay(o.delay)
	tr, err := runTTFB(plain, edge, fake, plainBase+"/full.iso", edgeISO, isoSize, o.samples)
	fake.setDelay(0)
	if err != nil {
		return err
	}
	tr.rows(t, o.delay)

	// 6. HTTPS: the same isoedge (same DATA_DIR, nothing fetched again)
	// with a certificate, against Go's TLS file server.
	fmt.Fprintf(logw, "6. HTTPS: restarting isoedge with a certificate\n")
	if _, err := edge.terminate(40 * time.Second); err != nil {
		return err
	}
	tlsEC := ec
	tlsEC.cert = cert
	if edge, err = startIsoedge(tlsEC, 30*time.Second); err != nil {
		return err
	}
	goTLS, err := startPlain(bin, map[string]string{"/full.iso": iso}, cert)
	if err != nil {
		return err
	}
	defer goTLS.stop()
	edge.waitIdle(60 * time.Second)
	tlsISO := "https://" + edge.addr + isoPath
	for _, u := range []string{tlsISO, "https://" + goTLS.addr + "/full.iso"} {
		if _, err := download(u, ""); err != nil {
			return err
		}
	}
	tlsSc := &tpScenario{name: "HTTPS full.iso, 1 parallel (×1)", plainURL: "https://" + goTLS.addr + "/full.iso", edgeURL: tlsISO, par: 1, count: 1,
		limit: 0.75, target: "≤ 0.75, stretch ≤ 0.65"}
	fmt.Fprintf(logw, "6. HTTPS throughput: %d interleaved rounds\n", o.rounds)
	if err := runThroughput(goTLS, edge, []*tpScenario{tlsSc}, o.rounds); err != nil {
		return err
	}
	tlsSc.rows(t)
	fmt.Fprintf(logw, "6. 400 slow HTTPS streams\n")
	pr, err := slowStreams(goTLS, "/full.iso", 400, o.hold, true, 0)
	if err != nil {
		return fmt.Errorf("net/http TLS: %w", err)
	}
	er, err := slowStreams(edge, isoPath, 400, o.hold, true, edgeKeptFiles)
	if err != nil {
		return fmt.Errorf("isoedge HTTPS: %w", err)
	}
	fmt.Fprintf(logw, "  net/http TLS: RSS %.1f→%.1f MB, fds %d→%d, drained %v | isoedge: RSS %.1f→%.1f MB, fds %d→%d, drained %v\n",
		pr.idleRSS, pr.maxRSS, pr.idleFDs, pr.maxFDs, pr.drained, er.idleRSS, er.maxRSS, er.idleFDs, er.maxFDs, er.drained)
	streamRows(t, pr, er, false)

	// 7. A second replica filled from a peer, against one filled from a
	// bandwidth-limited mirror.
	edge.stop()
	edge = nil
	if err := runPeerFill(bin, work, iso, fake.addr, o.mirrorMBps*1e6, o.peerRounds, t); err != nil {
		return err
	}

	printHeader(o, isoSize, rootfsSize, pxeSize)
	t.print(os.Stdout)
	fmt.Printf("\nmeasured in %.0fs after setup; load average before %s, after %s\n", time.Since(started).Seconds(), load0, loadavg())
	return nil
}

// printHeader prints what the table was measured on; sizes < 0 are not
// printed.
func printHeader(o options, isoSize, rootfsSize, pxeSize int64) {
	fmt.Printf("\nisoedge bench — %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("machine: %d CPUs (%s), kernel %s, %s %s/%s\n", cpus(), cpuModel(), kernel(), goVersion(), runtime.GOOS, runtime.GOARCH)
	if rootfsSize >= 0 {
		fmt.Printf("base ISO %.2f GB (rootfs %.2f GB, PXE initrd %.1f MB); %d OS_IMAGES entries; baseline: plainserver (fasthttp.ServeFile); HTTPS rows: plainserver -tls-cert (net/http, http.ServeContent over TLS)\n",
			float64(isoSize)/1e9, float64(rootfsSize)/1e9, float64(pxeSize)/1e6, len(versions))
	} else {
		fmt.Printf("base ISO %.2f GB\n", float64(isoSize)/1e9)
	}
	fmt.Printf("reproduce: make bench   (%s)\n", o.reproduce())
	if o.only == "" {
		fmt.Printf("throughput: median of %d interleaved rounds; ratio = median of the paired per-round isoedge/baseline CPU-s/GB; server CPU from /proc/<pid>/task/*/schedstat\n", o.rounds)
	}
	fmt.Printf("peer fill: exec→/health 200 of a replica on an empty DATA_DIR; baseline = filled from a mirror paced to %d MB/s, isoedge = PEERS naming that replica (median of %d)\n\n", o.mirrorMBps, o.peerRounds)
}

func goVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}

func cpus() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return runtime.NumCPU()
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// loadavg is the 1-minute load average: the machine may be shared.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
