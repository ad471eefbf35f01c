package proxy

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/isoedge/isoedge/customize"
)

// sendfileImage is the image of the sendfile test, for harnesses.
func sendfileImage() ([]byte, *customize.Layout) {
	return patternBytes(sendfileSize, 7), sendfileLayout()
}

// TestTLSWritesAreLarge downloads a 24 MiB customized ISO over HTTPS and
// checks what reached the TLS connection: every Write but the one carrying
// the response header and the last holds at least 256 KiB of plaintext,
// and the records of each Write reached the socket in one write.
func TestTLSWritesAreLarge(t *testing.T) {
	h := newHarness(t, harnessOpts{image: sendfileImage})
	c := h.newClient(true, false)
	path := "/byid/" + testID + "/4.18/x86_64/full.iso"
	h.tlsWrites.take()
	h.tlsRawWrites.take()
	r := h.doWith(c, http.MethodGet, h.url(true, path), nil)
	if r.code != 200 || int64(len(r.body)) != sendfileSize {
		t.Fatalf("full.iso over TLS: %d, %d bytes", r.code, len(r.body))
	}
	if want := h.get(path); !bytes.Equal(r.body, want.body) {
		t.Fatal("full.iso over TLS differs from plain HTTP")
	}
	writes, raw := h.tlsWrites.take(), h.tlsRawWrites.take()
	var big, total int
	for i, n := range writes {
		total += n
		if n >= 256<<10 {
			big++
			continue
		}
		if i != 0 && i != len(writes)-1 {
			t.Errorf("TLS write %d of %d carries %d bytes; want ≥ 256 KiB", i+1, len(writes), n)
		}
	}
	t.Logf("%d TLS writes (%d of ≥ 256 KiB) for %d bytes of response; %d writes to the TCP connection", len(writes), big, total, len(raw))
	if total < sendfileSize || big < sendfileSize/bigChunk-1 {
		t.Fatalf("%d TLS writes, %d of them ≥ 256 KiB, carried %d bytes", len(writes), big, total)
	}
	// The handshake's flights, then one write per TLS Write.
	if len(raw) > len(writes)+4 {
		t.Fatalf("%d writes reached the TCP connection for %d TLS writes: records were not batched", len(raw), len(writes))
	}
}

// TestTLSWithoutBigBuffers takes every big chunk and every batch, as
// stalled clients would, and checks that a download over TLS is still
// right, written in small chunks with records going straight out.
func TestTLSWithoutBigBuffers(t *testing.T) {
	h := newHarness(t, harnessOpts{image: sendfileImage})
	for range maxBigChunks {
		bigChunkSlots <- struct{}{}
	}
	for range maxBatches {
		batchSlots <- struct{}{}
	}
	t.Cleanup(func() {
		for range maxBigChunks {
			<-bigChunkSlots
		}
		for range maxBatches {
			<-batchSlots
		}
	})
	path := "/byid/" + testID + "/4.18/x86_64/full.iso"
	want := h.get(path)
	h.tlsWrites.take()
	h.tlsRawWrites.take()
	r := h.doWith(h.newClient(true, true), http.MethodGet, h.url(true, path), map[string]string{"Range": "bytes=1000-"})
	if r.code != 206 || !bytes.Equal(r.body, want.body[1000:]) {
		t.Fatalf("over TLS without big buffers: %d, %d bytes, equal %v", r.code, len(r.body), bytes.Equal(r.body, want.body[1000:]))
	}
	writes, raw := h.tlsWrites.take(), h.tlsRawWrites.take()
	for i, n := range writes {
		if n > smallChunk {
			t.Fatalf("TLS write %d carries %d bytes with no big chunk free", i, n)
		}
	}
	// 16 KiB records written one by one.
	if len(raw) < sendfileSize/(16<<10) {
		t.Fatalf("%d writes to the TCP connection for %d bytes: records were batched with no batch free", len(raw), sendfileSize)
	}
}
