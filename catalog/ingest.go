package catalog

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/isoedge/isoedge/cache"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
)

// inspect is the default Inspect hook: it parses a downloaded ISO once,
// applies the ingest checks and returns the layout to store with it.
func (c *Catalog) inspect(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := customize.ParseLayout(f)
	if err != nil {
		return nil, err
	}
	if err := l.Check(c.cfg.MinRootfsBytes, c.cfg.MinKernelBytes); err != nil {
		return nil, err
	}
	if l.Ignition.Len == 0 {
		// Its ISOs could only ever answer 500: refused like any image that
		// cannot be served correctly.
		return nil, fmt.Errorf("%w: no ignition embed area (%s)", customize.ErrBadImage, l.IgnitionFile)
	}
	return l.Encode()
}

// originalImage finds the ISO assisted-image-service kept in the same
// DATA_DIR for an image (rhcos-<type>-<version>-<arch>.iso), so that
// replacing it with isoedge downloads nothing already on disk. The file is
// checked like any download before it is served.
func originalImage(dataDir string) func(config.OSImage) string {
	return func(img config.OSImage) string {
		if img.URL == config.SampleURL || strings.ContainsAny(img.Version+img.CPUArchitecture+img.Type, "/\\") {
			return ""
		}
		p := filepath.Join(dataDir, "rhcos-"+img.Type+"-"+img.Version+"-"+img.CPUArchitecture+".iso")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
		return ""
	}
}

// ingestFile parses an ISO built here and commits it to the store.
func ingestFile(ctx context.Context, store *cache.Store, path string) (cache.Digest, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return cache.Digest{}, nil, err
	}
	defer f.Close()
	l, err := customize.ParseLayout(f)
	if err != nil {
		return cache.Digest{}, nil, err
	}
	layout, err := l.Encode()
	if err != nil {
		return cache.Digest{}, nil, err
	}
	w, err := store.Create()
	if err != nil {
		return cache.Digest{}, nil, err
	}
	defer w.Cancel()
	n, err := io.Copy(w, io.NewSectionReader(f, 0, l.Size))
	if err != nil {
		return cache.Digest{}, nil, err
	}
	d, err := w.Commit(ctx, n, cache.Digest{})
	return d, layout, err
}
