package upstream

import (
	"context"
	"errors"

	"golang.org/x/sync/errgroup"
)

// Snapshot is the per-InfraEnv data one request needs.
type Snapshot struct {
	Ignition Ignition
	Ramdisk  []byte   // nil when not asked for or when there is none
	Kargs    []string // nil when not asked for or when there are none
}

// FetchSnapshot fetches the ignition and, when asked, the ramdisk and the
// kernel arguments from s, concurrently. A failure cancels the other calls.
// When several calls fail on their own, the error of the first in the order
// ignition, ramdisk, kernel arguments is returned; errors that are only the
// result of that cancellation never win over the failure that caused it.
func FetchSnapshot(ctx context.Context, s Source, imageID, isoType string, cred Credential, needRamdisk, needKargs bool) (Snapshot, error) {
	var (
		snap                    Snapshot
		ignErr, ramErr, kargErr error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		snap.Ignition, ignErr = s.Ignition(gctx, imageID, isoType, cred)
		return ignErr
	})
	if needRamdisk {
		g.Go(func() error {
			snap.Ramdisk, ramErr = s.MinimalInitrd(gctx, imageID, cred)
			return ramErr
		})
	}
	if needKargs {
		g.Go(func() error {
			snap.Kargs, kargErr = s.KernelArgs(gctx, imageID, cred)
			return kargErr
		})
	}
	first := g.Wait() // chronologically first failure
	if first == nil {
		return snap, nil
	}
	if ctx.Err() == nil {
		for _, err := range []error{ignErr, ramErr, kargErr} {
			if err != nil && !errors.Is(err, context.Canceled) {
				return Snapshot{}, err
			}
		}
	}
	return Snapshot{}, first
}
