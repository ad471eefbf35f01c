package catalog

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/isoedge/isoedge/cache"
)

// poolFixture is a filePool over two small files, counting opens.
type poolFixture struct {
	pool  *filePool
	a, b  cache.Digest
	mu    sync.Mutex
	opens map[cache.Digest]int
	files []*os.File // every file opened
}

func newPoolFixture(t *testing.T, maxIdle int) *poolFixture {
	t.Helper()
	dir := t.TempDir()
	fx := &poolFixture{a: cache.Digest{1}, b: cache.Digest{2}, opens: map[cache.Digest]int{}}
	paths := map[cache.Digest]string{fx.a: filepath.Join(dir, "a"), fx.b: filepath.Join(dir, "b")}
	for _, p := range paths {
		if err := os.WriteFile(p, []byte("blob "+p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fx.pool = newFilePool(func(d cache.Digest) (*os.File, error) {
		p, ok := paths[d]
		if !ok {
			return nil, errors.New("no such blob")
		}
		f, err := os.Open(p)
		if err == nil {
			fx.mu.Lock()
			fx.opens[d]++
			fx.files = append(fx.files, f)
			fx.mu.Unlock()
		}
		return f, err
	}, maxIdle)
	t.Cleanup(func() {
		for _, f := range fx.files {
			f.Close()
		}
	})
	return fx
}

func (fx *poolFixture) opened(d cache.Digest) int {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return fx.opens[d]
}

// isOpen reports whether f's descriptor is still open.
func isOpen(f *os.File) bool {
	_, err := f.Stat()
	return err == nil
}

func TestFilePoolLendsOneFilePerStream(t *testing.T) {
	fx := newPoolFixture(t, 4)
	f1, r1, err := fx.pool.acquire(fx.a)
	if err != nil {
		t.Fatal(err)
	}
	f2, r2, err := fx.pool.acquire(fx.a)
	if err != nil {
		t.Fatal(err)
	}
	if f1 == f2 {
		t.Fatal("two streams were lent the same file")
	}
	if !fx.pool.inUse(fx.a) || fx.pool.inUse(fx.b) {
		t.Fatalf("inUse(a) %v, inUse(b) %v; want true, false", fx.pool.inUse(fx.a), fx.pool.inUse(fx.b))
	}
	// Each stream owns its position.
	if _, err := f1.Seek(3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if pos, _ := f2.Seek(0, io.SeekCurrent); pos != 0 {
		t.Fatalf("moving one stream's file moved another's to %d", pos)
	}
	r1()
	r1() // twice is harmless
	if !fx.pool.inUse(fx.a) {
		t.Fatal("a is not in use while a stream still holds it")
	}
	r2()
	if fx.pool.inUse(fx.a) {
		t.Fatal("a is in use after every stream released it")
	}
	// Released files are reused, not reopened.
	f3, r3, err := fx.pool.acquire(fx.a)
	if err != nil {
		t.Fatal(err)
	}
	defer r3()
	if f3 != f1 && f3 != f2 {
		t.Fatal("a released file was not reused")
	}
	if n := fx.opened(fx.a); n != 2 {
		t.Fatalf("a opened %d times, want 2", n)
	}
}

func TestFilePoolKeepsAtMostMaxIdleLeastRecentlyUsedClosed(t *testing.T) {
	fx := newPoolFixture(t, 2)
	var files []*os.File
	var releases []func()
	for range 4 {
		f, r, err := fx.pool.acquire(fx.a)
		if err != nil {
			t.Fatal(err)
		}
		files, releases = append(files, f), append(releases, r)
	}
	for _, r := range releases {
		r()
	}
	// Released in order 0..3 with room for 2: 0 and 1 were closed.
	if isOpen(files[0]) || isOpen(files[1]) || !isOpen(files[2]) || !isOpen(files[3]) {
		t.Fatalf("open after release: %v %v %v %v; want the last two only", isOpen(files[0]), isOpen(files[1]), isOpen(files[2]), isOpen(files[3]))
	}
	if n := fx.pool.idleFiles(); n != 2 {
		t.Fatalf("%d idle files, want 2", n)
	}
}

func TestFilePoolForget(t *testing.T) {
	fx := newPoolFixture(t, 4)
	idle, r, err := fx.pool.acquire(fx.a)
	if err != nil {
		t.Fatal(err)
	}
	r()
	lent, release, err := fx.pool.acquire(fx.a)
	if err != nil {
		t.Fatal(err)
	}
	other, releaseB, err := fx.pool.acquire(fx.b)
	if err != nil {
		t.Fatal(err)
	}
	if lent != idle {
		t.Fatal("the idle file was not reused")
	}
	// A second, idle file of a.
	extra, re, err := fx.pool.acquire(fx.a)
	if err != nil {
		t.Fatal(err)
	}
	re()

	fx.pool.forget(fx.a)
	if isOpen(extra) {
		t.Fatal("forget left an idle file open")
	}
	if !isOpen(lent) {
		t.Fatal("forget closed a file a stream still reads")
	}
	if !fx.pool.inUse(fx.a) {
		t.Fatal("a forgotten blob still read by a stream is not in use")
	}
	// A stream after forget opens the blob afresh.
	fresh, releaseFresh, err := fx.pool.acquire(fx.a)
	if err != nil {
		t.Fatal(err)
	}
	if fresh == lent || fresh == extra {
		t.Fatal("a file from before forget was lent after it")
	}
	release()
	if isOpen(lent) {
		t.Fatal("a file lent before forget stayed open after its release")
	}
	releaseFresh()
	if !isOpen(fresh) {
		t.Fatal("a file opened after forget was closed on release")
	}
	if !isOpen(other) {
		t.Fatal("forgetting a closed a file of b")
	}
	releaseB()
	fx.pool.forget(fx.a)
	fx.pool.forget(fx.b)
	if isOpen(fresh) || isOpen(other) || fx.pool.idleFiles() != 0 || fx.pool.inUse(fx.a) || fx.pool.inUse(fx.b) {
		t.Fatal("files left after forgetting every blob")
	}
	fx.pool.mu.Lock()
	n := len(fx.pool.blobs)
	fx.pool.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d blob entries left", n)
	}
}

func TestFilePoolOpenError(t *testing.T) {
	fx := newPoolFixture(t, 4)
	if _, _, err := fx.pool.acquire(cache.Digest{9}); err == nil {
		t.Fatal("acquire of a missing blob succeeded")
	}
	if fx.pool.inUse(cache.Digest{9}) {
		t.Fatal("a blob that failed to open is in use")
	}
	fx.pool.mu.Lock()
	n := len(fx.pool.blobs)
	fx.pool.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d blob entries left after a failed open", n)
	}
}

// TestFilePoolConcurrent lends and forgets from many goroutines (run it
// with -race): no file is lent twice at once, and at the end nothing is
// in use and at most maxIdle files per blob are open.
func TestFilePoolConcurrent(t *testing.T) {
	fx := newPoolFixture(t, 4)
	var mu sync.Mutex
	holder := map[*os.File]bool{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				d := fx.a
				if (g+i)%3 == 0 {
					d = fx.b
				}
				if i%50 == 49 {
					fx.pool.forget(d)
				}
				f, release, err := fx.pool.acquire(d)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if holder[f] {
					t.Error("a file was lent to two streams at once")
				}
				holder[f] = true
				mu.Unlock()
				if _, err := f.ReadAt(make([]byte, 4), 0); err != nil {
					t.Errorf("a lent file is not readable: %v", err)
				}
				mu.Lock()
				delete(holder, f)
				mu.Unlock()
				release()
			}
		}()
	}
	wg.Wait()
	if fx.pool.inUse(fx.a) || fx.pool.inUse(fx.b) {
		t.Fatal("in use after every stream ended")
	}
	open := 0
	for _, f := range fx.files {
		if isOpen(f) {
			open++
		}
	}
	if open > 8 || open != fx.pool.idleFiles() {
		t.Fatalf("%d files open, %d idle in the pool; want the same, at most 8", open, fx.pool.idleFiles())
	}
}
