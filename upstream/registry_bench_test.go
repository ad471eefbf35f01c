package upstream

import (
	"crypto/sha256"
	"io"
	"testing"

	rt "github.com/isoedge/isoedge/internal/registrytest"
)

// BenchmarkRegistryPull measures Fetch of a 64 MiB file that does not
// compress (like an ISO's squashfs) from a real registry over TLS on
// loopback, in a gzip and in a zstd layer, beneath a small top layer:
// ping, auth, manifest, two layers decompressed, the file hashed.
// sha256 is what hashing alone costs, for comparison.
func BenchmarkRegistryPull(b *testing.B) {
	const size = 64 << 20
	iso := randomISO(size, 7)
	reg := rt.Start(b)
	src, err := NewRegistrySource(RegistryConfig{AuthFile: reg.AuthFile, CAFile: reg.CAFile})
	if err != nil {
		b.Fatal(err)
	}
	top := rt.Layer(b, rt.Entry{Name: "bin/copy-iso", Body: []byte("#!/bin/sh\n")})
	urls := map[string]string{
		"gzip": reg.Push(b, "bench/gzip:v1", rt.Image(b, "amd64", rt.Layer(b, rt.Files(isoFiles(iso))...), top)),
		"zstd": reg.Push(b, "bench/zstd:v1", rt.OCI(rt.Image(b, "amd64", rt.ZstdLayer(b, rt.Files(isoFiles(iso))...), top))),
	}
	for _, kind := range []string{"gzip", "zstd"} {
		b.Run(kind, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				res, err := src.Fetch(b.Context(), RegistryRequest{URL: urls[kind], Arch: "x86_64"}, io.Discard)
				if err != nil || res.N != size {
					b.Fatal(res.N, err)
				}
			}
		})
	}
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			h := sha256.New()
			h.Write(iso)
			h.Sum(nil)
		}
	})
}
