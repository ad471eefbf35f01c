package proxy

import (
	"bytes"
	"time"

	"github.com/valyala/fasthttp"
)

// condResult is the outcome of one conditional request header.
type condResult int

const (
	condNone condResult = iota // header absent
	condTrue
	condFalse
)

// etagListMatch reports whether a If-Match/If-None-Match list names etag.
// Strong comparison when strong is true; "*" matches any current entity.
func etagListMatch(list []byte, etag string, strong bool) bool {
	for _, tag := range bytes.Split(list, []byte{','}) {
		tag = bytes.TrimSpace(tag)
		if string(tag) == "*" {
			return true
		}
		weak := bytes.HasPrefix(tag, []byte("W/"))
		if weak {
			if strong {
				continue
			}
			tag = tag[2:]
		}
		if string(tag) == etag {
			return true
		}
	}
	return false
}

func checkIfMatch(h *fasthttp.RequestHeader, etag string) condResult {
	v := h.Peek(fasthttp.HeaderIfMatch)
	if len(v) == 0 {
		return condNone
	}
	if etagListMatch(v, etag, true) {
		return condTrue
	}
	return condFalse
}

func checkIfNoneMatch(h *fasthttp.RequestHeader, etag string) condResult {
	v := h.Peek(fasthttp.HeaderIfNoneMatch)
	if len(v) == 0 {
		return condNone
	}
	if etagListMatch(v, etag, false) {
		return condFalse
	}
	return condTrue
}

// dateCond compares a date header with modTime at second precision.
func dateCond(v []byte, modTime time.Time, wantNotAfter bool) condResult {
	if len(v) == 0 || modTime.IsZero() {
		return condNone
	}
	t, err := fasthttp.ParseHTTPDate(v)
	if err != nil {
		return condNone
	}
	notAfter := !modTime.Truncate(time.Second).After(t)
	if notAfter == wantNotAfter {
		return condTrue
	}
	return condFalse
}

// checkIfRange reports whether a Range request may be answered partially.
func checkIfRange(h *fasthttp.RequestHeader, etag string, modTime time.Time) condResult {
	v := h.Peek(fasthttp.HeaderIfRange)
	if len(v) == 0 {
		return condNone
	}
	if v[0] == '"' || bytes.HasPrefix(v, []byte("W/")) {
		if string(v) == etag { // strong comparison only
			return condTrue
		}
		return condFalse
	}
	t, err := fasthttp.ParseHTTPDate(v)
	if err != nil || modTime.IsZero() {
		return condFalse
	}
	if modTime.Truncate(time.Second).Equal(t) {
		return condTrue
	}
	return condFalse
}

// checkPreconditions evaluates the conditional headers in RFC 9110 §13.2.2
// order. It returns a status to answer with instead of the content (304 or
// 412; 0 to go on) and whether a Range header may still be honoured.
func checkPreconditions(h *fasthttp.RequestHeader, isGetOrHead bool, etag string, modTime time.Time) (status int, useRange bool) {
	ch := checkIfMatch(h, etag)
	if ch == condNone {
		ch = dateCond(h.Peek(fasthttp.HeaderIfUnmodifiedSince), modTime, true)
	}
	if ch == condFalse {
		return fasthttp.StatusPreconditionFailed, false
	}
	switch checkIfNoneMatch(h, etag) {
	case condFalse:
		if isGetOrHead {
			return fasthttp.StatusNotModified, false
		}
		return fasthttp.StatusPreconditionFailed, false
	case condNone:
		if isGetOrHead && dateCond(h.Peek(fasthttp.HeaderIfModifiedSince), modTime, true) == condTrue {
			return fasthttp.StatusNotModified, false
		}
	}
	return 0, checkIfRange(h, etag, modTime) != condFalse
}
