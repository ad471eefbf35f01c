package upstream

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// The three calls of a snapshot are in flight at once: each answer waits
// until all three have arrived, which calls made one after another never
// do (they then fail on the client's timeout).
func TestFetchSnapshotConcurrent(t *testing.T) {
	var inflight, peak atomic.Int32
	allIn := make(chan struct{})
	c, f := newFake(t, 10*time.Second, func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n == 3 {
			close(allIn)
		}
		select {
		case <-allIn:
		case <-r.Context().Done():
		}
		inflight.Add(-1)
		defaultAS(w, r)
	})
	snap, err := FetchSnapshot(t.Context(), c, SnapshotRequest{ImageID: testImageID, ISOType: "minimal-iso",
		Cred: Credential{CredImageToken, testSecret}, Ramdisk: true, Kargs: true})
	if err != nil {
		t.Fatalf("%v (peak concurrency %d: the calls are not concurrent)", err, peak.Load())
	}
	if peak.Load() != 3 {
		t.Errorf("peak concurrency %d, want 3", peak.Load())
	}
	if len(f.requests()) != 3 {
		t.Errorf("%d requests, want 3", len(f.requests()))
	}
	defer snap.Close()
	if string(snap.Ramdisk.Bytes()) != "RAMDISK" || !slices.Equal(snap.Kargs, []string{"console=ttyS0", "rd.debug"}) ||
		snap.Ignition.LastModified != testLastMod {
		t.Errorf("snapshot = %+v", snap)
	}
}

func TestFetchSnapshotOnlyNeededCalls(t *testing.T) {
	c, f := newFake(t, 5*time.Second, nil)
	snap, err := FetchSnapshot(t.Context(), c, SnapshotRequest{ImageID: testImageID, ISOType: "full-iso"})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.requests()) != 1 || snap.Ramdisk != nil || snap.Kargs != nil || len(snap.Ignition.Data) == 0 {
		t.Errorf("snapshot %+v after %d requests", snap, len(f.requests()))
	}
}

// stubSource answers after a delay; when honourCtx it gives up on cancel.
type stubSource struct {
	ignErr, ramErr, kargErr error
	ignDelay                time.Duration
	ramdisk                 *Blob // returned by MinimalInitrd
	honourCtx               bool
}

func (s stubSource) wait(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		if s.honourCtx {
			return ctx.Err()
		}
		<-time.After(d)
		return nil
	}
}

func (s stubSource) Ignition(ctx context.Context, _, _ string, _ Credential) (Ignition, error) {
	if err := s.wait(ctx, s.ignDelay); err != nil {
		return Ignition{}, err
	}
	return Ignition{Data: []byte("{}")}, s.ignErr
}

func (s stubSource) MinimalInitrd(context.Context, string, Credential) (*Blob, error) {
	if s.ramdisk != nil {
		return s.ramdisk, s.ramErr
	}
	return nil, s.ramErr
}

func (s stubSource) KernelArgs(context.Context, string, Credential) ([]string, error) {
	return nil, s.kargErr
}

func TestFetchSnapshotErrorOrder(t *testing.T) {
	ign404 := &StatusError{Op: opIgnition, Code: 404}
	ram503 := &StatusError{Op: opRamdisk, Code: 503}
	tests := []struct {
		name string
		src  stubSource
		want error
	}{
		{"ignition wins over earlier kargs failure",
			stubSource{ignErr: ign404, kargErr: ErrBadResponse, ignDelay: 50 * time.Millisecond}, ign404},
		{"ramdisk wins over kargs", stubSource{ramErr: ram503, kargErr: ErrBadResponse}, ram503},
		{"cancellation does not hide the cause",
			stubSource{kargErr: ErrBadResponse, ignDelay: 5 * time.Second, honourCtx: true}, ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FetchSnapshot(t.Context(), tt.src, SnapshotRequest{ImageID: testImageID, Ramdisk: true, Kargs: true})
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFetchSnapshotCallerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := FetchSnapshot(ctx, stubSource{honourCtx: true, ignDelay: time.Second}, SnapshotRequest{ImageID: testImageID})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestFetchSnapshotReleasesRamdiskOnFailure(t *testing.T) {
	budget := NewMemoryBudget(1 << 20)
	if !budget.Acquire(7) {
		t.Fatal("budget refused 7 bytes")
	}
	rd := &Blob{data: []byte("RAMDISK"), size: 7, budget: budget, held: 7}
	ign404 := &StatusError{Op: opIgnition, Code: 404}
	_, err := FetchSnapshot(t.Context(), stubSource{ignErr: ign404, ramdisk: rd}, SnapshotRequest{ImageID: testImageID, Ramdisk: true})
	if !errors.Is(err, ign404) {
		t.Fatalf("err = %v, want %v", err, ign404)
	}
	if used := budget.Used(); used != 0 {
		t.Errorf("budget holds %d bytes after a failed snapshot, want 0", used)
	}
	if _, err := rd.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("ramdisk of a failed snapshot still readable: %v", err)
	}
}
