package cache

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTestIndex(t *testing.T) (*Index, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "index.db")
	ix, info, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	if info != (IndexOpenInfo{}) {
		t.Fatalf("OpenIndex of a new file: %+v", info)
	}
	t.Cleanup(func() { ix.Close() })
	return ix, path
}

func testRecord(typ, version, arch, content string) BaseRecord {
	return BaseRecord{
		Key:              BaseKey{Type: typ, Version: version, Arch: arch},
		Digest:           DigestOf([]byte(content)),
		Size:             int64(len(content)),
		URL:              "https://mirror.example/rhcos-" + version + "-" + arch + ".iso",
		OpenshiftVersion: "4.19",
		FetchedAt:        time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
	}
}

func TestIndexBases(t *testing.T) {
	ix, _ := openTestIndex(t)
	recs := []BaseRecord{
		testRecord("full-iso", "9.6.20251015-0", "x86_64", "a"),
		testRecord("full-iso", "9.6.20251015-0", "aarch64", "b"),
		testRecord("minimal-iso", "9.6.20251015-0", "x86_64", "c"),
		// Parts that would collide without a separator.
		testRecord("full-iso", "9.6", "x86_64extra", "d"),
		testRecord("full-iso", "9.6x86_64", "extra", "e"),
	}
	for _, r := range recs {
		if err := ix.PutBase(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range recs {
		t.Run(r.Key.String(), func(t *testing.T) {
			got, err := ix.Base(r.Key)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Fatalf("Base = %+v, want %+v", got, r)
			}
		})
	}
	all, err := ix.Bases()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(recs) {
		t.Fatalf("Bases returned %d records, want %d", len(all), len(recs))
	}

	// Replace, then delete.
	upd := recs[0]
	upd.Digest = DigestOf([]byte("newer"))
	if err := ix.PutBase(upd); err != nil {
		t.Fatal(err)
	}
	if got, _ := ix.Base(upd.Key); got.Digest != upd.Digest {
		t.Errorf("after update Base digest = %v, want %v", got.Digest, upd.Digest)
	}
	if err := ix.DeleteBase(upd.Key); err != nil {
		t.Fatal(err)
	}
	_, err = ix.Base(upd.Key)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Base after delete = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), upd.Key.Version) {
		t.Errorf("error %q does not name the key", err)
	}
	if err := ix.DeleteBase(upd.Key); err != nil {
		t.Errorf("deleting a missing base: %v", err)
	}
	if all, _ := ix.Bases(); len(all) != len(recs)-1 {
		t.Errorf("Bases after delete = %d records, want %d", len(all), len(recs)-1)
	}
}

func TestIndexBadKeys(t *testing.T) {
	ix, _ := openTestIndex(t)
	for _, k := range []BaseKey{
		{"", "9.6", "x86_64"},
		{"full-iso", "", "x86_64"},
		{"full-iso", "9.6", ""},
		{"full-iso", "9.6\x00x", "x86_64"},
	} {
		if err := ix.PutBase(BaseRecord{Key: k}); err == nil {
			t.Errorf("PutBase(%q) succeeded", k)
		}
		if _, err := ix.Base(k); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Base(%q) = %v, want an invalid-key error", k, err)
		}
	}
	if err := ix.PutMeta("", Digest{}, []byte("x")); err == nil {
		t.Error("PutMeta with empty kind succeeded")
	}
}

func TestIndexMeta(t *testing.T) {
	ix, _ := openTestIndex(t)
	d := DigestOf([]byte("iso"))
	tests := []struct {
		name string
		kind string
		d    Digest
		val  []byte
	}{
		{"layout", "layout", d, []byte(`{"ignition":{"off":1}}`)},
		{"other kind same digest", "kargs", d, []byte("kargs")},
		{"empty value", "empty", d, []byte{}},
		{"binary", "bin", DigestOf([]byte("x")), []byte{0, 1, 2, 0xff}},
	}
	for _, tt := range tests {
		if err := ix.PutMeta(tt.kind, tt.d, tt.val); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ix.Meta(tt.kind, tt.d)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(tt.val) {
				t.Fatalf("Meta = %q, want %q", got, tt.val)
			}
		})
	}
	// The returned slice is a copy: changing it does not change the index.
	got, _ := ix.Meta("layout", d)
	got[0] = 'X'
	if again, _ := ix.Meta("layout", d); again[0] != '{' {
		t.Error("Meta returned memory shared with the index")
	}

	notFound := []struct {
		name string
		kind string
		d    Digest
	}{
		{"unknown kind", "nope", d},
		{"unknown digest", "layout", DigestOf([]byte("other"))},
	}
	for _, tt := range notFound {
		if _, err := ix.Meta(tt.kind, tt.d); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Meta = %v, want ErrNotFound", tt.name, err)
		}
	}
	if err := ix.DeleteMeta("layout", d); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Meta("layout", d); !errors.Is(err, ErrNotFound) {
		t.Errorf("Meta after delete = %v, want ErrNotFound", err)
	}
	if err := ix.DeleteMeta("nope", d); err != nil {
		t.Errorf("DeleteMeta of a missing kind: %v", err)
	}
}

func TestIndexReferenced(t *testing.T) {
	ix, _ := openTestIndex(t)
	a := testRecord("full-iso", "9.6", "x86_64", "a")
	b := testRecord("full-iso", "9.6", "aarch64", "b")
	m := DigestOf([]byte("meta only"))
	for _, r := range []BaseRecord{a, b} {
		if err := ix.PutBase(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.PutMeta("layout", a.Digest, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := ix.PutMeta("layout", m, []byte("y")); err != nil {
		t.Fatal(err)
	}
	got, err := ix.Referenced()
	if err != nil {
		t.Fatal(err)
	}
	want := map[Digest]bool{a.Digest: true, b.Digest: true, m: true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Referenced = %v, want %v", got, want)
	}
}

func TestIndexReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix, _, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	r := testRecord("full-iso", "9.6", "x86_64", "a")
	if err := ix.PutBase(r); err != nil {
		t.Fatal(err)
	}
	if err := ix.PutMeta("layout", r.Digest, []byte("L")); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	ix, info, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if info != (IndexOpenInfo{}) {
		t.Errorf("reopening a good index: %+v", info)
	}
	if got, err := ix.Base(r.Key); err != nil || !reflect.DeepEqual(got, r) {
		t.Errorf("Base after reopen = %+v, %v", got, err)
	}
	if got, err := ix.Meta("layout", r.Digest); err != nil || string(got) != "L" {
		t.Errorf("Meta after reopen = %q, %v", got, err)
	}
}

func TestIndexSecondOpenFailsFast(t *testing.T) {
	_, path := openTestIndex(t)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		ix2, _, err := OpenIndex(path)
		if err == nil {
			ix2.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("second OpenIndex on a locked file succeeded")
		}
		if !errors.Is(err, ErrIndexLocked) {
			t.Errorf("second OpenIndex = %v, want ErrIndexLocked", err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("the locked index is gone: %v", err)
		}
		// The lock timeout is 2s; allow slack for a loaded machine.
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("second OpenIndex took %v to fail", el)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("second OpenIndex hangs")
	}
}

func TestIndexSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix, _, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()

	// Pretend a future build wrote the file.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketV1).Bucket(bucketInfo).Put(keySchema, []byte("2"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ix, info, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if !info.Recovered || !strings.Contains(info.Reason, "schema") {
		t.Errorf("OpenIndex of schema version 2: %+v, want it moved aside for its schema", info)
	}
}
