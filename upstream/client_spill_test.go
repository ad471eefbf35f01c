package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"
)

// newSpillClient starts a fake assisted-service whose minimal-initrd is
// produced by ramdisk, and a Client with a memory budget.
func newSpillClient(t *testing.T, budget *MemoryBudget, threshold int64, timeout time.Duration, handle http.HandlerFunc) (*Client, string) {
	t.Helper()
	srv := httptest.NewServer(handle)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	dir := t.TempDir()
	c, err := NewClient(ClientConfig{Scheme: "http", Host: u.Host, Timeout: timeout, Memory: budget, SpillDir: dir, SpillThreshold: threshold})
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

func ramdiskOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func readBlob(t *testing.T, b *Blob) []byte {
	t.Helper()
	got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestClientRamdiskMemoryOrSpill(t *testing.T) {
	for _, size := range []int{7, 64 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			want := ramdiskOf(size)
			budget := NewMemoryBudget(1 << 20)
			c, dir := newSpillClient(t, budget, 1<<10, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
				w.Write(want)
			})
			b, err := c.MinimalInitrd(t.Context(), testImageID, Credential{})
			if err != nil {
				t.Fatal(err)
			}
			spilled := size > 1<<10
			if (b.Bytes() == nil) != spilled {
				t.Errorf("Bytes nil = %v, want spilled = %v", b.Bytes() == nil, spilled)
			}
			wantUsed := int64(size)
			if spilled {
				wantUsed = 0
			}
			if budget.Used() != wantUsed {
				t.Errorf("budget holds %d, want %d", budget.Used(), wantUsed)
			}
			if !bytes.Equal(readBlob(t, b), want) {
				t.Error("ramdisk content differs")
			}
			if names, _ := os.ReadDir(dir); len(names) != 0 {
				t.Errorf("spill directory holds %v", names)
			}
			b.Close()
			if budget.Used() != 0 {
				t.Errorf("budget holds %d after Close", budget.Used())
			}
		})
	}
}

// Many concurrent ramdisks: what is held in memory never passes the
// budget, the rest is spilled, every copy is intact.
func TestClientRamdiskBudgetConcurrent(t *testing.T) {
	const size, threshold, bound, calls = 3 << 10, 4 << 10, 16 << 10, 24
	want := ramdiskOf(size)
	budget := NewMemoryBudget(bound)
	c, _ := newSpillClient(t, budget, threshold, 30*time.Second, func(w http.ResponseWriter, r *http.Request) {
		w.Write(want)
	})
	blobs := make([]*Blob, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() { blobs[i], errs[i] = c.MinimalInitrd(t.Context(), testImageID, Credential{}) })
	}
	wg.Wait()
	inMemory := 0
	for i, b := range blobs {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if b.Bytes() != nil {
			inMemory++
		}
		if !bytes.Equal(readBlob(t, b), want) {
			t.Errorf("call %d: content differs", i)
		}
	}
	if inMemory*size > bound || inMemory == 0 || inMemory == calls {
		t.Errorf("%d of %d ramdisks in memory (%d bytes, bound %d); want some in memory, the rest spilled", inMemory, calls, inMemory*size, bound)
	}
	if budget.Used() != int64(inMemory*size) {
		t.Errorf("budget holds %d, want %d", budget.Used(), inMemory*size)
	}
	for _, b := range blobs {
		b.Close()
	}
	if budget.Used() != 0 {
		t.Errorf("budget holds %d after every Close", budget.Used())
	}
}

func TestClientRamdiskFailuresReleaseBudget(t *testing.T) {
	tests := []struct {
		name    string
		handle  http.HandlerFunc
		err     error
		timeout time.Duration // the client's; 0: one no answer here comes near
	}{
		{"connection lost while spilling", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100000")
			w.Write(ramdiskOf(5000))
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, ErrUnavailable, 0},
		{"connection lost in memory", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "500")
			w.Write(ramdiskOf(100))
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, ErrUnavailable, 0},
		{"timeout while spilling", func(w http.ResponseWriter, r *http.Request) {
			w.Write(ramdiskOf(5000))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, context.DeadlineExceeded, 500 * time.Millisecond},
		{"declared too large", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(maxRamdiskSize+1))
		}, ErrBadResponse, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			budget := NewMemoryBudget(1 << 20)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 30 * time.Second
			}
			c, _ := newSpillClient(t, budget, 1<<10, timeout, tt.handle)
			b, err := c.MinimalInitrd(t.Context(), testImageID, Credential{CredAPIKey, testSecret})
			if !errors.Is(err, tt.err) || b != nil {
				t.Fatalf("got %v, %v; want %v", b, err, tt.err)
			}
			if budget.Used() != 0 {
				t.Errorf("budget holds %d after a failure", budget.Used())
			}
			checkErrText(t, err)
		})
	}
}
