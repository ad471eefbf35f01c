package cache

import (
	"testing"
	"time"
)

func newTestHot(t *testing.T) *Hot[string] {
	t.Helper()
	h, err := NewHot[string](1 << 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// setAndWait retries a Set that ristretto dropped from its buffer, which it
// may do under load; an empty cache never rejects by admission.
func setAndWait(t *testing.T, h *Hot[string], k, v string, ttl time.Duration) {
	t.Helper()
	for range 100 {
		ok := h.SetWithTTL(k, v, 1, ttl)
		h.Wait()
		if ok {
			if _, found := h.Get(k); found {
				return
			}
		}
	}
	t.Fatalf("Set(%q) never became visible", k)
}

func TestHotGetSetDel(t *testing.T) {
	h := newTestHot(t)
	tests := []struct{ k, v string }{
		{"full-iso/9.6/x86_64", "sha256:aa"},
		{"full-iso/9.6/aarch64", "sha256:bb"},
		{"", "empty key"},
	}
	for _, tt := range tests {
		setAndWait(t, h, tt.k, tt.v, 0)
	}
	for _, tt := range tests {
		if got, ok := h.Get(tt.k); !ok || got != tt.v {
			t.Errorf("Get(%q) = %q, %v; want %q", tt.k, got, ok, tt.v)
		}
	}
	if _, ok := h.Get("missing"); ok {
		t.Error("Get of a missing key found something")
	}

	// Update an existing key: updates are never dropped.
	h.Set(tests[0].k, "sha256:cc", 1)
	h.Wait()
	if got, _ := h.Get(tests[0].k); got != "sha256:cc" {
		t.Errorf("after update Get = %q, want sha256:cc", got)
	}

	h.Del(tests[1].k)
	h.Wait()
	if _, ok := h.Get(tests[1].k); ok {
		t.Error("Get after Del still finds the key")
	}
	if got, _ := h.Get(tests[0].k); got != "sha256:cc" {
		t.Error("Del removed another key")
	}
}

func TestHotTTL(t *testing.T) {
	h := newTestHot(t)
	setAndWait(t, h, "short", "v", 200*time.Millisecond)
	setAndWait(t, h, "forever", "v", 0)
	// Expiry is checked on Get, so poll with a generous deadline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := h.Get("short"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("item with a 200ms TTL still present after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := h.Get("forever"); !ok {
		t.Error("item without TTL expired")
	}
	if h.SetWithTTL("neg", "v", 1, -time.Second) {
		t.Error("SetWithTTL with a negative ttl was accepted")
	}
}

func TestNewHot(t *testing.T) {
	for _, c := range []int64{0, -1} {
		if _, err := NewHot[int](c); err == nil {
			t.Errorf("NewHot(%d) succeeded", c)
		}
	}
	counters := []struct{ maxCost, want int64 }{
		{1, minCounters},
		{100, minCounters},
		{1000, 10000},
		{maxCounters / 10, maxCounters / 10 * 10},
		{1 << 30, maxCounters}, // a byte budget does not allocate a huge sketch
	}
	for _, c := range counters {
		if got := numCounters(c.maxCost); got != c.want {
			t.Errorf("numCounters(%d) = %d, want %d", c.maxCost, got, c.want)
		}
	}
	h, err := NewHot[[]byte](64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
}
