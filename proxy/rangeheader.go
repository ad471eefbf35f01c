package proxy

import (
	"bytes"
	"errors"
)

// byteRange is a satisfiable range [start, start+length) of a representation.
type byteRange struct {
	start, length int64
}

var (
	// errNoOverlap means no range overlaps the representation: 416.
	errNoOverlap = errors.New("proxy: range not satisfiable")
	// errBadRange means the header is malformed: it is ignored (RFC 9110 §14.2).
	errBadRange = errors.New("proxy: malformed range")
)

// parseRange parses a Range header value ("bytes=a-b, c-, -n") against a
// representation of size bytes. Unsatisfiable ranges are dropped; if none is
// left the error is errNoOverlap.
func parseRange(h []byte, size int64) ([]byteRange, error) {
	const prefix = "bytes="
	if !bytes.HasPrefix(h, []byte(prefix)) {
		return nil, errBadRange
	}
	var out []byteRange
	noOverlap := false
	for _, spec := range bytes.Split(h[len(prefix):], []byte{','}) {
		spec = bytes.TrimSpace(spec)
		if len(spec) == 0 {
			continue
		}
		dash := bytes.IndexByte(spec, '-')
		if dash < 0 {
			return nil, errBadRange
		}
		first, last := bytes.TrimSpace(spec[:dash]), bytes.TrimSpace(spec[dash+1:])
		var r byteRange
		if len(first) == 0 {
			// Suffix range: the last n bytes.
			n, ok := parseDigits(last)
			if !ok {
				return nil, errBadRange
			}
			if n == 0 || size == 0 {
				noOverlap = true
				continue
			}
			n = min(n, size)
			r = byteRange{start: size - n, length: n}
		} else {
			start, ok := parseDigits(first)
			if !ok {
				return nil, errBadRange
			}
			end := size - 1
			if len(last) > 0 {
				e, ok := parseDigits(last)
				if !ok || e < start {
					return nil, errBadRange
				}
				end = min(e, size-1)
			}
			if start >= size {
				noOverlap = true
				continue
			}
			r = byteRange{start: start, length: end - start + 1}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		if noOverlap {
			return nil, errNoOverlap
		}
		return nil, errBadRange
	}
	return out, nil
}

// parseDigits parses a non-empty decimal number that fits in an int64.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false // overflows int64
		}
		n = n*10 + d
	}
	return n, true
}
