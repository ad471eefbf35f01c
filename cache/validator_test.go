package cache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sidecarExists(t *testing.T, s *Store, key Digest) bool {
	t.Helper()
	_, err := os.Stat(validatorPath(s.Root(), key))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func TestValidatorLifecycle(t *testing.T) {
	s := newTestStore(t)
	key := DigestOf([]byte("http://mirror/rhcos.iso"))
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<12)
	const etag = `"5f3c-61a2b"`

	w, err := s.Resume(key)
	if err != nil {
		t.Fatal(err)
	}
	if w.Validator() != "" {
		t.Fatalf("fresh partial has validator %q", w.Validator())
	}
	if err := w.SetValidator(etag); err != nil {
		t.Fatal(err)
	}
	if !sidecarExists(t, s, key) {
		t.Fatal("SetValidator wrote no sidecar")
	}
	w.Write(content[:1000])
	if err := w.SetValidator(etag); err != nil {
		t.Errorf("repeating the validator: %v", err)
	}
	if err := w.SetValidator(`"other"`); err == nil {
		t.Error("changing the validator under written bytes succeeded")
	}
	if err := w.Suspend(); err != nil {
		t.Fatal(err)
	}

	w, err = s.Resume(key)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != 1000 || w.Validator() != etag {
		t.Fatalf("resumed: size %d validator %q; want 1000, %q", w.Size(), w.Validator(), etag)
	}
	// The source changed: start over under the new validator.
	if err := w.Reset(); err != nil {
		t.Fatal(err)
	}
	if w.Validator() != "" || sidecarExists(t, s, key) {
		t.Fatalf("Reset kept the validator (%q)", w.Validator())
	}
	if err := w.SetValidator("Tue, 25 Nov 2026 10:00:00 GMT"); err != nil {
		t.Fatal(err)
	}
	w.Write(content)
	if _, err := w.Commit(context.Background(), int64(len(content)), DigestOf(content)); err != nil {
		t.Fatal(err)
	}
	if sidecarExists(t, s, key) {
		t.Error("validator survived its download's commit")
	}

	// Cancel removes partial and validator.
	w, _ = s.Resume(key)
	w.SetValidator(etag)
	w.Write(content[:10])
	if err := w.Cancel(); err != nil {
		t.Fatal(err)
	}
	if sidecarExists(t, s, key) {
		t.Error("validator survived Cancel")
	}
	if _, err := os.Stat(partialPath(s.Root(), key)); !errors.Is(err, os.ErrNotExist) {
		t.Error("partial survived Cancel")
	}
	if tmp := tempFiles(t, s); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestValidatorBounds(t *testing.T) {
	s := newTestStore(t)
	key := DigestOf([]byte("k"))
	w, err := s.Resume(key)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()
	if err := w.SetValidator(strings.Repeat("e", MaxValidatorLen+1)); err == nil {
		t.Error("SetValidator accepted more than MaxValidatorLen bytes")
	}
	if err := w.SetValidator(strings.Repeat("e", MaxValidatorLen)); err != nil {
		t.Errorf("SetValidator of MaxValidatorLen bytes: %v", err)
	}
	w.Write([]byte("abc"))
	if err := w.SetValidator(""); err != nil || sidecarExists(t, s, key) {
		t.Errorf("clearing the validator: %v", err)
	}
	w.Suspend()

	// A sidecar this package did not write is dropped.
	writeFile(t, validatorPath(s.Root(), key), bytes.Repeat([]byte("x"), MaxValidatorLen+1))
	w, err = s.Resume(key)
	if err != nil {
		t.Fatal(err)
	}
	if w.Validator() != "" || sidecarExists(t, s, key) {
		t.Errorf("oversized sidecar read as %d bytes", len(w.Validator()))
	}
	w.Suspend()

	// A validator beside an empty partial vouches for nothing.
	key2 := DigestOf([]byte("k2"))
	writeFile(t, validatorPath(s.Root(), key2), []byte(`"stale"`))
	w, err = s.Resume(key2)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()
	if w.Validator() != "" || sidecarExists(t, s, key2) {
		t.Errorf("empty partial resumed with validator %q", w.Validator())
	}
	// A Writer from Create keeps its validator in memory only.
	c, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Cancel()
	if err := c.SetValidator(`"v"`); err != nil || c.Validator() != `"v"` {
		t.Errorf("Create writer: SetValidator = %v, Validator %q", err, c.Validator())
	}
}

func TestSweepPartialsAndValidators(t *testing.T) {
	s := newTestStore(t)
	live, stale, orphan := DigestOf([]byte("live")), DigestOf([]byte("stale")), DigestOf([]byte("orphan"))
	for _, k := range []Digest{live, stale} {
		w, err := s.Resume(k)
		if err != nil {
			t.Fatal(err)
		}
		w.SetValidator(`"v"`)
		w.Write([]byte("bytes"))
		if err := w.Suspend(); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, validatorPath(s.Root(), orphan), []byte(`"v"`))
	old := time.Now().Add(-PartialMaxAge - time.Hour)
	if err := os.Chtimes(partialPath(s.Root(), stale), old, old); err != nil {
		t.Fatal(err)
	}
	n, err := s.Sweep(time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("Sweep removed %d files, want 3 (stale partial, its validator, orphan validator)", n)
	}
	for _, c := range []struct {
		name string
		path string
		want bool
	}{
		{"live partial", partialPath(s.Root(), live), true},
		{"live validator", validatorPath(s.Root(), live), true},
		{"stale partial", partialPath(s.Root(), stale), false},
		{"stale validator", validatorPath(s.Root(), stale), false},
		{"orphan validator", validatorPath(s.Root(), orphan), false},
	} {
		_, err := os.Stat(c.path)
		if got := err == nil; got != c.want {
			t.Errorf("%s exists = %v, want %v", c.name, got, c.want)
		}
	}
}

// killHelperEnv makes the test binary act as a download killed midway
// (see TestMain).
const killHelperEnv = "CACHE_TEST_KILLED_WRITER_ROOT"

const (
	killKey       = "http://mirror/killed.iso"
	killValidator = `W/"killed-1"`
	killBytes     = 1<<20 + 12345
)

// killedWriter resumes a download, sets its validator, writes, says so and
// waits to be killed.
func killedWriter(root string) {
	s, err := OpenStore(root)
	if err != nil {
		panic(err)
	}
	w, err := s.Resume(DigestOf([]byte(killKey)))
	if err != nil {
		panic(err)
	}
	if err := w.SetValidator(killValidator); err != nil {
		panic(err)
	}
	if _, err := w.Write(killContent()); err != nil {
		panic(err)
	}
	fmt.Println("written")
	time.Sleep(time.Hour)
}

func killContent() []byte {
	return bytes.Repeat([]byte{0xa5}, killBytes)
}

// A download killed with SIGKILL keeps its bytes and its validator; Resume
// counts exactly the bytes on disk.
func TestValidatorSurvivesKill(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "written\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	s, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Resume(DigestOf([]byte(killKey)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()
	fi, err := os.Stat(filepath.Join(blobsDir(root), partialPrefix+DigestOf([]byte(killKey)).Hex()))
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != killBytes || w.Size() != fi.Size() {
		t.Errorf("resumed Size %d, on disk %d, written %d", w.Size(), fi.Size(), killBytes)
	}
	if w.Validator() != killValidator {
		t.Errorf("resumed Validator %q, want %q", w.Validator(), killValidator)
	}
	d, err := w.Commit(context.Background(), killBytes, DigestOf(killContent()))
	if err != nil || d != DigestOf(killContent()) {
		t.Errorf("committing the resumed bytes: %v", err)
	}
}

func TestWriterLimit(t *testing.T) {
	s := newTestStore(t)
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()
	w.Limit(10)
	if n, err := w.Write([]byte("123456")); n != 6 || err != nil {
		t.Fatalf("Write within the limit: %d, %v", n, err)
	}
	if n, err := w.Write([]byte("abcde")); n != 0 || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Write past the limit = %d, %v; want 0, ErrTooLarge", n, err)
	}
	if fi, err := os.Stat(w.TempPath()); err != nil || fi.Size() != 6 || w.Size() != 6 {
		t.Fatalf("after a refused write: file %v (%v), Size %d; want 6", fi.Size(), err, w.Size())
	}
	if n, err := w.Write([]byte("7890")); n != 4 || err != nil {
		t.Fatalf("Write up to the limit: %d, %v", n, err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Write at the limit = %v", err)
	}
	w.Limit(-1)
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatalf("Write after removing the limit: %v", err)
	}

	// A resumed partial already past the limit cannot be committed.
	key := DigestOf([]byte("big"))
	r, _ := s.Resume(key)
	r.Write(bytes.Repeat([]byte("b"), 100))
	r.Suspend()
	r, err = s.Resume(key)
	if err != nil {
		t.Fatal(err)
	}
	r.Limit(50)
	if _, err := r.Commit(context.Background(), -1, Digest{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Commit of 100 bytes with limit 50 = %v, want ErrTooLarge", err)
	}
}

// A full disk reaches the caller as syscall.ENOSPC, so it can Cancel.
func TestWriteFullDisk(t *testing.T) {
	s := newTestStore(t)
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("/dev/full: %v", err)
	}
	w.f.Close()
	w.f = full // every write to /dev/full fails with ENOSPC
	_, err = w.Write([]byte("data"))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write on a full disk = %v, want errors.Is ENOSPC", err)
	}
	if !strings.HasPrefix(err.Error(), "cache: ") {
		t.Errorf("error %q does not name the package", err)
	}
	if err := w.Cancel(); err != nil {
		t.Fatal(err)
	}
	if tmp := tempFiles(t, s); len(tmp) != 0 {
		t.Errorf("Cancel left %v", tmp)
	}
}
