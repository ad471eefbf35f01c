package catalog

import (
	"os"
	"slices"
	"sync"

	"github.com/isoedge/isoedge/cache"
)

// filePool lends each response its own read-only *os.File of a blob. A
// response owns the file's position while it holds it: base extents are
// handed to the connection as a Seek plus an *io.LimitedReader over the
// file, which Go's TCP connection sends with sendfile(2) from that
// position. A stream therefore costs two descriptors, its socket and its
// file.
//
// Released files stay open for the next response of the same blob, at
// most maxIdle per blob (the least recently used is closed first), so a
// storm of Range requests does not open and close the blob per request.
// forget closes a blob's idle files at once and each lent file when it is
// released. The pool knows nothing of HTTP; it only needs open.
type filePool struct {
	open    func(d cache.Digest) (*os.File, error)
	maxIdle int

	mu    sync.Mutex
	blobs map[cache.Digest]*blobFiles // guarded by mu
}

// blobFiles are the files of one blob. An entry lives while files are
// lent or idle; forget bumps gen, so files lent before it are closed on
// release instead of being kept for a blob that may be gone.
type blobFiles struct {
	idle []*os.File // least recently used first
	lent int
	gen  uint64
}

// maxIdleFiles is how many released files per blob are kept open.
const maxIdleFiles = 4

func newFilePool(open func(d cache.Digest) (*os.File, error), maxIdle int) *filePool {
	return &filePool{open: open, maxIdle: maxIdle, blobs: map[cache.Digest]*blobFiles{}}
}

// acquire lends a file of blob d to the caller alone: its position is the
// caller's to move. release gives it back; calling it more than once is
// harmless. The blob counts as in use from acquire until release.
func (p *filePool) acquire(d cache.Digest) (f *os.File, release func(), err error) {
	p.mu.Lock()
	e := p.blobs[d]
	if e == nil {
		e = &blobFiles{}
		p.blobs[d] = e
	}
	e.lent++
	gen := e.gen
	if n := len(e.idle); n > 0 {
		f = e.idle[n-1]
		e.idle = e.idle[:n-1]
	}
	p.mu.Unlock()
	if f == nil {
		// Opened outside the lock: other blobs' requests need not wait
		// for this one's disk.
		if f, err = p.open(d); err != nil {
			p.mu.Lock()
			e.lent--
			p.dropIfEmpty(d, e)
			p.mu.Unlock()
			return nil, nil, err
		}
	}
	var once sync.Once
	return f, func() { once.Do(func() { p.put(d, e, gen, f) }) }, nil
}

// put takes back a lent file: kept if its blob was not forgotten since it
// was lent, closed otherwise or when it is one too many.
func (p *filePool) put(d cache.Digest, e *blobFiles, gen uint64, f *os.File) {
	var closeFile *os.File
	p.mu.Lock()
	e.lent--
	switch {
	case e.gen != gen || p.blobs[d] != e:
		closeFile = f
	case len(e.idle) < p.maxIdle:
		e.idle = append(e.idle, f)
	default:
		closeFile = e.idle[0]
		e.idle = append(slices.Delete(e.idle, 0, 1), f)
	}
	p.dropIfEmpty(d, e)
	p.mu.Unlock()
	if closeFile != nil {
		closeFile.Close()
	}
}

// dropIfEmpty removes e when it holds nothing. p.mu must be held.
func (p *filePool) dropIfEmpty(d cache.Digest, e *blobFiles) {
	if e.lent == 0 && len(e.idle) == 0 && p.blobs[d] == e {
		delete(p.blobs, d)
	}
}

// inUse reports whether a response holds a file of blob d.
func (p *filePool) inUse(d cache.Digest) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.blobs[d]
	return e != nil && e.lent > 0
}

// forget closes blob d's idle files now and its lent files when they are
// released: an evicted blob's disk space is freed when its last reader is
// done. A later acquire opens the blob afresh.
func (p *filePool) forget(d cache.Digest) {
	p.mu.Lock()
	e := p.blobs[d]
	if e == nil {
		p.mu.Unlock()
		return
	}
	idle := e.idle
	e.idle = nil
	e.gen++
	p.dropIfEmpty(d, e)
	p.mu.Unlock()
	for _, f := range idle {
		f.Close()
	}
}

// idleFiles is the number of open files not lent, over all blobs.
func (p *filePool) idleFiles() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.blobs {
		n += len(e.idle)
	}
	return n
}

// storeOpener opens blobs of store for a filePool.
func storeOpener(store *cache.Store) func(d cache.Digest) (*os.File, error) {
	return func(d cache.Digest) (*os.File, error) {
		f, _, err := store.Open(d)
		return f, err
	}
}
