package proxy

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
)

// spillGrace is how long a plan that reads a file of its own (a spilled
// ramdisk or ignition archive) keeps it for the requests its fetch was
// shared with to take their hold.
const spillGrace = time.Minute

// spillArchiveOver is the ignition size above which a PXE initrd's
// ignition archive waits in DATA_TEMP_DIR while it is served, instead of
// in memory.
const spillArchiveOver = 1 << 20

// readerAtCloser is what a held file reads from.
type readerAtCloser interface {
	io.ReaderAt
	io.Closer
}

// heldFile is content a plan reads through a File segment from outside
// memory: a ramdisk upstream spilled (UPSTREAM_MEMORY_MAX_BYTES) or a
// large ignition archive. It stays open while a response streams from it
// and is closed after the last one. Plans holding one are never kept as
// snapshots: a later request fetches the InfraEnv again.
type heldFile struct {
	src readerAtCloser

	mu     sync.Mutex
	refs   int
	closed bool
}

// hold takes src over, with one hold that ends after spillGrace.
func hold(src readerAtCloser) *heldFile {
	h := &heldFile{src: src, refs: 1}
	time.AfterFunc(spillGrace, h.release)
	return h
}

// retain adds a hold for one response; false once the file is closed.
func (h *heldFile) retain() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.refs++
	return true
}

// release ends one hold, closing the file after the last.
func (h *heldFile) release() {
	h.mu.Lock()
	h.refs--
	last := h.refs == 0 && !h.closed
	if last {
		h.closed = true
	}
	h.mu.Unlock()
	if last {
		h.src.Close()
	}
}

// releaseAll ends one hold of each.
func releaseAll(hs []*heldFile) {
	for _, h := range hs {
		h.release()
	}
}

// fileSegment returns a File segment over all of src, whose SHA-256 stands
// for it in the plan's ETag.
func fileSegment(src io.ReaderAt, n int64) (customize.Segment, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(src, 0, n)); err != nil {
		return customize.Segment{}, err
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return customize.File(src, n, sum), nil
}

// ramdiskOf turns a snapshot's ramdisk into plan content: the bytes of an
// in-memory one (its memory is then the snapshot's, and upstream's budget
// is returned), or a File segment over a spilled one, which is taken out
// of the snapshot and held.
func ramdiskOf(snap *upstream.Snapshot) ([]byte, customize.Segment, *heldFile, error) {
	r := snap.Ramdisk
	if r == nil {
		return nil, customize.Segment{}, nil, nil
	}
	if b := r.Bytes(); b != nil {
		return b, customize.Segment{}, nil, nil
	}
	seg, err := fileSegment(r, r.Len())
	if err != nil {
		return nil, customize.Segment{}, nil, err
	}
	snap.Ramdisk = nil // held by the plan now, not closed with the snapshot
	return nil, seg, hold(r), nil
}

// archiveOf is the ignition archive of config as plan content: built in
// memory, or, for a config over spillArchiveOver, written straight to an
// unlinked file in dir (never whole in memory) and held.
func archiveOf(config []byte, dir string) (customize.Segment, *heldFile, error) {
	if len(config) <= spillArchiveOver || dir == "" {
		archive, err := customize.IgnitionArchive(config)
		return customize.Patch(archive), nil, err
	}
	f, err := os.CreateTemp(dir, "ignition-archive-*")
	if err != nil {
		return customize.Segment{}, nil, fmt.Errorf("proxy: spill an ignition archive: %w", err)
	}
	os.Remove(f.Name()) // open, unnamed: nothing is left behind
	n, err := customize.WriteIgnitionArchive(f, config)
	if err != nil {
		f.Close()
		return customize.Segment{}, nil, fmt.Errorf("proxy: spill an ignition archive: %w", err)
	}
	seg, err := fileSegment(f, n)
	if err != nil {
		f.Close()
		return customize.Segment{}, nil, err
	}
	return seg, hold(f), nil
}

// streamSlot takes a stream slot for a built plan, and a hold on each file
// it reads; release ends them all. A file that could not be held any more
// counts as no slot (503, ask again), which only happens when the request
// waited longer than spillGrace.
func (s *Server) streamSlot(b *built) (release func(), ok bool) {
	slot, ok := s.limit.acquire()
	if !ok || len(b.held) == 0 {
		return slot, ok
	}
	for i, h := range b.held {
		if !h.retain() {
			releaseAll(b.held[:i])
			slot()
			return nil, false
		}
	}
	return func() {
		slot()
		releaseAll(b.held)
	}, true
}
