//go:build abuse

package abuse

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isoedge/isoedge/internal/fixture"
)

// blobFile is where the README says a stored image lives:
// DATA_DIR/blobs/sha256/<2 hex>/<64 hex>.
func blobFile(dataDir string, content []byte) string {
	sum := sha256.Sum256(content)
	h := hex.EncodeToString(sum[:])
	return filepath.Join(dataDir, "blobs", "sha256", h[:2], h)
}

var blobName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// blobs lists the committed blob files under DATA_DIR/blobs/sha256.
func blobs(dataDir string) []string {
	var out []string
	dirs, _ := filepath.Glob(filepath.Join(dataDir, "blobs", "sha256", "??"))
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.Type().IsRegular() && blobName.MatchString(e.Name()) {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

// Item 7. A download interrupted by SIGKILL and resumed after the mirror
// replaced the file by another of the same size stores the new file, never
// a mix; a mirror without validators is downloaded again from byte 0.
func TestResumeNeverMixesTwoFiles(t *testing.T) {
	t.Run("strong ETag", func(t *testing.T) { resumeAcrossReplacement(t, true) })
	t.Run("no validator", func(t *testing.T) { resumeAcrossReplacement(t, false) })
}

func resumeAcrossReplacement(t *testing.T, validators bool) {
	a := buildBase(t, fixture.Options{RootfsSize: 16 << 20})
	off, n := a.extent(t, pathRootfs)
	// B: same size and layout, its rootfs different every 256 KiB from
	// start to end, so any mix of A and B shows in the rootfs.
	bData := bytes.Clone(a.data)
	for p := off + 4096; p+64 <= off+n-4096; p += 256 << 10 {
		for i := p; i < p+64; i++ {
			bData[i] ^= 0x5a
		}
	}
	b := a.withData(t, bData)
	etagA, etagB := `"image-a"`, `"image-b"`
	if !validators {
		etagA, etagB = "", ""
	}
	m := newMirror(t, "127.0.0.1")
	m.put("/rhcos.iso", a.data, etagA)
	m.throttle(4 << 20)
	img := image("4.17", m.url("/rhcos.iso"))
	svc := newService(t, map[string]string{"OS_IMAGES": osImagesJSON(t, img), "ASSISTED_SERVICE_HOST": newAssisted(t).hostPort()})
	svc.start()
	svc.waitFor(60*time.Second, "the mirror to send 30% of the image", func() (bool, string) {
		sent := m.sent.Load()
		return sent > int64(len(a.data))*3/10, fmt.Sprintf("%d of %d bytes sent", sent, len(a.data))
	})
	svc.kill()
	t.Logf("killed after the mirror sent %d of %d bytes", m.sent.Load(), len(a.data))

	m.put("/rhcos.iso", b.data, etagB)
	m.throttle(0)
	before := m.count()
	svc.start()
	svc.waitReady(90*time.Second, img)
	if !validators {
		for _, q := range m.requests()[before:] {
			if rg := q.Header.Get("Range"); rg != "" {
				t.Errorf("after the restart the download resumed with Range %q from a mirror that gave no ETag or Last-Modified; want a download from byte 0", rg)
			}
		}
	}
	checkRootfs(t, svc, "4.17", b.file(t, pathRootfs))
	checkKernel(t, svc, "4.17", b.file(t, pathKernel))
}

// Item 8. Bytes flipped in a stored image while the service was stopped
// are found by the scrub; from then on they are never served, the image is
// fetched again and served correctly.
func TestScrubFindsBitRot(t *testing.T) {
	t.Parallel() // waits long when the service misbehaves
	r := newRig(t, fixture.Options{RootfsSize: 8 << 20}, map[string]string{"SCRUB_BYTES_PER_SECOND": "1073741824"}, nil)
	r.startReady(t)
	rootfs := r.base.file(t, pathRootfs)
	r.svc.stop()

	blob := blobFile(r.svc.dataDir, r.base.data)
	f, err := os.OpenFile(blob, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("the stored image is not where the README says: %v", err)
	}
	off, n := r.base.extent(t, pathRootfs)
	rot := make([]byte, 4096)
	if _, err := f.ReadAt(rot, off+n/2); err != nil {
		t.Fatal(err)
	}
	for i := range rot {
		rot[i] ^= 0xff
	}
	if _, err := f.WriteAt(rot, off+n/2); err != nil {
		t.Fatal(err)
	}
	f.Close()

	before := r.mirror.count()
	r.mirror.hold() // the refetch waits until the test has looked
	r.svc.start()
	r.svc.waitFor(60*time.Second, "the scrub to find the flipped bytes (the mirror asked again)", func() (bool, string) {
		return r.mirror.count() > before, fmt.Sprintf("%d mirror requests", r.mirror.count())
	})
	r.svc.waitFor(20*time.Second, "/health to stop calling the rotten image ready", func() (bool, string) {
		_, h, raw, err := r.svc.health()
		if err != nil {
			return false, err.Error()
		}
		return h.state(r.img.Version, "x86_64") != "ready", raw
	})
	for i := 0; i < 3; i++ {
		res := r.svc.get("/boot-artifacts/rootfs?version=4.17&arch=x86_64", nil)
		switch {
		case res.status == http.StatusOK && !bytes.Equal(res.body, rootfs):
			t.Fatalf("after the scrub found them, the flipped bytes are served (200, first difference at %d)", firstDiff(res.body, rootfs))
		case res.status != http.StatusOK && res.status != http.StatusServiceUnavailable:
			t.Fatalf("rootfs while the image is fetched again: %d %q, want 503", res.status, res.body)
		}
	}
	r.mirror.release()
	r.svc.waitReady(90*time.Second, r.img)
	checkRootfs(t, r.svc, "4.17", rootfs)
}

// Item 9. A blob deleted under a running service: requests get 503 (never
// 500) while it is fetched or built again, /health does not call a broken
// image ready, and within 60 s it is served again.
func TestDeletedBlobIsRestored(t *testing.T) {
	t.Run("base image", func(t *testing.T) {
		r := newRig(t, fixture.Options{}, nil, nil)
		r.startReady(t)
		kernel := r.base.file(t, pathKernel)
		blob := blobFile(r.svc.dataDir, r.base.data)
		before := r.mirror.count()
		r.mirror.hold()
		if err := os.Remove(blob); err != nil {
			t.Fatalf("the stored image is not where the README says: %v", err)
		}
		// Requests while the refetch is held.
		saw503 := false
		r.svc.waitFor(60*time.Second, "the service to notice the missing image (503 or a new mirror request)", func() (bool, string) {
			st := checkServing(t, r, kernel)
			saw503 = saw503 || st == http.StatusServiceUnavailable
			return saw503 || r.mirror.count() > before, fmt.Sprintf("last status %d, %d mirror requests", st, r.mirror.count())
		})
		if saw503 {
			r.svc.waitFor(10*time.Second, "/health to stop calling the image ready after a 503", func() (bool, string) {
				_, h, raw, err := r.svc.health()
				if err != nil {
					return false, err.Error()
				}
				return h.state(r.img.Version, "x86_64") != "ready", raw
			})
		}
		r.mirror.release()
		r.svc.waitFor(60*time.Second, "the image to be fetched again and served", func() (bool, string) {
			st := checkServing(t, r, kernel)
			_, err := os.Stat(blob)
			return st == http.StatusPartialContent && err == nil && r.mirror.count() > before,
				fmt.Sprintf("status %d, blob %v, %d mirror requests", st, err, r.mirror.count())
		})
		checkKernel(t, r.svc, "4.17", kernel)
	})

	t.Run("minimal ISO template", func(t *testing.T) {
		r := newRig(t, fixture.Options{}, map[string]string{"IMAGE_SERVICE_BASE_URL": "http://127.0.0.1:9"}, nil)
		r.startReady(t)
		base := blobFile(r.svc.dataDir, r.base.data)
		var tmpl string
		r.svc.waitFor(90*time.Second, "the minimal template blob", func() (bool, string) {
			for _, b := range blobs(r.svc.dataDir) {
				if b != base {
					tmpl = b
				}
			}
			return tmpl != "", fmt.Sprint(blobs(r.svc.dataDir))
		})
		if err := os.Remove(tmpl); err != nil {
			t.Fatal(err)
		}
		r.svc.waitFor(60*time.Second, "minimal.iso to be served again", func() (bool, string) {
			res, err := r.svc.do("GET", isoPath("minimal.iso"), map[string]string{"Range": "bytes=0-1023"})
			if err != nil {
				return false, err.Error()
			}
			switch res.status {
			case http.StatusPartialContent:
				return true, "206"
			case http.StatusServiceUnavailable:
				return false, "503"
			}
			t.Fatalf("minimal.iso with its template deleted: %d %q, want 503 until it is rebuilt", res.status, res.body)
			return false, ""
		})
		res := r.svc.mustGet(isoPath("minimal.iso"), nil, http.StatusOK)
		if len(res.body) < 17*sector || string(res.body[16*sector+1:16*sector+6]) != "CD001" {
			t.Fatalf("rebuilt minimal.iso (%d bytes) is not an ISO 9660 image", len(res.body))
		}
		if vid := strings.TrimRight(string(res.body[16*sector+40:16*sector+72]), " "); vid != r.base.m.VolumeID {
			t.Fatalf("rebuilt minimal.iso has volume id %q, want %q", vid, r.base.m.VolumeID)
		}
	})
}

// checkServing requests the full ISO (first KiB) and the kernel once: each
// must be correct or 503, nothing else. It returns the ISO's status.
func checkServing(t *testing.T, r *rig, kernel []byte) int {
	t.Helper()
	iso, err := r.svc.do("GET", isoPath("full.iso"), map[string]string{"Range": "bytes=0-1023"})
	if err != nil {
		t.Fatalf("full.iso: %v", err)
	}
	switch {
	case iso.status == http.StatusPartialContent:
		if !bytes.Equal(iso.body, r.base.data[:1024]) {
			t.Fatalf("full.iso: 206 with wrong bytes")
		}
	case iso.status != http.StatusServiceUnavailable:
		t.Fatalf("full.iso with its image deleted: %d %q, want 503 (or the right bytes)", iso.status, iso.body)
	}
	k, err := r.svc.do("GET", "/boot-artifacts/kernel?version=4.17&arch=x86_64", nil)
	if err != nil {
		t.Fatalf("kernel: %v", err)
	}
	switch {
	case k.status == http.StatusOK:
		if !bytes.Equal(k.body, kernel) {
			t.Fatalf("kernel: 200 with wrong bytes")
		}
	case k.status != http.StatusServiceUnavailable:
		t.Fatalf("kernel with its image deleted: %d %q, want 503 (or the right bytes)", k.status, k.body)
	}
	return iso.status
}

// Item 10. "sha256" of 64 zeros is a digest no image has: the image fails
// and is never served; it does not switch the check off.
func TestZeroDigestFails(t *testing.T) {
	var zero osImage
	r := newRig(t, fixture.Options{}, nil, func(m *mirror, b *baseISO) []osImage {
		m.put("/rhcos-418.iso", b.data, `"rhcos-418"`)
		zero = image("4.18", m.url("/rhcos-418.iso"))
		zero.SHA256 = strings.Repeat("0", 64)
		return []osImage{zero}
	})
	r.svc.start()
	waitFailedNeverServed(t, r, zero)
}

// waitFailedNeverServed waits until /health shows bad failed while the good
// image is ready and /health is 200; bad is never ready and never served.
func waitFailedNeverServed(t *testing.T, r *rig, bad osImage) {
	t.Helper()
	failed := false
	r.svc.waitFor(90*time.Second, fmt.Sprintf("image %s failed, %s ready, /health 200", bad.Version, r.img.Version), func() (bool, string) {
		for _, p := range []string{
			"/boot-artifacts/kernel?version=" + bad.OpenshiftVersion + "&arch=x86_64",
			"/byid/" + envID + "/" + bad.OpenshiftVersion + "/x86_64/full.iso",
		} {
			res, err := r.svc.do("GET", p, map[string]string{"Range": "bytes=0-1023"})
			if err == nil && (res.status == http.StatusOK || res.status == http.StatusPartialContent) {
				t.Fatalf("GET %s: %d: the bad image is served", p, res.status)
			}
		}
		code, h, raw, err := r.svc.health()
		if err != nil {
			return false, err.Error()
		}
		switch h.state(bad.Version, bad.CPUArchitecture) {
		case "ready":
			t.Fatalf("/health calls the bad image ready: %s", raw)
		case "failed":
			failed = true
		}
		return failed && code == http.StatusOK && h.state(r.img.Version, "x86_64") == "ready", fmt.Sprintf("%d %s", code, raw)
	})
}

// Item 11. Ingest refuses layouts whose embed areas are unusable.
func TestIngestRefusesUnusableLayouts(t *testing.T) {
	t.Run("igninfo.json points at the kernel", func(t *testing.T) {
		var bad osImage
		r := newRig(t, fixture.Options{}, nil, func(m *mirror, b *baseISO) []osImage {
			crafted := remaster(t, b, map[string][]byte{"coreos/igninfo.json": []byte(`{"file":"images/pxeboot/vmlinuz"}`)})
			m.put("/rhcos-418.iso", crafted.data, `"crafted"`)
			bad = image("4.18", m.url("/rhcos-418.iso"))
			return []osImage{bad}
		})
		r.svc.start()
		waitFailedNeverServed(t, r, bad)
	})

	t.Run("kargs.json lists a file twice", func(t *testing.T) {
		var bad osImage
		var crafted *baseISO
		r := newRig(t, fixture.Options{}, nil, func(m *mirror, b *baseISO) []osImage {
			var kj map[string]any
			if err := json.Unmarshal(b.m.Files["coreos/kargs.json"], &kj); err != nil {
				t.Fatal(err)
			}
			files := kj["files"].([]any)
			kj["files"] = append([]any{files[0]}, files...)
			doc, err := json.MarshalIndent(kj, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			crafted = remaster(t, b, map[string][]byte{"coreos/kargs.json": doc})
			m.put("/rhcos-418.iso", crafted.data, `"crafted"`)
			bad = image("4.18", m.url("/rhcos-418.iso"))
			return []osImage{bad}
		})
		r.svc.start()
		r.svc.waitReady(90*time.Second, r.img)
		state := waitTerminal(t, r.svc, bad)
		if state == "failed" {
			t.Logf("refused at ingest (preferred)")
			return
		}
		// Served: then kernel arguments must land once, where they belong.
		const karg = "abuse.karg=1"
		id := infraEnvID(0x1100)
		r.as.set(id, &envBehaviour{kargs: kargsJSON(karg)})
		res := r.svc.mustGet("/byid/"+id+"/4.18/x86_64/full.iso", nil, http.StatusOK)
		if len(res.body) != len(crafted.data) {
			t.Fatalf("ISO with kernel arguments: %d bytes, want %d", len(res.body), len(crafted.data))
		}
		var skip [][2]int64
		for _, cfg := range []string{pathGrubCfg, pathIsoCfg} {
			off, n := crafted.extent(t, cfg)
			orig := string(crafted.data[off : off+n])
			marker := fixture.EmbedAreaLine()
			want := strings.Replace(orig, "\n"+marker, " "+karg+"\n"+marker[len(karg)+1:], 1)
			if got := string(res.body[off : off+n]); got != want {
				t.Errorf("%s with a doubled kargs.json entry:\n%q\nwant\n%q", cfg, got, want)
			}
			skip = append(skip, [2]int64{off, off + n})
		}
		ioff, in := crafted.extent(t, pathIgnImg)
		skip = append(skip, [2]int64{ioff, ioff + in})
		for i := int64(0); i < int64(len(crafted.data)); i++ {
			inSkip := false
			for _, s := range skip {
				if i >= s[0] && i < s[1] {
					inSkip = true
				}
			}
			if !inSkip && res.body[i] != crafted.data[i] {
				t.Fatalf("byte %d differs from the base ISO outside the embed areas", i)
			}
		}
	})
}

// Item 12. Kernel arguments that would break out of their place in the
// boot configs are refused with 400 naming the argument.
func TestHostileKernelArguments(t *testing.T) {
	r := newRig(t, fixture.Options{}, nil, nil)
	r.startReady(t)
	for i, arg := range []string{`x="unterminated`, `x=1;linux /boot/evil`} {
		id := infraEnvID(0x1200 + i)
		r.as.set(id, &envBehaviour{kargs: kargsJSON(arg)})
		res := r.svc.get("/byid/"+id+"/4.17/x86_64/full.iso", nil)
		if res.status != http.StatusBadRequest {
			t.Errorf("kernel argument %q: status %d (%d bytes), want 400", arg, res.status, len(res.body))
			continue
		}
		q := strconv.Quote(arg)
		if body := string(res.body); !strings.Contains(body, arg) && !strings.Contains(body, q[1:len(q)-1]) {
			t.Errorf("kernel argument %q: 400 body %q does not name it", arg, body)
		}
	}
}

// Item 13. A damaged index.db is moved aside; the service stays up,
// rebuilds what it knows from the blobs without downloading again, and
// serves correct bytes.
func TestDamagedIndexIsRebuilt(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"pages overwritten", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			// Every page but the two meta pages: the middle of the file.
			const page = 4096
			junk := bytes.Repeat([]byte{0xa5, 0x5a, 0xff, 0x00}, page/4)
			for off := int64(2 * page); off < st.Size(); off += page {
				if _, err := f.WriteAt(junk, off); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, fixture.PseudoRandom(64<<10, 13), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string) {
			// Cut the file below its high-water mark (bbolt's meta pgid),
			// so pages in use are gone, not just preallocated space.
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			pageSize, pages := boltHighWater(t, b)
			if err := os.Truncate(path, max(2, pages/2)*pageSize); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, fixture.Options{}, nil, nil)
			r.startReady(t)
			r.svc.stop()
			idx := filepath.Join(r.svc.dataDir, "index.db")
			c.damage(t, idx)
			before := r.mirror.count()
			r.svc.start()
			r.svc.waitReady(60*time.Second, r.img)
			if m, _ := filepath.Glob(idx + ".corrupt-*"); len(m) == 0 {
				t.Errorf("no index.db.corrupt-* in DATA_DIR: the damaged index was not moved aside")
			}
			if n := r.mirror.count(); n != before {
				t.Errorf("the mirror got %d request(s) after the restart: the image was downloaded again", n-before)
			}
			checkKernel(t, r.svc, "4.17", r.base.file(t, pathKernel))
			checkRootfs(t, r.svc, "4.17", r.base.file(t, pathRootfs))
		})
	}
}

