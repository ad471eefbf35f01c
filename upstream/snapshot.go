package upstream

import (
	"context"
	"errors"

	"golang.org/x/sync/errgroup"
)

// Snapshot is the per-InfraEnv data one request needs. The holder closes it.
type Snapshot struct {
	Ignition Ignition
	Ramdisk  *Blob    // nil when not asked for or when there is none
	Kargs    []string // nil when not asked for or when there are none
}

// Close releases the ramdisk (see Blob.Close).
func (s Snapshot) Close() error {
	s.Ignition.Release()
	return s.Ramdisk.Close()
}

// SnapshotRequest says what FetchSnapshot gathers.
type SnapshotRequest struct {
	ImageID string
	// ISOType is passed to Source.Ignition: "full-iso", "minimal-iso",
	// "disconnected-iso", or "" for PXE.
	ISOType string
	Cred    Credential
	Ramdisk bool // also fetch the static-network ramdisk
	Kargs   bool // also fetch the kernel arguments
}

// FetchSnapshot fetches the ignition and, when asked, the ramdisk and the
// kernel arguments from s, concurrently. A failure cancels the other calls
// and releases a ramdisk already fetched. When several calls fail on their
// own, the error of the first in the order ignition, ramdisk, kernel
// arguments is returned; errors that are only the result of that
// cancellation never win over the failure that caused it.
func FetchSnapshot(ctx context.Context, s Source, req SnapshotRequest) (Snapshot, error) {
	var (
		snap                    Snapshot
		ignErr, ramErr, kargErr error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		snap.Ignition, ignErr = s.Ignition(gctx, req.ImageID, req.ISOType, req.Cred)
		return ignErr
	})
	if req.Ramdisk {
		g.Go(func() error {
			snap.Ramdisk, ramErr = s.MinimalInitrd(gctx, req.ImageID, req.Cred)
			return ramErr
		})
	}
	if req.Kargs {
		g.Go(func() error {
			snap.Kargs, kargErr = s.KernelArgs(gctx, req.ImageID, req.Cred)
			return kargErr
		})
	}
	first := g.Wait() // chronologically first failure
	if first == nil {
		return snap, nil
	}
	snap.Close()
	if ctx.Err() == nil {
		for _, err := range []error{ignErr, ramErr, kargErr} {
			if err != nil && !errors.Is(err, context.Canceled) {
				return Snapshot{}, err
			}
		}
	}
	return Snapshot{}, first
}
