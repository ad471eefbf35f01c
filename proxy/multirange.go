package proxy

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/textproto"

	"github.com/isoedge/isoedge/customize"
)

// multipartPlan returns the multipart/byteranges body of several ranges of
// p, as Go's http.ServeContent (the original's server) writes it: part
// headers and delimiters are patches, the parts slices of p, so the body
// still goes out with sendfile. It returns the body's Content-Type.
func multipartPlan(p customize.Plan, ranges []byteRange, contentType string) (customize.Plan, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	take := func() customize.Segment {
		seg := customize.Patch(bytes.Clone(buf.Bytes()))
		buf.Reset()
		return seg
	}
	var segs []customize.Segment
	for _, rg := range ranges {
		h := textproto.MIMEHeader{}
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rg.start, rg.start+rg.length-1, p.Size))
		h.Set("Content-Type", contentType)
		if _, err := mw.CreatePart(h); err != nil {
			return customize.Plan{}, "", err
		}
		segs = append(segs, take())
		part, err := p.Slice(rg.start, rg.length)
		if err != nil {
			return customize.Plan{}, "", err
		}
		segs = append(segs, part.Segs...)
	}
	if err := mw.Close(); err != nil {
		return customize.Plan{}, "", err
	}
	segs = append(segs, take())
	return customize.NewPlan(p.Base, segs...), "multipart/byteranges; boundary=" + mw.Boundary(), nil
}

// sumRanges is the number of bytes the ranges ask for.
func sumRanges(ranges []byteRange) int64 {
	var n int64
	for _, r := range ranges {
		n += r.length
	}
	return n
}