// A derived build (the minimal ISO template) that failed is tried again:
// DATA_TEMP_DIR is unusable when the image arrives, then usable again.
func TestFailedDerivedBuildIsRetried(t *testing.T) {
	t.Parallel() // waits long when the service misbehaves
	r := newRig(t, fixture.Options{}, map[string]string{"IMAGE_SERVICE_BASE_URL": "http://127.0.0.1:9"}, nil)
	r.mirror.hold()
	r.svc.start()
	r.svc.waitFor(30*time.Second, "the download to start", func() (bool, string) {
		return r.mirror.count() > 0, ""
	})
	tmp := r.svc.tempDir
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, []byte("DATA_TEMP_DIR is not a directory for a while\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logFrom := r.svc.logs.Len()
	r.mirror.release()
	r.svc.waitFor(90*time.Second, "a failure caused by the unusable DATA_TEMP_DIR", func() (bool, string) {
		_, h, raw, err := r.svc.health()
		if err != nil {
			return false, err.Error()
		}
		switch h.state(r.img.Version, "x86_64") {
		case "failed":
			return true, raw
		case "ready":
			return warnedAbout(r.svc.logs.String()[logFrom:], "minimal"), raw
		}
		return false, raw
	})
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	r.svc.waitFor(90*time.Second, "minimal.iso to be served after DATA_TEMP_DIR is usable again", func() (bool, string) {
		res, err := r.svc.do("HEAD", isoPath("minimal.iso"), nil)
		if err != nil {
			return false, err.Error()
		}
		return res.status == http.StatusOK, fmt.Sprint(res.status)
	})
	res := r.svc.mustGet(isoPath("minimal.iso"), nil, http.StatusOK)
	if len(res.body) < 17*sector || string(res.body[16*sector+1:16*sector+6]) != "CD001" {
		t.Fatalf("minimal.iso (%d bytes) is not an ISO 9660 image", len(res.body))
	}
}

// warnedAbout reports whether a JSON log line at level warn or error
// mentions word.
func warnedAbout(logs, word string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || (l.Level != "warn" && l.Level != "error") {
			continue
		}
		if strings.Contains(strings.ToLower(line), word) {
			return true
		}
	}
	return false
}

// boltHighWater reads the page size and the high-water mark (pages in use)
// from the newer of a bbolt file's two meta pages: after the 16-byte page
// header, magic u32, version u32, page size u32, flags u32, root bucket
// (2×u64), freelist pgid u64, high-water pgid u64, txid u64.
func boltHighWater(t *testing.T, b []byte) (pageSize, pages int64) {
	t.Helper()
	le := binary.LittleEndian
	if len(b) < 4096+80 || le.Uint32(b[16:]) != 0xED0CDAED {
		t.Fatalf("index.db is not a bbolt file (%d bytes)", len(b))
	}
	pageSize = int64(le.Uint32(b[24:]))
	meta := func(off int64) (pgid, txid uint64) {
		return le.Uint64(b[off+56:]), le.Uint64(b[off+64:])
	}
	p0, t0 := meta(0)
	p1, t1 := meta(pageSize)
	if t1 > t0 {
		p0 = p1
	}
	return pageSize, int64(p0)
}
