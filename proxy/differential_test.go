package proxy

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestDifferentialServeContent sends the same Range and conditional
// headers to isoedge and to Go's http.ServeContent (the original service's
// server) over the same bytes, ETag and Last-Modified, and compares the
// status, Content-Range and body (multipart bodies part by part: the
// boundaries are random), and the same headers answered to HEAD.
//
// Deviations, each asserted below as a row with both statuses:
//
//	| request                                  | ServeContent | isoedge      | why                                                       |
//	|------------------------------------------|--------------|--------------|-----------------------------------------------------------|
//	| malformed Range (bytes=5-3, bytes=abc,   | 416          | 200, whole   | RFC 9110 §14.2: a server may ignore a Range header it     |
//	| items=0-5, bytes=0-1,x)                  |              | body         | cannot parse; a client then gets the image, not an error  |
//	| bytes=-0 (empty suffix)                  | 206, empty   | 416          | RFC 9110 §14.1.3: a suffix of length 0 is unsatisfiable;  |
//	|                                          | body         |              | Go answers a 0-byte part with Content-Range "bytes N-N-1" |
//
// Everything else, 416 bodies included, is the same.
func TestDifferentialServeContent(t *testing.T) {
	h := newHarness(t, harnessOpts{image: sweepImage, src: func(s *fakeSource) { s.kargs = sweepArgs }})
	want := sweepWant(t, h.base)
	path := "/byid/" + testID + "/4.18/x86_64/full.iso"
	head := h.do(http.MethodHead, path, nil)
	etag, lastMod := head.header.Get("ETag"), head.header.Get("Last-Modified")
	modTime, err := http.ParseTime(lastMod)
	if head.code != 200 || etag == "" || err != nil {
		t.Fatalf("HEAD: %d, ETag %q, Last-Modified %q (%v)", head.code, etag, lastMod, err)
	}
	goSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", modTime, bytes.NewReader(want))
	}))
	defer goSrv.Close()
	goClient := &http.Client{Timeout: 20 * time.Second}

	size := int64(len(want))
	before, after := modTime.Add(-time.Hour).Format(http.TimeFormat), modTime.Add(time.Hour).Format(http.TimeFormat)
	weak := "W/" + etag
	tests := []struct {
		name string
		hdr  map[string]string
		// goCode and edgeCode are set for a documented deviation.
		goCode, edgeCode int
	}{
		{name: "no header", hdr: nil},
		{name: "first byte", hdr: map[string]string{"Range": "bytes=0-0"}},
		{name: "last byte", hdr: map[string]string{"Range": "bytes=-1"}},
		{name: "open-ended", hdr: map[string]string{"Range": "bytes=1048000-"}},
		{name: "past the end clamped", hdr: map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", size-10, size+1000)}},
		{name: "suffix longer than the image", hdr: map[string]string{"Range": fmt.Sprintf("bytes=-%d", size+5)}},
		{name: "whole image as a range", hdr: map[string]string{"Range": fmt.Sprintf("bytes=0-%d", size-1)}},
		{name: "spaces", hdr: map[string]string{"Range": "bytes= 5-10 , "}},
		{name: "start past the end", hdr: map[string]string{"Range": fmt.Sprintf("bytes=%d-", size)}},
		{name: "huge start", hdr: map[string]string{"Range": "bytes=99999999999-"}},
		{name: "two ranges", hdr: map[string]string{"Range": "bytes=0-9,1048600-1049599"}},
		{name: "three ranges, one suffix", hdr: map[string]string{"Range": "bytes=10-20, 2097152-2097300, -100"}},
		{name: "overlapping ranges", hdr: map[string]string{"Range": "bytes=0-99,50-149"}},
		{name: "ranges summing past the size", hdr: map[string]string{"Range": fmt.Sprintf("bytes=0-,0-%d", size-1)}},
		{name: "one range unsatisfiable of two", hdr: map[string]string{"Range": fmt.Sprintf("bytes=0-9,%d-", size)}},
		{name: "If-None-Match current", hdr: map[string]string{"If-None-Match": etag}},
		{name: "If-None-Match weak current", hdr: map[string]string{"If-None-Match": weak}},
		{name: "If-None-Match other", hdr: map[string]string{"If-None-Match": `"other"`}},
		{name: "If-None-Match star", hdr: map[string]string{"If-None-Match": "*"}},
		{name: "If-None-Match list", hdr: map[string]string{"If-None-Match": `"a", ` + etag}},
		{name: "If-Match current", hdr: map[string]string{"If-Match": etag}},
		{name: "If-Match other", hdr: map[string]string{"If-Match": `"other"`}},
		{name: "If-Match weak", hdr: map[string]string{"If-Match": weak}},
		{name: "If-Modified-Since equal", hdr: map[string]string{"If-Modified-Since": lastMod}},
		{name: "If-Modified-Since earlier", hdr: map[string]string{"If-Modified-Since": before}},
		{name: "If-Modified-Since with If-None-Match other", hdr: map[string]string{"If-Modified-Since": lastMod, "If-None-Match": `"other"`}},
		{name: "If-Unmodified-Since earlier", hdr: map[string]string{"If-Unmodified-Since": before}},
		{name: "If-Unmodified-Since later", hdr: map[string]string{"If-Unmodified-Since": after}},
		{name: "If-Range etag", hdr: map[string]string{"Range": "bytes=100-199", "If-Range": etag}},
		{name: "If-Range other etag", hdr: map[string]string{"Range": "bytes=100-199", "If-Range": `"other"`}},
		{name: "If-Range weak etag", hdr: map[string]string{"Range": "bytes=100-199", "If-Range": weak}},
		{name: "If-Range date", hdr: map[string]string{"Range": "bytes=100-199", "If-Range": lastMod}},
		{name: "If-Range other date", hdr: map[string]string{"Range": "bytes=100-199", "If-Range": before}},
		{name: "If-Range with several ranges", hdr: map[string]string{"Range": "bytes=0-1,5-6", "If-Range": etag}},
		{name: "If-Match with Range", hdr: map[string]string{"Range": "bytes=0-99", "If-Match": etag}},
		{name: "If-None-Match current with Range", hdr: map[string]string{"Range": "bytes=0-99", "If-None-Match": etag}},

		{name: "end before start", hdr: map[string]string{"Range": "bytes=5-3"}, goCode: 416, edgeCode: 200},
		{name: "not a number", hdr: map[string]string{"Range": "bytes=abc"}, goCode: 416, edgeCode: 200},
		{name: "other unit", hdr: map[string]string{"Range": "items=0-5"}, goCode: 416, edgeCode: 200},
		{name: "one malformed of two", hdr: map[string]string{"Range": "bytes=0-1,x"}, goCode: 416, edgeCode: 200},
		{name: "empty suffix", hdr: map[string]string{"Range": "bytes=-0"}, goCode: 206, edgeCode: 416},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edge := h.do(http.MethodGet, path, tt.hdr)
			goRes := h.doWith(goClient, http.MethodGet, goSrv.URL+"/full.iso", tt.hdr)
			if tt.goCode != 0 {
				if goRes.code != tt.goCode || edge.code != tt.edgeCode {
					t.Fatalf("documented deviation changed: ServeContent %d, isoedge %d; table says %d and %d", goRes.code, edge.code, tt.goCode, tt.edgeCode)
				}
				if edge.code == 200 && !bytes.Equal(edge.body, want) {
					t.Fatal("isoedge ignored the Range but did not send the whole image")
				}
				return
			}
			if edge.code != goRes.code {
				t.Fatalf("status: isoedge %d, ServeContent %d", edge.code, goRes.code)
			}
			// HEAD: the same status and headers, no body.
			eh := h.do(http.MethodHead, path, tt.hdr)
			gh := h.doWith(goClient, http.MethodHead, goSrv.URL+"/full.iso", tt.hdr)
			for _, k := range []string{"Content-Range", "Content-Length"} {
				if eh.header.Get(k) != gh.header.Get(k) {
					t.Fatalf("HEAD %s: isoedge %q, ServeContent %q", k, eh.header.Get(k), gh.header.Get(k))
				}
			}
			if eh.code != gh.code || len(eh.body) != 0 {
				t.Fatalf("HEAD: isoedge %d with %d body bytes, ServeContent %d", eh.code, len(eh.body), gh.code)
			}
			if e, g := edge.header.Get("Content-Range"), goRes.header.Get("Content-Range"); e != g {
				t.Fatalf("Content-Range: isoedge %q, ServeContent %q", e, g)
			}
			if mt, _, _ := mime.ParseMediaType(goRes.header.Get("Content-Type")); mt == "multipart/byteranges" {
				compareMultipart(t, edge, goRes)
				return
			}
			if !bytes.Equal(edge.body, goRes.body) {
				t.Fatalf("body: isoedge %d bytes %.40q, ServeContent %d bytes %.40q", len(edge.body), edge.body, len(goRes.body), goRes.body)
			}
		})
	}
}

// compareMultipart compares two multipart/byteranges answers part by part.
func compareMultipart(t *testing.T, edge, goRes result) {
	t.Helper()
	parts := func(r result) [][2]string {
		_, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("Content-Type %q: %v", r.header.Get("Content-Type"), err)
		}
		var out [][2]string
		mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, [2]string{p.Header.Get("Content-Range") + " " + p.Header.Get("Content-Type"), string(b)})
		}
	}
	e, g := parts(edge), parts(goRes)
	if len(e) != len(g) {
		t.Fatalf("isoedge sent %d parts, ServeContent %d", len(e), len(g))
	}
	for i := range e {
		if e[i] != g[i] {
			t.Fatalf("part %d: isoedge %q (%d bytes), ServeContent %q (%d bytes)", i, e[i][0], len(e[i][1]), g[i][0], len(g[i][1]))
		}
	}
}
