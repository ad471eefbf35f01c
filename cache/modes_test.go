package cache

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestGroupWritableForAnotherUID: under OpenShift's restricted SCC a later
// pod runs with another UID in the same group (0) and must open the index
// and resume partial downloads: with the umask main sets, what must be
// written again is group-writable and everything is group-readable.
func TestGroupWritableForAnotherUID(t *testing.T) {
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	root := t.TempDir()
	s, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	ix, _, err := OpenIndex(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	d, n, err := s.Put(context.Background(), bytes.NewReader([]byte("blob")))
	if err != nil {
		t.Fatal(err)
	}
	rec := BaseRecord{Key: BaseKey{Type: "full-iso", Version: "4.18", Arch: "x86_64"}, Digest: d, Size: n, URL: "http://m/x.iso", FetchedAt: time.Now().UTC()}
	if err := ix.PutBase(rec); err != nil {
		t.Fatal(err)
	}
	w, err := s.Resume(DigestOf([]byte("partial")))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetValidator(`v1 10 etag "x"`); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("some"))
	w.Suspend()

	groupWritable, groupReadable := os.FileMode(0o060), os.FileMode(0o040)
	err = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		mode := info.Mode().Perm()
		switch {
		case info.IsDir():
			if mode&0o070 != 0o070 {
				t.Errorf("directory %s: %v, want group rwx", p, mode)
			}
		case filepath.Dir(p) == filepath.Join(root, "blobs", "sha256", d.Hex()[:2]):
			if mode&groupReadable == 0 {
				t.Errorf("blob %s: %v, want group-readable", p, mode)
			}
		case p == s.IndexPath() || isPartial(filepath.Base(p)):
			if mode&groupWritable != groupWritable {
				t.Errorf("%s: %v, want group rw", p, mode)
			}
		default:
			if mode&groupReadable == 0 {
				t.Errorf("%s: %v, want group-readable", p, mode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func isPartial(name string) bool {
	_, sidecar, ok := partialKeyFromName(name)
	return ok && !sidecar
}
