package cache

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestDerived(t *testing.T) {
	ix, _, err := OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	parent, child := DigestOf([]byte("full")), DigestOf([]byte("minimal"))
	if _, err := ix.Derived("minimal", parent, "https://a/rootfs"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing derivation: err = %v, want ErrNotFound", err)
	}
	if err := ix.PutDerived("minimal", parent, "https://a/rootfs", child); err != nil {
		t.Fatal(err)
	}
	got, err := ix.Derived("minimal", parent, "https://a/rootfs")
	if err != nil || got != child {
		t.Fatalf("Derived = %v, %v; want %v", got, err, child)
	}
	if _, err := ix.Derived("minimal", parent, "https://b/rootfs"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other param shares the derivation: %v", err)
	}
	if DerivedKey(parent, "x") == DerivedKey(parent, "y") || DerivedKey(parent, "x") == DerivedKey(child, "x") {
		t.Fatal("derived keys collide")
	}
}
