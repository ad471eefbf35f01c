package proxy

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// parseRangeTests follows the shape of net/http's ServeFileRangeTests: a
// header, a representation size, and the ranges or sentinel wanted.
var parseRangeTests = []struct {
	name string
	h    string
	size int64
	want []byteRange
	err  error
}{
	{"first byte", "bytes=0-0", 10, []byteRange{{0, 1}}, nil},
	{"closed", "bytes=2-5", 10, []byteRange{{2, 4}}, nil},
	{"whole", "bytes=0-9", 10, []byteRange{{0, 10}}, nil},
	{"open", "bytes=3-", 10, []byteRange{{3, 7}}, nil},
	{"last byte open", "bytes=9-", 10, []byteRange{{9, 1}}, nil},
	{"suffix", "bytes=-3", 10, []byteRange{{7, 3}}, nil},
	{"suffix whole", "bytes=-10", 10, []byteRange{{0, 10}}, nil},
	{"suffix clamped", "bytes=-20", 10, []byteRange{{0, 10}}, nil},
	{"end clamped", "bytes=5-100", 10, []byteRange{{5, 5}}, nil},
	{"end clamped at size", "bytes=0-10", 10, []byteRange{{0, 10}}, nil},
	{"multi", "bytes=0-1,4-5", 10, []byteRange{{0, 2}, {4, 2}}, nil},
	{"multi with suffix and spaces", "bytes=0-0, 3-4 , -2", 10, []byteRange{{0, 1}, {3, 2}, {8, 2}}, nil},
	{"multi drops unsatisfiable", "bytes=0-1,20-30", 10, []byteRange{{0, 2}}, nil},
	{"empty elements ignored", "bytes=,0-1,,", 10, []byteRange{{0, 2}}, nil},
	{"spaces around numbers", "bytes= 1 - 2", 10, []byteRange{{1, 2}}, nil},
	{"18 digits end", "bytes=0-999999999999999999", 10, []byteRange{{0, 10}}, nil},

	// Unsatisfiable: 416.
	{"start at size", "bytes=10-", 10, nil, errNoOverlap},
	{"start past size", "bytes=11-20", 10, nil, errNoOverlap},
	{"suffix zero", "bytes=-0", 10, nil, errNoOverlap},
	{"empty representation", "bytes=0-", 0, nil, errNoOverlap},
	{"empty representation suffix", "bytes=-5", 0, nil, errNoOverlap},
	{"all unsatisfiable", "bytes=10-11,12-", 10, nil, errNoOverlap},

	// Malformed: ignored by the caller.
	{"reversed", "bytes=5-2", 10, nil, errBadRange},
	{"garbage", "foo", 10, nil, errBadRange},
	{"no prefix", "0-5", 10, nil, errBadRange},
	{"other unit", "items=0-5", 10, nil, errBadRange},
	{"upper case unit", "BYTES=0-5", 10, nil, errBadRange},
	{"empty header", "", 10, nil, errBadRange},
	{"only prefix", "bytes=", 10, nil, errBadRange},
	{"no dash", "bytes=5", 10, nil, errBadRange},
	{"lone dash", "bytes=-", 10, nil, errBadRange},
	{"double dash", "bytes=--5", 10, nil, errBadRange},
	{"negative start", "bytes=-1-5", 10, nil, errBadRange},
	{"letters", "bytes=a-b", 10, nil, errBadRange},
	{"plus sign", "bytes=+1-2", 10, nil, errBadRange},
	{"hex", "bytes=0x1-2", 10, nil, errBadRange},
	{"two dashes", "bytes=1-2-3", 10, nil, errBadRange},
	{"one bad spoils all", "bytes=0-1,x-2", 10, nil, errBadRange},
	{"one reversed spoils all", "bytes=0-1,5-2", 10, nil, errBadRange},
	{"overflows int64", "bytes=0-99999999999999999999", 10, nil, errBadRange},
	{"suffix overflows int64", "bytes=-99999999999999999999", 10, nil, errBadRange},

	// 19-digit numbers that fit in an int64 are valid positions (RFC 9110
	// §14.1.2 lets a client ask past the end; net/http's parseRange
	// clamps them). See the report: parseDigits stops at 18 digits.
	{"19 digits end clamped", "bytes=0-1000000000000000000", 10, []byteRange{{0, 10}}, nil},
	{"max int64 end clamped", "bytes=2-9223372036854775807", 10, []byteRange{{2, 8}}, nil},
	{"19 digits suffix clamped", "bytes=-1000000000000000000", 10, []byteRange{{0, 10}}, nil},
	{"19 digits start unsatisfiable", "bytes=1000000000000000000-", 10, nil, errNoOverlap},
}

func TestParseRange(t *testing.T) {
	for _, tt := range parseRangeTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRange([]byte(tt.h), tt.size)
			if !errors.Is(err, tt.err) {
				t.Fatalf("parseRange(%q, %d) error = %v, want %v", tt.h, tt.size, err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseRange(%q, %d) = %v, want %v", tt.h, tt.size, got, tt.want)
			}
		})
	}
}

func TestParseRangeLargeSize(t *testing.T) {
	const size = math.MaxInt64
	got, err := parseRange([]byte("bytes=-1"), size)
	if err != nil || len(got) != 1 || got[0] != (byteRange{size - 1, 1}) {
		t.Fatalf("suffix of a MaxInt64 representation = %v, %v", got, err)
	}
	got, err = parseRange([]byte("bytes=0-"), size)
	if err != nil || len(got) != 1 || got[0] != (byteRange{0, size}) {
		t.Fatalf("open range of a MaxInt64 representation = %v, %v", got, err)
	}
}

func FuzzParseRange(f *testing.F) {
	for _, tt := range parseRangeTests {
		f.Add(tt.h, tt.size)
	}
	f.Add("bytes=0-0,-1", int64(1))
	f.Add("bytes=9223372036854775806-", int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			// Sizes come from plans and are never negative.
			if size == math.MinInt64 {
				return
			}
			size = -size
		}
		got, err := parseRange([]byte(h), size)
		if err != nil {
			if got != nil {
				t.Fatalf("parseRange(%q, %d) = %v with error %v", h, size, got, err)
			}
			if err != errBadRange && err != errNoOverlap {
				t.Fatalf("parseRange(%q, %d): unexpected error %v", h, size, err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatalf("parseRange(%q, %d): no ranges and no error", h, size)
		}
		for _, r := range got {
			if r.start < 0 || r.length <= 0 || r.start >= size || r.length > size-r.start {
				t.Fatalf("parseRange(%q, %d): range %+v outside [0,%d)", h, size, r, size)
			}
		}
	})
}
