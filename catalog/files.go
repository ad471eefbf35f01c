package catalog

import (
	"os"
	"sync"

	"github.com/isoedge/isoedge/cache"
)

// blobFiles shares one read-only *os.File per blob among every response
// streaming from it. Base extents are sent with sendfile at explicit
// offsets (see sendfile_linux.go), never through the file position, so a
// stream costs its socket and nothing else: 400 streams of one ISO hold
// 401 descriptors, not 800. A file stays open while the blob is in use and
// for later requests, until Forget (the blob is evicted).
type blobFiles struct {
	store *cache.Store

	mu    sync.Mutex
	files map[cache.Digest]*sharedFile
}

type sharedFile struct {
	f         *os.File
	refs      int  // responses using it
	forgotten bool // close when refs drops to zero
}

func newBlobFiles(store *cache.Store) *blobFiles {
	return &blobFiles{store: store, files: map[cache.Digest]*sharedFile{}}
}

// acquire returns the shared file of blob d, counted in use until release.
func (o *blobFiles) acquire(d cache.Digest) (*os.File, func(), error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	sf := o.files[d]
	if sf == nil {
		f, _, err := o.store.Open(d)
		if err != nil {
			return nil, nil, err
		}
		sf = &sharedFile{f: f}
		o.files[d] = sf
	}
	sf.refs++
	released := false
	return sf.f, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if released {
			return
		}
		released = true
		sf.refs--
		if sf.refs == 0 && sf.forgotten {
			sf.f.Close()
		}
	}, nil
}

// inUse reports whether a response streams from blob d.
func (o *blobFiles) inUse(d cache.Digest) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	sf := o.files[d]
	return sf != nil && sf.refs > 0
}

// forget drops blob d's file, closing it once no response uses it: an
// evicted blob's disk space is freed when its last reader is done.
func (o *blobFiles) forget(d cache.Digest) {
	o.mu.Lock()
	defer o.mu.Unlock()
	sf := o.files[d]
	if sf == nil {
		return
	}
	delete(o.files, d)
	sf.forgotten = true
	if sf.refs == 0 {
		sf.f.Close()
	}
}
