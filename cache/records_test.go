package cache

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func recordsEqual(a, b []BaseRecord) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestValidateRecord(t *testing.T) {
	good := testRecord("full-iso", "9.6.20251015-0", "x86_64", "a")
	if err := ValidateRecord(good); err != nil {
		t.Fatalf("good record: %v", err)
	}
	tests := []struct {
		name string
		edit func(r *BaseRecord)
	}{
		{"empty type", func(r *BaseRecord) { r.Key.Type = "" }},
		{"empty version", func(r *BaseRecord) { r.Key.Version = "" }},
		{"empty arch", func(r *BaseRecord) { r.Key.Arch = "" }},
		{"slash", func(r *BaseRecord) { r.Key.Version = "../../etc" }},
		{"backslash", func(r *BaseRecord) { r.Key.Arch = `x86\64` }},
		{"NUL", func(r *BaseRecord) { r.Key.Type = "full\x00iso" }},
		{"newline", func(r *BaseRecord) { r.Key.Arch = "x86\n" }},
		{"not UTF-8", func(r *BaseRecord) { r.Key.Arch = "x86\xff" }},
		{"long part", func(r *BaseRecord) { r.Key.Version = strings.Repeat("9", maxKeyPart+1) }},
		{"zero digest", func(r *BaseRecord) { r.Digest = Digest{} }},
		{"negative size", func(r *BaseRecord) { r.Size = -1 }},
		{"long URL", func(r *BaseRecord) { r.URL = strings.Repeat("u", maxRecordURL+1) }},
		{"long OpenShift version", func(r *BaseRecord) { r.OpenshiftVersion = strings.Repeat("4", maxOpenshiftVer+1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.edit(&r)
			if err := ValidateRecord(r); !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("ValidateRecord = %v, want ErrInvalidRecord", err)
			}
		})
	}
}

