package proxy

import "sync"

// Buffers of the copying path (TLS). A TLS Write costs a fixed amount per
// call besides sealing the bytes, so the body is written in big chunks:
// each is one pread (per base extent in it) and one Write, which the TLS
// connection seals into full 16 KiB records and hands to the socket
// together (tlslisten.go).
//
// bigChunk is 256 KiB plus headroom: fasthttp's write buffer (4 KiB by
// default) still holds the response header when the first chunk comes, so
// it sends the header with the first few KiB of the chunk and the rest of
// the chunk in one Write; the headroom keeps that rest at 256 KiB or more.
// Nothing depends on this for correctness.
//
// A client that stops reading leaves its stream blocked inside Write with
// its chunk, so the number of big chunks out at once is bounded
// (maxBigChunks, 8.25 MiB in all, and as many TLS batches); a stream that
// finds none free writes a small chunk, one TLS record, instead — more
// calls per byte, never wrong. A chunk is taken for one Write and given
// back after it, so a slow stream does not keep a big chunk between
// writes. Writes that do not wait on a slow client finish in a fraction of
// a millisecond, so on a few cores a few dozen big chunks keep every fast
// stream on the fast path.
const (
	bigChunk     = 256<<10 + 8<<10
	smallChunk   = 16 << 10
	maxBigChunks = 32
)

var (
	bigChunkSlots  = make(chan struct{}, maxBigChunks)
	bigChunkPool   = sync.Pool{New: func() any { b := make([]byte, bigChunk); return &b }}
	smallChunkPool = sync.Pool{New: func() any { b := make([]byte, smallChunk); return &b }}
)

// chunk is a pooled buffer lent for one Write.
type chunk struct {
	buf []byte
	p   *[]byte
	big bool
}

// getChunk returns a big chunk if one is free, else a small one.
func getChunk() chunk {
	select {
	case bigChunkSlots <- struct{}{}:
		p := bigChunkPool.Get().(*[]byte)
		return chunk{buf: *p, p: p, big: true}
	default:
		p := smallChunkPool.Get().(*[]byte)
		return chunk{buf: *p, p: p}
	}
}

func (c chunk) put() {
	if c.big {
		bigChunkPool.Put(c.p)
		<-bigChunkSlots
		return
	}
	smallChunkPool.Put(c.p)
}
