package upstream

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSpool(t *testing.T) {
	const threshold, limit = 16, 64
	body := func(n int) string { return strings.Repeat("r", n) }
	tests := []struct {
		name     string
		noBudget bool
		full     bool // budget exhausted beforehand
		body     string
		declared int64 // -2: len(body)
		spilled  bool
		err      error
	}{
		{"small declared", false, false, body(10), -2, false, nil},
		{"small undeclared", false, false, body(10), -1, false, nil},
		{"empty", false, false, "", -2, false, nil},
		{"empty undeclared", false, false, "", -1, false, nil},
		{"exactly the threshold, undeclared", false, false, body(threshold), -1, false, nil},
		{"over the threshold, declared", false, false, body(threshold + 1), -2, true, nil},
		{"over the threshold, undeclared", false, false, body(threshold + 1), -1, true, nil},
		{"small but the budget is full", false, true, body(10), -2, true, nil},
		{"at the limit", false, false, body(limit), -1, true, nil},
		{"over the limit, declared", false, false, body(limit + 1), -2, false, errBodyTooLarge},
		{"over the limit, undeclared", false, false, body(limit + 1), -1, false, errBodyTooLarge},
		{"no budget: in memory", true, false, body(limit), -1, false, nil},
		{"no budget: over the limit", true, false, body(limit + 1), -1, false, errBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := spool{dir: dir, threshold: threshold}
			var budget *MemoryBudget
			if !tt.noBudget {
				budget = NewMemoryBudget(1 << 20)
				s.budget = budget
				if tt.full {
					budget.Acquire(budget.Max())
					defer budget.Release(budget.Max())
				}
			}
			declared := tt.declared
			if declared == -2 {
				declared = int64(len(tt.body))
			}
			before := int64(0)
			if budget != nil {
				before = budget.Used()
			}
			b, err := s.read(strings.NewReader(tt.body), declared, limit)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				if budget != nil && budget.Used() != before {
					t.Errorf("budget holds %d after a failure, want %d", budget.Used(), before)
				}
				return
			}
			if spilled := b.Bytes() == nil; spilled != tt.spilled {
				t.Errorf("spilled = %v, want %v", spilled, tt.spilled)
			}
			if b.Len() != int64(len(tt.body)) {
				t.Errorf("Len %d, want %d", b.Len(), len(tt.body))
			}
			got, _ := io.ReadAll(io.NewSectionReader(b, 0, b.Len()))
			if string(got) != tt.body {
				t.Errorf("content %q, want %q", got, tt.body)
			}
			if budget != nil {
				want := before
				if !tt.spilled {
					want += int64(len(tt.body))
				}
				if budget.Used() != want {
					t.Errorf("budget holds %d, want %d", budget.Used(), want)
				}
			}
			if names, _ := os.ReadDir(dir); len(names) != 0 {
				t.Errorf("spill directory holds %v; the file must have no name", names)
			}
			b.Close()
			if budget != nil && budget.Used() != before {
				t.Errorf("budget holds %d after Close, want %d", budget.Used(), before)
			}
		})
	}
}

func TestSpoolErrors(t *testing.T) {
	errRead := errors.New("connection reset")
	failing := func(n int) io.Reader {
		return io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("r"), n)), iotest.ErrReader(errRead))
	}
	for _, n := range []int{5, 100} { // fails in memory, fails while spilling
		budget := NewMemoryBudget(1 << 20)
		s := spool{budget: budget, dir: t.TempDir(), threshold: 16}
		_, err := s.read(failing(n), -1, 1<<10)
		var se *sourceError
		if !errors.As(err, &se) || !errors.Is(err, errRead) {
			t.Errorf("read error after %d bytes: %v, want a sourceError", n, err)
		}
		if budget.Used() != 0 {
			t.Errorf("budget holds %d after a failed read", budget.Used())
		}
	}
	budget := NewMemoryBudget(1 << 20)
	s := spool{budget: budget, dir: filepath.Join(t.TempDir(), "missing"), threshold: 16}
	_, err := s.read(strings.NewReader(strings.Repeat("r", 100)), -1, 1<<10)
	var se *sourceError
	if err == nil || errors.As(err, &se) || budget.Used() != 0 {
		t.Errorf("spill into a missing directory: %v (used %d), want a local error", err, budget.Used())
	}
}