func TestRecordsFollowPutAndDelete(t *testing.T) {
	s := newTestStore(t)
	ix, _, err := OpenIndex(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	a := testRecord("full-iso", "9.6", "x86_64", "a")
	b := testRecord("full-iso", "9.6", "aarch64", "b")
	for _, r := range []BaseRecord{a, b} {
		if err := ix.PutBase(r); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(s.Root(), "records", DigestOf([]byte("full-iso\x009.6\x00x86_64")).Hex()+".json"))
	if err != nil {
		t.Fatalf("record file of %s: %v", a.Key, err)
	}
	var onDisk BaseRecord
	if err := json.Unmarshal(raw, &onDisk); err != nil || !reflect.DeepEqual(onDisk, a) {
		t.Fatalf("record file holds %+v (%v), want %+v", onDisk, err, a)
	}
	got, bad, err := s.Records()
	if err != nil || len(bad) != 0 || !recordsEqual(got, []BaseRecord{b, a}) {
		t.Fatalf("Records = %+v, %v, %v; want b, a (key order)", got, bad, err)
	}

	// Replacing rewrites the record; deleting removes it.
	a2 := a
	a2.Digest, a2.Size = DigestOf([]byte("newer")), 5
	if err := ix.PutBase(a2); err != nil {
		t.Fatal(err)
	}
	if err := ix.DeleteBase(b.Key); err != nil {
		t.Fatal(err)
	}
	got, _, err = s.Records()
	if err != nil || !recordsEqual(got, []BaseRecord{a2}) {
		t.Fatalf("Records after replace and delete = %+v, %v", got, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(s.Root(), "records", tempPattern)); len(tmp) != 0 {
		t.Errorf("temp files left in records/: %v", tmp)
	}
	if err := ix.PutBase(BaseRecord{Key: BaseKey{"full-iso", "9.6", "x86/64"}, Digest: a.Digest}); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("PutBase with a slash in the key = %v, want ErrInvalidRecord", err)
	}
}

func TestRecordsInvalidAreQuarantined(t *testing.T) {
	s := newTestStore(t)
	ix, _, err := OpenIndex(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	good := testRecord("full-iso", "9.6", "x86_64", "a")
	if err := ix.PutBase(good); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(s.Root(), "records")
	enc := func(r BaseRecord) []byte {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	negative := testRecord("full-iso", "9.6", "s390x", "n")
	negative.Size = -5
	other := testRecord("full-iso", "9.6", "ppc64le", "o")
	bad := map[string][]byte{
		recordName(BaseKey{"full-iso", "1", "x"}):   []byte("{not json"),
		recordName(negative.Key):                    enc(negative),
		recordName(BaseKey{"full-iso", "2", "x"}):   enc(other), // name of another key
		recordName(BaseKey{"full-iso", "3", "x"}):   append(enc(other), []byte(" {}")...),
		recordName(BaseKey{"full-iso", "4", "x"}):   []byte(`{"key":{"type":"a","version":"b","arch":"c"},"digest":"sha256:zz"}`),
		recordName(BaseKey{"full-iso", "5", "big"}): []byte(strings.Repeat(" ", maxRecordFileLen+1)),
	}
	for name, b := range bad {
		writeFile(t, filepath.Join(dir, name), b)
	}
	writeFile(t, filepath.Join(dir, "README"), []byte("not a record, left alone"))

	got, problems, err := s.Records()
	if err != nil {
		t.Fatal(err)
	}
	if !recordsEqual(got, []BaseRecord{good}) {
		t.Errorf("Records = %+v, want only the good one", got)
	}
	if len(problems) != len(bad) {
		t.Errorf("%d problems reported, want %d: %v", len(problems), len(bad), problems)
	}
	for _, p := range problems {
		if !errors.Is(p, ErrInvalidRecord) {
			t.Errorf("problem %v does not wrap ErrInvalidRecord", p)
		}
	}
	for name := range bad {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("invalid record %s still in records/", name)
		}
		if _, err := os.Stat(filepath.Join(s.Root(), "quarantine", "record-"+name)); err != nil {
			t.Errorf("invalid record %s not in quarantine/: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Errorf("stray file touched: %v", err)
	}
	// Reported once: the next scan is clean.
	if _, problems, _ := s.Records(); len(problems) != 0 {
		t.Errorf("second scan reports %v", problems)
	}
}

// An index from a build without records gets them at the next open.
func TestOpenIndexBackfillsRecords(t *testing.T) {
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
	// A record newer than its index entry (crash between the two writes)
	// stays as it is.
	newer := want[1]
	newer.Digest = DigestOf([]byte("newer"))
	if err := writeRecord(s.Root(), newer); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	if err := os.Remove(recordPath(s.Root(), want[0].Key)); err != nil {
		t.Fatal(err)
	}

	ix, info, err := OpenIndex(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if info.RecordsWritten != 1 || info.Recovered {
		t.Errorf("OpenIndex info = %+v, want 1 record written", info)
	}
	got, _, err := s.Records()
	if err != nil || !recordsEqual(got, []BaseRecord{want[0], newer}) {
		t.Errorf("Records = %+v, %v", got, err)
	}
}

// Sweep never removes a blob a record names, so blobs survive an index that
// was recreated and is not rebuilt yet.
func TestSweepKeepsRecordedBlobs(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	recorded, size, err := s.Put(ctx, strings.NewReader("base iso"))
	if err != nil {
		t.Fatal(err)
	}
	orphan, _, err := s.Put(ctx, strings.NewReader("orphan"))
	if err != nil {
		t.Fatal(err)
	}
	ix, _, err := OpenIndex(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	r := BaseRecord{Key: BaseKey{"full-iso", "9.6", "x86_64"}, Digest: recorded, Size: size}
	if err := ix.PutBase(r); err != nil {
		t.Fatal(err)
	}
	none := func(Digest) bool { return false } // as from an empty, recreated index
	if _, err := s.Sweep(time.Hour, none); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(recorded); err != nil {
		t.Errorf("Sweep removed a recorded blob: %v", err)
	}
	if _, err := s.Stat(orphan); !errors.Is(err, ErrNotFound) {
		t.Errorf("Sweep kept an orphan blob: %v", err)
	}
	// Dropping the base (index and record) lets Sweep take the blob.
	if err := ix.DeleteBase(r.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sweep(time.Hour, none); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(recorded); !errors.Is(err, ErrNotFound) {
		t.Errorf("blob of a deleted base survived Sweep: %v", err)
	}
}

// If records/ cannot be read, Sweep removes no blob at all.
func TestSweepUnreadableRecordsKeepsBlobs(t *testing.T) {
	s := newTestStore(t)
	d, _, err := s.Put(context.Background(), strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	// A file where the directory should be: reading it fails.
	writeFile(t, filepath.Join(s.Root(), "records"), []byte("x"))
	if _, err := s.Sweep(time.Hour, func(Digest) bool { return false }); err == nil {
		t.Error("Sweep with unreadable records reported no error")
	}
	if _, err := s.Stat(d); err != nil {
		t.Errorf("Sweep removed a blob without reading the records: %v", err)
	}
}
