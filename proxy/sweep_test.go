package proxy

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
)

// The sweep's image: an odd size, an ignition embed area and a kernel
// argument area, pseudo-random bytes everywhere else.
const sweepSize = 3<<20 + 12345

var (
	sweepIgn   = customize.Area{Off: 1<<20 + 512, Len: 256 << 10}
	sweepGrub  = customize.Area{Off: 2 << 20, Len: 4096}
	sweepKargs = customize.Area{Off: 2<<20 + 100, Len: 128}
	sweepArgs  = []string{"console=ttyS0,115200n8", "ip=dhcp"}
)

func sweepImage() ([]byte, *customize.Layout) {
	return patternBytes(sweepSize, 11), &customize.Layout{
		Size:         sweepSize,
		VolumeID:     "rhcos-418.94.202401010000-0",
		Files:        map[string]customize.Area{customize.PathIgnition: sweepIgn, "EFI/redhat/grub.cfg": sweepGrub},
		Ignition:     sweepIgn,
		IgnitionFile: customize.PathIgnition,
		KargAreas:    []customize.KargArea{{Path: "EFI/redhat/grub.cfg", Area: sweepKargs}},
	}
}

// sweepWant is the customized ISO built from the base bytes directly.
func sweepWant(t *testing.T, base []byte) []byte {
	t.Helper()
	out := bytes.Clone(base)
	archive, err := customize.IgnitionArchive([]byte(testIgnition))
	if err != nil {
		t.Fatal(err)
	}
	area := out[sweepIgn.Off : sweepIgn.Off+sweepIgn.Len]
	clear(area)
	copy(area, archive)
	copy(out[sweepKargs.Off:], " "+strings.Join(sweepArgs, " ")+"\n")
	return out
}

// sweepLengths are 1, n-1, n and n+1 for n = 4 … 128 KiB, and 64 seeded
// random lengths up to 1 MiB.
func sweepLengths() []int64 {
	ls := []int64{1}
	for n := int64(4 << 10); n <= 128<<10; n *= 2 {
		ls = append(ls, n-1, n, n+1)
	}
	r := rand.New(rand.NewPCG(2026, 11))
	for range 64 {
		ls = append(ls, 1+r.Int64N(1<<20))
	}
	return ls
}

// transport is one way to reach the server.
type transport struct {
	name   string
	tls    bool
	client *http.Client
}

