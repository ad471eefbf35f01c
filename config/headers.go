package config

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// refusedHeaders are the request headers OS_IMAGES_REQUEST_HEADERS may not
// set, by canonical name, each with the reason given in the error. They are
// headers the fetcher sets itself, hop-by-hop headers (RFC 9110 §7.6.1,
// RFC 2616 §13.5.1) and headers that turn an image download into something
// else: a 304 or 412 instead of the image, or a compressed body stored as
// the image (the fetcher asks for no content coding).
var refusedHeaders = map[string]string{
	"Range":               "isoedge sets it to resume downloads",
	"If-Range":            "isoedge sets it to resume downloads",
	"Host":                "the host is the image URL's",
	"Content-Length":      "the HTTP client frames requests itself",
	"Transfer-Encoding":   "the HTTP client frames requests itself",
	"Trailer":             "the HTTP client frames requests itself",
	"Connection":          "it is hop-by-hop",
	"Keep-Alive":          "it is hop-by-hop",
	"Proxy-Connection":    "it is hop-by-hop",
	"Te":                  "it is hop-by-hop",
	"Upgrade":             "it is hop-by-hop",
	"Proxy-Authenticate":  "it is hop-by-hop",
	"Proxy-Authorization": "it is hop-by-hop and would reach the image server through an HTTPS proxy; put proxy credentials in the HTTPS_PROXY or HTTP_PROXY URL",
	"If-Match":            "a conditional request can be answered without the image",
	"If-None-Match":       "a conditional request can be answered without the image",
	"If-Modified-Since":   "a conditional request can be answered without the image",
	"If-Unmodified-Since": "a conditional request can be answered without the image",
	"Accept-Encoding":     "a compressed answer would be stored as the image",
}

// checkRequestHeaders validates OS_IMAGES_REQUEST_HEADERS: every name an
// HTTP field name (RFC 9110 token) not in refusedHeaders and not given
// twice in different case, every value a valid field value (no control
// character other than tab). Errors name the header, never its value,
// which may be a credential; an invalid name is shown only up to its first
// invalid byte, since it may be a whole "Name: value" line.
func checkRequestHeaders(h map[string]string) error {
	seen := make(map[string]string, len(h))
	for name, value := range h {
		if i := invalidTokenByte(name); i >= 0 {
			if name == "" {
				return errors.New("empty header name")
			}
			return fmt.Errorf("header name %q… is not an HTTP field name: byte %d is %q", name[:i], i, name[i])
		}
		canon := http.CanonicalHeaderKey(name)
		if why, ok := refusedHeaders[canon]; ok {
			return fmt.Errorf("header %q is refused: %s", name, why)
		}
		if other, ok := seen[canon]; ok {
			return fmt.Errorf("headers %q and %q are the same header (names are case-insensitive)", min(other, name), max(other, name))
		}
		seen[canon] = name
		if !validFieldValue(value) {
			return fmt.Errorf("value of header %q holds a control character (CR, LF, NUL…)", name)
		}
	}
	return nil
}

// checkQueryParams validates OS_IMAGES_REQUEST_QUERY_PARAMS: keys must not
// be empty. Any value is accepted (it is percent-encoded) and never shown.
func checkQueryParams(q map[string]string) error {
	if _, ok := q[""]; ok {
		return errors.New("empty parameter name")
	}
	return nil
}

// invalidTokenByte returns the index of the first byte of s that is not a
// tchar of RFC 9110 §5.6.2, 0 for an empty s, or -1 when s is a token.
func invalidTokenByte(s string) int {
	if s == "" {
		return 0
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return i
		}
	}
	return -1
}

// validFieldValue reports whether v is a valid HTTP field value as net/http
// checks it: no control byte (below 0x20, or 0x7f) other than tab.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
