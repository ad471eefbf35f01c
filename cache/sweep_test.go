package cache

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Sweep tidies what OpenIndex and the records leave behind, by age.
func TestSweepIndexLeftovers(t *testing.T) {
	s := newTestStore(t)
	root := s.Root()
	now := time.Now()
	oldAside := corruptIndexPath(s.IndexPath(), now.Add(-QuarantineMaxAge-time.Hour))
	oldAside2 := oldAside + "-2"
	newAside := corruptIndexPath(s.IndexPath(), now.Add(-time.Hour))
	oldCopy := filepath.Join(root, ".index-check-123")
	newCopy := filepath.Join(root, ".index-check-456")
	oldRecTmp := filepath.Join(root, "records", ".tmp-1")
	newRecTmp := filepath.Join(root, "records", ".tmp-2")
	stray := filepath.Join(root, "rhcos-4.16-x86_64.iso") // not ours
	if err := os.MkdirAll(filepath.Join(root, "records"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{oldAside, oldAside2, newAside, oldCopy, newCopy, oldRecTmp, newRecTmp, stray} {
		writeFile(t, p, []byte("x"))
	}
	// Moved-aside indexes age by the time in their name, not their mtime.
	long := now.Add(-30 * 24 * time.Hour)
	for _, p := range []string{newAside, oldCopy, oldRecTmp, stray} {
		if err := os.Chtimes(p, long, long); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Sweep(time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("Sweep removed %d files, want 4", n)
	}
	for _, c := range []struct {
		path string
		want bool
	}{
		{oldAside, false}, {oldAside2, false}, {newAside, true},
		{oldCopy, false}, {newCopy, true},
		{oldRecTmp, false}, {newRecTmp, true},
		{stray, true},
	} {
		_, err := os.Stat(c.path)
		if got := err == nil; got != c.want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(c.path), got, c.want)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Error(err)
		}
	}
}
