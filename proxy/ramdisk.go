package proxy

import (
	"crypto/sha256"
	"io"
	"sync"
	"time"

	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
)

// spillGrace is how long a plan that reads a spilled ramdisk keeps it for
// the requests its fetch was shared with to take their hold.
const spillGrace = time.Minute

// heldRamdisk is a ramdisk that upstream spilled to a temp file
// (UPSTREAM_MEMORY_MAX_BYTES): the plans built on it read it through a
// File segment, so it stays open while a response streams from it and is
// closed after the last one. Plans holding one are never kept as
// snapshots: a later request fetches the InfraEnv again.
type heldRamdisk struct {
	blob *upstream.Blob

	mu     sync.Mutex
	refs   int
	closed bool
}

// holdRamdisk takes a spilled ramdisk over from its snapshot, with one
// hold that ends after spillGrace.
func holdRamdisk(b *upstream.Blob) *heldRamdisk {
	h := &heldRamdisk{blob: b, refs: 1}
	time.AfterFunc(spillGrace, h.release)
	return h
}

// retain adds a hold for one response; false once the ramdisk is closed.
func (h *heldRamdisk) retain() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.refs++
	return true
}

// release ends one hold, closing the ramdisk after the last.
func (h *heldRamdisk) release() {
	h.mu.Lock()
	h.refs--
	last := h.refs == 0 && !h.closed
	if last {
		h.closed = true
	}
	h.mu.Unlock()
	if last {
		h.blob.Close()
	}
}

// ramdiskOf turns a snapshot's ramdisk into plan content: the bytes of an
// in-memory one (its memory is then the snapshot's, and upstream's budget
// is returned), or a File segment over a spilled one, which is taken out
// of the snapshot and held. It returns the bytes, or the segment and its
// hold.
func ramdiskOf(snap *upstream.Snapshot) ([]byte, customize.Segment, *heldRamdisk, error) {
	r := snap.Ramdisk
	if r == nil {
		return nil, customize.Segment{}, nil, nil
	}
	if b := r.Bytes(); b != nil {
		return b, customize.Segment{}, nil, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, r.Len())); err != nil {
		return nil, customize.Segment{}, nil, err
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	snap.Ramdisk = nil // held by the plan now, not closed with the snapshot
	return nil, customize.File(r, r.Len(), sum), holdRamdisk(r), nil
}

// streamSlot takes a stream slot for a built plan, and a hold on the
// spilled ramdisk it reads, if any; release ends both. A ramdisk that
// could not be held any more counts as no slot (503, ask again), which
// only happens when the request waited longer than spillGrace.
func (s *Server) streamSlot(b *built) (release func(), ok bool) {
	slot, ok := s.limit.acquire()
	if !ok || b.held == nil {
		return slot, ok
	}
	if !b.held.retain() {
		slot()
		return nil, false
	}
	return func() {
		slot()
		b.held.release()
	}, true
}