// TestRangeSweep asks for ranges of many lengths at offsets inside, across
// and outside the embed areas, one and two at a time, over HTTP and HTTPS
// with and without keep-alive, and compares each body byte for byte with
// the expected slice of the customized ISO.
func TestRangeSweep(t *testing.T) {
	h := newHarness(t, harnessOpts{
		image:  sweepImage,
		src:    func(s *fakeSource) { s.kargs = sweepArgs },
		config: func(c *config.Config) { c.MaxConcurrentRequests = 16 },
	})
	want := sweepWant(t, h.base)
	path := "/byid/" + testID + "/4.18/x86_64/full.iso"
	if r := h.get(path); r.code != 200 || !bytes.Equal(r.body, want) {
		t.Fatalf("whole ISO: %d, %d bytes, equal %v", r.code, len(r.body), bytes.Equal(r.body, want))
	}
	var ts []transport
	for _, useTLS := range []bool{false, true} {
		for _, keepAlive := range []bool{true, false} {
			ts = append(ts, transport{fmt.Sprintf("tls=%v keep-alive=%v", useTLS, keepAlive), useTLS, h.newClient(useTLS, keepAlive)})
		}
	}
	// Offsets of a range of length n: starting inside the ignition area,
	// across its start, across the kernel argument area, and in base bytes
	// only (after both areas; the image is large enough for 1 MiB there).
	offsets := []struct {
		name string
		off  func(n int64) int64
	}{
		{"inside ignition area", func(n int64) int64 { return sweepIgn.Off + 1000 }},
		{"across ignition start", func(n int64) int64 { return max(0, sweepIgn.Off-n/2) }},
		{"across kargs area", func(n int64) int64 { return max(0, sweepKargs.Off+64-n/2) }},
		{"outside the areas", func(n int64) int64 { return sweepGrub.Off + sweepGrub.Len + 7 }},
	}
	count := 0
	for i, n := range sweepLengths() {
		for j, o := range offsets {
			tr := ts[(i+j)%len(ts)]
			off := o.off(n)
			end := min(off+n, sweepSize) - 1
			r := h.doWith(tr.client, http.MethodGet, h.url(tr.tls, path), map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", off, end)})
			count++
			wantCR := fmt.Sprintf("bytes %d-%d/%d", off, end, sweepSize)
			if r.code != 206 || r.header.Get("Content-Range") != wantCR || !bytes.Equal(r.body, want[off:end+1]) {
				t.Fatalf("%s, %s, length %d at %d: %d %q, %d bytes, equal %v; want 206 %q, %d bytes",
					tr.name, o.name, n, off, r.code, r.header.Get("Content-Range"), len(r.body), bytes.Equal(r.body, want[off:end+1]), wantCR, end+1-off)
			}
		}
		// Two ranges: one inside the ignition area, one in base bytes.
		tr := ts[i%len(ts)]
		a, b := offsets[0].off(n), offsets[3].off(n)
		ae, be := min(a+n, sweepSize)-1, min(b+n, sweepSize)-1
		r := h.doWith(tr.client, http.MethodGet, h.url(tr.tls, path), map[string]string{"Range": fmt.Sprintf("bytes=%d-%d,%d-%d", a, ae, b, be)})
		count++
		checkMultipart(t, r, want, [][2]int64{{a, ae}, {b, be}}, fmt.Sprintf("%s, two ranges of length %d", tr.name, n))
	}
	// Suffix and open-ended ranges reach the end of the image.
	for i, rng := range []string{"bytes=-1", "bytes=-4097", "bytes=-1048576", fmt.Sprintf("bytes=%d-", sweepSize-65537), fmt.Sprintf("bytes=%d-", sweepIgn.Off)} {
		tr := ts[i%len(ts)]
		r := h.doWith(tr.client, http.MethodGet, h.url(tr.tls, path), map[string]string{"Range": rng})
		count++
		var start int64
		if n, ok := strings.CutPrefix(rng, "bytes=-"); ok {
			fmt.Sscan(n, &start)
			start = sweepSize - start
		} else {
			fmt.Sscanf(rng, "bytes=%d-", &start)
		}
		if r.code != 206 || !bytes.Equal(r.body, want[start:]) {
			t.Fatalf("%s, %s: %d, %d bytes; want 206 and the last %d bytes", tr.name, rng, r.code, len(r.body), sweepSize-start)
		}
	}
	t.Logf("%d range requests over %d transports, every body equal to its slice", count, len(ts))
	waitFor(t, "every stream to end", func() bool { return !h.bases.inUse() })
}

// checkMultipart checks a multipart/byteranges answer part by part.
func checkMultipart(t *testing.T, r result, want []byte, ranges [][2]int64, what string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if r.code != 206 || err != nil || mt != "multipart/byteranges" {
		t.Fatalf("%s: %d, Content-Type %q", what, r.code, r.header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
	for i, rg := range ranges {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("%s: part %d: %v", what, i, err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("%s: part %d: %v", what, i, err)
		}
		wantCR := fmt.Sprintf("bytes %d-%d/%d", rg[0], rg[1], len(want))
		if cr := p.Header.Get("Content-Range"); cr != wantCR || !bytes.Equal(b, want[rg[0]:rg[1]+1]) {
			t.Fatalf("%s: part %d: %q, %d bytes, equal %v; want %q", what, i, cr, len(b), bytes.Equal(b, want[rg[0]:rg[1]+1]), wantCR)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("%s: after the last part: %v", what, err)
	}
}
