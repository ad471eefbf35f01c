package proxy

import (
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestCheckPreconditions(t *testing.T) {
	const etag = `"abc"`
	mod := time.Date(2024, 3, 4, 5, 6, 7, 500_000_000, time.UTC) // sub-second part is ignored
	date := func(t time.Time) string { return t.UTC().Format(http.TimeFormat) }
	same, before, after := date(mod), date(mod.Add(-time.Second)), date(mod.Add(time.Second))

	tests := []struct {
		name      string
		hdr       map[string]string
		notGet    bool
		modTime   time.Time
		wantCode  int
		wantRange bool
	}{
		{"no headers", nil, false, mod, 0, true},

		{"If-Match same", map[string]string{"If-Match": etag}, false, mod, 0, true},
		{"If-Match other", map[string]string{"If-Match": `"xyz"`}, false, mod, 412, false},
		{"If-Match weak is not a strong match", map[string]string{"If-Match": `W/"abc"`}, false, mod, 412, false},
		{"If-Match list", map[string]string{"If-Match": `"xyz", "abc"`}, false, mod, 0, true},
		{"If-Match list without it", map[string]string{"If-Match": `"x","y"`}, false, mod, 412, false},
		{"If-Match star", map[string]string{"If-Match": "*"}, false, mod, 0, true},
		{"If-Match unquoted", map[string]string{"If-Match": "abc"}, false, mod, 412, false},
		{"If-Match wins over If-Unmodified-Since", map[string]string{"If-Match": etag, "If-Unmodified-Since": before}, false, mod, 0, true},

		{"If-None-Match same GET", map[string]string{"If-None-Match": etag}, false, mod, 304, false},
		{"If-None-Match same non-GET", map[string]string{"If-None-Match": etag}, true, mod, 412, false},
		{"If-None-Match weak compares weakly", map[string]string{"If-None-Match": `W/"abc"`}, false, mod, 304, false},
		{"If-None-Match other", map[string]string{"If-None-Match": `"xyz"`}, false, mod, 0, true},
		{"If-None-Match list", map[string]string{"If-None-Match": `"x", W/"abc"`}, false, mod, 304, false},
		{"If-None-Match star", map[string]string{"If-None-Match": "*"}, false, mod, 304, false},
		{"If-None-Match other ignores If-Modified-Since", map[string]string{"If-None-Match": `"xyz"`, "If-Modified-Since": after}, false, mod, 0, true},

		{"If-Modified-Since same second", map[string]string{"If-Modified-Since": same}, false, mod, 304, false},
		{"If-Modified-Since later", map[string]string{"If-Modified-Since": after}, false, mod, 304, false},
		{"If-Modified-Since earlier", map[string]string{"If-Modified-Since": before}, false, mod, 0, true},
		{"If-Modified-Since garbage", map[string]string{"If-Modified-Since": "yesterday"}, false, mod, 0, true},
		{"If-Modified-Since non-GET", map[string]string{"If-Modified-Since": after}, true, mod, 0, true},
		{"If-Modified-Since zero modtime", map[string]string{"If-Modified-Since": after}, false, time.Time{}, 0, true},

		{"If-Unmodified-Since same second", map[string]string{"If-Unmodified-Since": same}, false, mod, 0, true},
		{"If-Unmodified-Since later", map[string]string{"If-Unmodified-Since": after}, false, mod, 0, true},
		{"If-Unmodified-Since earlier", map[string]string{"If-Unmodified-Since": before}, false, mod, 412, false},
		{"If-Unmodified-Since garbage", map[string]string{"If-Unmodified-Since": "soon"}, false, mod, 0, true},
		{"If-Unmodified-Since fails before If-None-Match", map[string]string{"If-Unmodified-Since": before, "If-None-Match": etag}, false, mod, 412, false},

		{"If-Range same etag", map[string]string{"If-Range": etag}, false, mod, 0, true},
		{"If-Range other etag", map[string]string{"If-Range": `"xyz"`}, false, mod, 0, false},
		{"If-Range weak etag", map[string]string{"If-Range": `W/"abc"`}, false, mod, 0, false},
		{"If-Range same date", map[string]string{"If-Range": same}, false, mod, 0, true},
		{"If-Range earlier date", map[string]string{"If-Range": before}, false, mod, 0, false},
		{"If-Range later date", map[string]string{"If-Range": after}, false, mod, 0, false},
		{"If-Range garbage", map[string]string{"If-Range": "whenever"}, false, mod, 0, false},
		{"If-Range date zero modtime", map[string]string{"If-Range": same}, false, time.Time{}, 0, false},
		{"If-Range with matching If-None-Match", map[string]string{"If-Range": etag, "If-None-Match": etag}, false, mod, 304, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			for k, v := range tt.hdr {
				h.Set(k, v)
			}
			code, useRange := checkPreconditions(&h, !tt.notGet, etag, tt.modTime)
			if code != tt.wantCode || useRange != tt.wantRange {
				t.Fatalf("checkPreconditions(%v) = (%d, %v), want (%d, %v)", tt.hdr, code, useRange, tt.wantCode, tt.wantRange)
			}
		})
	}
}
