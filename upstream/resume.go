package upstream

import (
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
)

// A validator pins one version of an image so a download can be continued
// only from the same version. Its token, as handed to callers, is
// "v1 <total> <kind> <value>".
type validator struct {
	kind  string // kindETag, kindDate, kindFile; "" for none
	value string // the quoted ETag, the Last-Modified text, or the file's mtime in ns
	total int64  // the image's size, -1 when unknown
}

const (
	kindETag = "etag"
	kindDate = "date"
	kindFile = "file"
)

// Bounds on what a source may hand us as a validator; longer ones are not
// used, so the caller never stores more than this.
const (
	maxETagLen = 256
	maxDateLen = 64
)

// String returns the token, or "" when there is no validator.
func (v validator) String() string {
	if v.kind == "" {
		return ""
	}
	return "v1 " + strconv.FormatInt(v.total, 10) + " " + v.kind + " " + v.value
}

func parseValidator(token string) (validator, bool) {
	rest, ok := strings.CutPrefix(token, "v1 ")
	if !ok {
		return validator{}, false
	}
	total, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return validator{}, false
	}
	kind, value, ok := strings.Cut(rest, " ")
	if !ok {
		return validator{}, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil || n < -1 {
		return validator{}, false
	}
	v := validator{kind: kind, value: value, total: n}
	switch kind {
	case kindETag:
		ok = isStrongETag(value)
	case kindDate:
		ok = isHTTPDate(value)
	case kindFile:
		_, err := strconv.ParseInt(value, 10, 64)
		ok = err == nil
	default:
		ok = false
	}
	return v, ok
}

// resumable parses the token a resume at offset was given. ErrNoResume
// when there is none, it is not of one of kinds, or offset lies beyond the
// image it describes.
func resumable(token string, offset int64, kinds ...string) (validator, error) {
	v, ok := parseValidator(token)
	switch {
	case token == "":
		return validator{}, fmt.Errorf("no validator to resume with: %w", ErrNoResume)
	case !ok || !contains(kinds, v.kind):
		return validator{}, fmt.Errorf("unusable validator: %w", ErrNoResume)
	case v.total >= 0 && offset > v.total:
		return validator{}, fmt.Errorf("offset %d is past the image's %d bytes: %w", offset, v.total, ErrNoResume)
	}
	return v, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// responseValidator picks what a 200 answer offers for If-Range: a strong
// ETag, else Last-Modified. A weak ETag (W/"…") cannot be used with
// If-Range (RFC 9110 §13.1.5), and the date then is the only choice.
func responseValidator(h http.Header, total int64) validator {
	v := validator{total: total}
	if etag := strings.TrimSpace(h.Get("ETag")); isStrongETag(etag) {
		v.kind, v.value = kindETag, etag
	} else if lm := strings.TrimSpace(h.Get("Last-Modified")); isHTTPDate(lm) {
		v.kind, v.value = kindDate, lm
	}
	return v
}

// matches reports whether a 206 answer carries the same validator: a
// server that ignores If-Range would otherwise splice two versions.
func (v validator) matches(h http.Header) bool {
	switch v.kind {
	case kindETag:
		return strings.TrimSpace(h.Get("ETag")) == v.value
	case kindDate:
		return strings.TrimSpace(h.Get("Last-Modified")) == v.value
	}
	return false
}

// isStrongETag reports whether s is a strong entity tag: a quoted string of
// etagc characters (RFC 9110 §8.8.3), not longer than maxETagLen.
func isStrongETag(s string) bool {
	if len(s) < 2 || len(s) > maxETagLen || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; c != 0x21 && (c < 0x23 || c == 0x7f) {
			return false
		}
	}
	return true
}

func isHTTPDate(s string) bool {
	if s == "" || len(s) > maxDateLen {
		return false
	}
	_, err := http.ParseTime(s)
	return err == nil
}

// fileValidator pins a local file by size and modification time, so a
// file replaced between attempts is noticed.
func fileValidator(info fs.FileInfo) validator {
	return validator{kind: kindFile, value: strconv.FormatInt(info.ModTime().UnixNano(), 10), total: info.Size()}
}
