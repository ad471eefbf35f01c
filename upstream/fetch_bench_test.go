package upstream

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkFetch measures a 64 MiB download over loopback: plain is
// net/http with io.Copy, fetcher adds the stall timer around every read,
// the bounds and the progress chunking.
func BenchmarkFetch(b *testing.B) {
	const size = 64 << 20
	body := bytes.Repeat([]byte{0x5a}, size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "x.iso", mod1, bytes.NewReader(body))
	}))
	defer srv.Close()
	b.Run("plain", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			resp, err := http.Get(srv.URL + "/x.iso")
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != size {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("fetcher", func(b *testing.B) {
		f, _ := NewFetcher(FetcherConfig{})
		b.SetBytes(size)
		for b.Loop() {
			res, err := f.Fetch(b.Context(), FetchRequest{URL: srv.URL + "/x.iso"}, io.Discard)
			if err != nil || res.N != size {
				b.Fatal(res.N, err)
			}
		}
	})
}
