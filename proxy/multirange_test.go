package proxy

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"testing"
)

// TestMultipleRanges checks the multipart/byteranges answer against the
// whole image, part by part, as Go's http.ServeContent would send it.
func TestMultipleRanges(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	path := "/byid/" + testID + "/4.18/x86_64/full.iso"
	full := h.get(path)
	if full.code != http.StatusOK {
		t.Fatalf("full download: %d", full.code)
	}
	size := int64(len(full.body))

	r := h.do(http.MethodGet, path, map[string]string{"Range": "bytes=0-9, 100-199, -5"})
	if r.code != http.StatusPartialContent {
		t.Fatalf("status %d, want 206", r.code)
	}
	mediaType, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/byteranges" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q: %v", r.header.Get("Content-Type"), err)
	}
	if got := r.header.Get("Content-Length"); got != fmt.Sprint(len(r.body)) {
		t.Fatalf("Content-Length %s for a %d-byte body", got, len(r.body))
	}
	want := []struct {
		start, end int64
	}{{0, 9}, {100, 199}, {size - 5, size - 1}}
	mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
	for i, w := range want {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if cr := part.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes %d-%d/%d", w.start, w.end, size) {
			t.Errorf("part %d Content-Range %q", i, cr)
		}
		if ct := part.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("part %d Content-Type %q", i, ct)
		}
		b, _ := io.ReadAll(part)
		if !bytes.Equal(b, full.body[w.start:w.end+1]) {
			t.Errorf("part %d differs from the whole image's bytes %d-%d", i, w.start, w.end)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("after the last part: %v, want EOF", err)
	}

	// Ranges asking for more than the whole image: the whole image, 200.
	r = h.do(http.MethodGet, path, map[string]string{"Range": fmt.Sprintf("bytes=0-%d,0-%d", size-1, size-1)})
	if r.code != http.StatusOK || !bytes.Equal(r.body, full.body) {
		t.Fatalf("overlapping ranges summing past the size: %d, %d bytes; want 200 and the whole image", r.code, len(r.body))
	}
	// HEAD of a multi-range request: the same headers, no body.
	r = h.do(http.MethodHead, path, map[string]string{"Range": "bytes=0-9,20-29"})
	if r.code != http.StatusPartialContent || len(r.body) != 0 || r.header.Get("Content-Length") == "" {
		t.Fatalf("HEAD multi-range: %d, %d body bytes, Content-Length %q", r.code, len(r.body), r.header.Get("Content-Length"))
	}
}
