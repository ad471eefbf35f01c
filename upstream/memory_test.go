package upstream

import (
	"sync"
	"testing"
)

func TestMemoryBudget(t *testing.T) {
	b := NewMemoryBudget(100)
	if b.Max() != 100 || NewMemoryBudget(0).Max() != DefaultMemoryMaxBytes {
		t.Fatalf("Max = %d, default %d", b.Max(), NewMemoryBudget(0).Max())
	}
	if !b.Acquire(60) || !b.Acquire(40) || b.Used() != 100 {
		t.Fatalf("could not fill the budget: used %d", b.Used())
	}
	if b.Acquire(1) {
		t.Error("acquired past the bound")
	}
	if !b.Acquire(0) {
		t.Error("zero bytes refused")
	}
	if b.Acquire(-1) {
		t.Error("negative acquire accepted")
	}
	b.Release(60)
	if b.Used() != 40 || !b.Acquire(60) || b.Acquire(1) {
		t.Errorf("after a release: used %d", b.Used())
	}
	b.Release(100)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("releasing more than acquired did not panic")
			}
		}()
		b.Release(1)
	}()
}

func TestMemoryBudgetConcurrent(t *testing.T) {
	const bound, each, workers, rounds = 1000, 7, 16, 2000
	b := NewMemoryBudget(bound)
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := int64(0)
	for range workers {
		wg.Go(func() {
			for range rounds {
				if !b.Acquire(each) {
					continue
				}
				if u := b.Used(); u > bound {
					mu.Lock()
					peak = max(peak, u)
					mu.Unlock()
				}
				b.Release(each)
			}
		})
	}
	wg.Wait()
	if peak != 0 || b.Used() != 0 {
		t.Errorf("peak over the bound %d, used at the end %d", peak, b.Used())
	}
}
