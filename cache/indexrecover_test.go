package cache

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Facts of bbolt's file format used to damage files on purpose: page n
// starts at n*pageSize with a 16-byte header (id uint64, flags uint16,
// count uint16, overflow uint32), followed by 16-byte elements; a branch
// element ends with the child's page id (uint64).
const (
	pageHeaderLen    = 16
	branchElemLen    = 16
	branchElemPgidAt = 8
)

// buildIndex writes a real index with a few bases and enough layout
// metadata that the meta bucket spans branch and overflow pages, and
// returns its path and bytes.
func buildIndex(t testing.TB, dir string) (string, []byte) {
	return buildIndexN(t, dir, 300)
}

// buildIndexN is buildIndex with metas layout entries, every 50th larger
// than a page.
func buildIndexN(t testing.TB, dir string, metas int) (string, []byte) {
	t.Helper()
	path := filepath.Join(dir, "index.db")
	ix, _, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, arch := range []string{"x86_64", "aarch64", "s390x"} {
		if err := ix.PutBase(testRecord("full-iso", "9.6", arch, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("layout "), 1500) // larger than a page
	for i := range metas {
		v := []byte(fmt.Sprintf(`{"n":%d}`, i))
		if i%50 == 0 {
			v = big
		}
		if err := ix.PutMeta("layout", DigestOf([]byte(fmt.Sprint(i))), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.PutDerived("minimal", DigestOf([]byte("0")), "rootfs", DigestOf([]byte("min"))); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// pageFacts reads, with bbolt's public API, the page size, the root page
// of v1/meta/layout and the page ids of every branch page.
func pageFacts(t *testing.T, path string) (pageSize int, layoutRoot int, branches []int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pageSize = db.Info().PageSize
	err = db.View(func(tx *bolt.Tx) error {
		layoutRoot = int(tx.Bucket(bucketV1).Bucket(bucketMeta).Bucket([]byte("layout")).Root())
		for id := 2; ; id++ {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			if p == nil {
				return nil
			}
			if p.Type == "branch" {
				branches = append(branches, id)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return pageSize, layoutRoot, branches
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// expectRecovered opens the damaged index at path and checks that it was
// moved aside unchanged and replaced by a working, empty index.
func expectRecovered(t *testing.T, path string, reasonHas ...string) IndexOpenInfo {
	t.Helper()
	damaged, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ix, info, err := OpenIndex(path)
	if err != nil {
		t.Fatalf("OpenIndex of a damaged index: %v", err)
	}
	defer ix.Close()
	if !info.Recovered {
		t.Fatalf("OpenIndex did not recover: %+v", info)
	}
	t.Logf("reason: %s", info.Reason)
	for _, s := range reasonHas {
		if !strings.Contains(info.Reason, s) {
			t.Errorf("reason %q does not contain %q", info.Reason, s)
		}
	}
	name := filepath.Base(info.MovedTo)
	if filepath.Dir(info.MovedTo) != filepath.Dir(path) || !regexp.MustCompile(`^index\.db\.corrupt-\d{8}T\d{6}Z$`).MatchString(name) {
		t.Errorf("moved to %q, want index.db.corrupt-<UTC time> beside %s", info.MovedTo, path)
	}
	if stamp, ok := corruptIndexTime(name); !ok || time.Since(stamp) > time.Hour || time.Until(stamp) > time.Minute {
		t.Errorf("moved-aside name %q does not carry the current UTC time", name)
	}
	if got, err := os.ReadFile(info.MovedTo); err != nil || !bytes.Equal(got, damaged) {
		t.Errorf("moved-aside file differs from the damaged one (%v)", err)
	}
	if bases, err := ix.Bases(); err != nil || len(bases) != 0 {
		t.Errorf("fresh index: Bases = %v, %v", bases, err)
	}
	r := testRecord("full-iso", "9.6", "x86_64", "new")
	if err := ix.PutBase(r); err != nil {
		t.Fatalf("fresh index: %v", err)
	}
	if got, err := ix.Base(r.Key); err != nil || got.Digest != r.Digest {
		t.Errorf("fresh index: Base = %+v, %v", got, err)
	}
	return info
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpenIndexRecovers(t *testing.T) {
	tests := []struct {
		name      string
		damage    func(t *testing.T, path string, b []byte) []byte
		reasonHas string
	}{
		{"garbage data page", func(t *testing.T, path string, b []byte) []byte {
			ps, root, _ := pageFacts(t, path)
			copy(b[root*ps:(root+1)*ps], randomBytes(t, ps))
			return b
		}, ""},
		{"garbage in both meta pages", func(t *testing.T, path string, b []byte) []byte {
			ps, _, _ := pageFacts(t, path)
			copy(b[pageHeaderLen:ps], randomBytes(t, ps-pageHeaderLen))
			copy(b[ps+pageHeaderLen:2*ps], randomBytes(t, ps-pageHeaderLen))
			return b
		}, "bbolt cannot open it"},
		{"truncated to a third", func(t *testing.T, path string, b []byte) []byte {
			return b[:len(b)/3]
		}, ""},
		{"truncated inside the meta pages", func(t *testing.T, path string, b []byte) []byte {
			return b[:100]
		}, ""},
		{"random garbage", func(t *testing.T, path string, b []byte) []byte {
			return randomBytes(t, 64<<10)
		}, "bbolt cannot open it"},
		{"zero length", func(t *testing.T, path string, b []byte) []byte {
			return nil
		}, "empty"},
		{"text file", func(t *testing.T, path string, b []byte) []byte {
			return []byte("not a database\n")
		}, ""},
		{"page claims another id: bbolt panics reading it", func(t *testing.T, path string, b []byte) []byte {
			ps, root, _ := pageFacts(t, path)
			binary.NativeEndian.PutUint64(b[root*ps:], uint64(root+1000))
			return b
		}, "panicked"},
		{"branch page pointing at itself", func(t *testing.T, path string, b []byte) []byte {
			ps, _, branches := pageFacts(t, path)
			if len(branches) == 0 {
				t.Fatal("test index has no branch page")
			}
			id := branches[0]
			at := id*ps + pageHeaderLen + branchElemPgidAt
			binary.NativeEndian.PutUint64(b[at:], uint64(id))
			return b
		}, "checking it"}, // bbolt loops: only the child's limits end it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, b := buildIndex(t, t.TempDir())
			writeFile(t, path, tt.damage(t, path, b))
			info := expectRecovered(t, path)
			if tt.reasonHas != "" && !strings.Contains(info.Reason, tt.reasonHas) {
				t.Errorf("reason %q does not contain %q", info.Reason, tt.reasonHas)
			}
		})
	}
}

// A torn write of one meta page is what bbolt's two meta pages are for:
// the index is fine and nothing is moved aside.
func TestOpenIndexOneBadMetaPage(t *testing.T) {
	path, b := buildIndex(t, t.TempDir())
	ps, _, _ := pageFacts(t, path)
	copy(b[pageHeaderLen:ps], randomBytes(t, ps-pageHeaderLen))
	writeFile(t, path, b)
	ix, info, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if info.Recovered {
		t.Fatalf("recovered an index with one good meta page: %s", info.Reason)
	}
	if bases, err := ix.Bases(); err != nil || len(bases) != 3 {
		t.Errorf("Bases = %d records, %v; want 3", len(bases), err)
	}
}

// Values bbolt stores fine but this package cannot decode make the index
// unusable too.
func TestOpenIndexRecoversUndecodableValues(t *testing.T) {
	tests := []struct {
		name string
		edit func(tx *bolt.Tx) error
		want string
	}{
		{"base not JSON", func(tx *bolt.Tx) error {
			return basesBucket(tx).Put([]byte("full-iso\x009.6\x00x86_64"), []byte("{"))
		}, "decode"},
		{"base under the wrong key", func(tx *bolt.Tx) error {
			v, err := json.Marshal(testRecord("full-iso", "9.6", "aarch64", "x"))
			if err != nil {
				return err
			}
			return basesBucket(tx).Put([]byte("full-iso\x009.6\x00x86_64"), v)
		}, "holds the record"},
		{"meta key not a digest", func(tx *bolt.Tx) error {
			return metaBucket(tx).Bucket([]byte("layout")).Put([]byte("nope"), []byte("x"))
		}, "bad key"},
		{"derived value not a digest", func(tx *bolt.Tx) error {
			kb, err := metaBucket(tx).CreateBucketIfNotExists([]byte("derived-minimal"))
			if err != nil {
				return err
			}
			return kb.Put([]byte(DigestOf(nil).Hex()), []byte("nope"))
		}, "invalid digest"},
		{"foreign database", func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket(bucketV1); err != nil {
				return err
			}
			_, err := tx.CreateBucket([]byte("other"))
			return err
		}, "no v1"},
		{"bucket missing", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketV1).DeleteBucket(bucketBases)
		}, "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := buildIndex(t, t.TempDir())
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(tt.edit)
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			expectRecovered(t, path, tt.want)
		})
	}
}

// Without a child process (no executable to start), the check runs in this
// process and still turns bbolt's panic into a recovery.
func TestOpenIndexInProcessFallback(t *testing.T) {
	saved := checkExecutable
	checkExecutable = func() (string, error) { return "", errors.New("no executable") }
	defer func() { checkExecutable = saved }()

	path, b := buildIndex(t, t.TempDir())
	if ix, info, err := OpenIndex(path); err != nil || info.Recovered {
		t.Fatalf("good index in-process: %+v, %v", info, err)
	} else {
		ix.Close()
	}
	ps, root, _ := pageFacts(t, path)
	binary.NativeEndian.PutUint64(b[root*ps:], uint64(root+1000))
	writeFile(t, path, b)
	expectRecovered(t, path, "panicked")
}

// The child is really used: it answers with the banner.
func TestIndexCheckChild(t *testing.T) {
	path, _ := buildIndex(t, t.TempDir())
	check := func() (string, bool) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return checkInChild(f)
	}
	if reason, ran := check(); !ran || reason != "" {
		t.Fatalf("checkInChild(good index) = %q, ran %v", reason, ran)
	}
	writeFile(t, path, []byte("garbage"))
	if reason, ran := check(); !ran || !strings.Contains(reason, "bbolt cannot open it") {
		t.Fatalf("checkInChild(garbage) = %q, ran %v", reason, ran)
	}
}

// A page damaged while the index is open makes bbolt panic inside a
// method: the method returns ErrIndexCorrupt, every later call too, and a
// new OpenIndex replaces the file.
func TestIndexPanicAtRuntime(t *testing.T) {
	dir := t.TempDir()
	path, _ := buildIndex(t, dir)
	ps, root, _ := pageFacts(t, path)
	ix, info, err := OpenIndex(path)
	if err != nil || info.Recovered {
		t.Fatalf("OpenIndex: %+v, %v", info, err)
	}
	if _, err := ix.Meta("layout", DigestOf([]byte("7"))); err != nil {
		t.Fatal(err)
	}
	// bbolt maps the file shared, so this write changes what it reads.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var id [8]byte
	binary.NativeEndian.PutUint64(id[:], uint64(root+1000))
	if _, err := f.WriteAt(id[:], int64(root*ps)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	calls := []struct {
		name string
		call func() error
	}{
		{"Meta", func() error { _, err := ix.Meta("layout", DigestOf([]byte("7"))); return err }},
		{"Referenced", func() error { _, err := ix.Referenced(); return err }},
		{"Bases", func() error { _, err := ix.Bases(); return err }},
		{"PutMeta", func() error { return ix.PutMeta("layout", DigestOf([]byte("x")), []byte("x")) }},
		{"Base", func() error { _, err := ix.Base(BaseKey{"full-iso", "9.6", "x86_64"}); return err }},
	}
	for i, c := range calls {
		err := c.call()
		if !errors.Is(err, ErrIndexCorrupt) {
			t.Errorf("%s on a damaged page = %v, want ErrIndexCorrupt", c.name, err)
		}
		if i == 0 && !strings.Contains(fmt.Sprint(err), "bbolt") {
			t.Errorf("first error %q does not say bbolt failed", err)
		}
	}
	ix.Close() // may report the damage; must return

	ix, info, err = OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if !info.Recovered {
		t.Fatalf("reopening the damaged index: %+v", info)
	}
}

// Records outlive a damaged index: the caller rebuilds from them.
func TestRecordsSurviveRecovery(t *testing.T) {
	s := newTestStore(t)
	ix, _, err := OpenIndex(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	want := []BaseRecord{
		testRecord("full-iso", "9.6", "aarch64", "b"),
		testRecord("full-iso", "9.6", "x86_64", "a"),
	}
	for _, r := range want {
		if err := ix.PutBase(r); err != nil {
			t.Fatal(err)
		}
	}
	ix.Close()
	writeFile(t, s.IndexPath(), randomBytes(t, 32<<10))

	ix, info, err := OpenIndex(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if !info.Recovered {
		t.Fatal("garbage index not recovered")
	}
	got, bad, err := s.Records()
	if err != nil || len(bad) != 0 {
		t.Fatalf("Records: %v, bad %v", err, bad)
	}
	if !recordsEqual(got, want) {
		t.Fatalf("Records after recovery = %+v, want %+v", got, want)
	}
}

func FuzzOpenIndex(f *testing.F) {
	saved := indexCheckTimeout
	indexCheckTimeout = 5 * time.Second
	f.Cleanup(func() { indexCheckTimeout = saved })
	// Small seeds: the fuzzer mutates and minimizes whole files.
	_, good := buildIndexN(f, f.TempDir(), 8)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:8192])
	f.Add([]byte{})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "index.db")
		writeFile(t, path, b)
		type result struct {
			ix   *Index
			info IndexOpenInfo
			err  error
		}
		done := make(chan result, 1)
		go func() {
			ix, info, err := OpenIndex(path)
			done <- result{ix, info, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(2*indexCheckTimeout + 30*time.Second):
			t.Fatal("OpenIndex hangs")
		}
		if r.err != nil {
			t.Fatalf("OpenIndex: %v", r.err)
		}
		defer r.ix.Close()
		if !r.info.Recovered {
			// Accepted: everything in it must read back.
			if _, err := r.ix.Bases(); err != nil {
				t.Fatalf("accepted index: Bases: %v", err)
			}
			if _, err := r.ix.Referenced(); err != nil {
				t.Fatalf("accepted index: Referenced: %v", err)
			}
		}
		if err := r.ix.PutMeta("layout", DigestOf(b), []byte("x")); err != nil {
			t.Fatalf("index after OpenIndex: PutMeta: %v", err)
		}
	})
}

// BenchmarkOpenIndex measures opening a healthy index, which includes
// checking a copy of it in a child process.
func BenchmarkOpenIndex(b *testing.B) {
	path, _ := buildIndex(b, b.TempDir())
	for b.Loop() {
		ix, info, err := OpenIndex(path)
		if err != nil || info.Recovered {
			b.Fatalf("OpenIndex: %+v, %v", info, err)
		}
		ix.Close()
	}
}
