package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// stallReader fails a body whose Reads wait too long: when one Read has
// been waiting for timeout, cancel is called with ErrStalled, which aborts
// the request. Time between Reads (the destination writing) does not count.
// A Read only stores when it started; one timer, re-armed at most once per
// timeout, does the checking, so the cost per Read is a clock read.
type stallReader struct {
	r       io.Reader
	timeout time.Duration
	cancel  context.CancelCauseFunc
	base    time.Time
	since   atomic.Int64 // 1 + start of the pending Read after base, in ns; 0 when none

	mu      sync.Mutex // guards timer and stopped
	timer   *time.Timer
	stopped bool
}

func newStallReader(r io.Reader, timeout time.Duration, cancel context.CancelCauseFunc) *stallReader {
	s := &stallReader{r: r, timeout: timeout, cancel: cancel, base: time.Now()}
	s.mu.Lock()
	s.timer = time.AfterFunc(timeout, s.check)
	s.mu.Unlock()
	return s
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.since.Store(int64(time.Since(s.base)) + 1)
	n, err := s.r.Read(p)
	s.since.Store(0)
	return n, err
}

func (s *stallReader) check() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	next := s.timeout
	if start := s.since.Load(); start != 0 {
		waited := time.Since(s.base) - time.Duration(start-1)
		if waited >= s.timeout {
			s.cancel(ErrStalled)
			return
		}
		next = s.timeout - waited
	}
	s.timer.Reset(next)
}

// stop ends the checking.
func (s *stallReader) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	s.timer.Stop()
}

// stalledOr turns an error caused by the stall timer into a clear one.
func stalledOr(ctx context.Context, timeout time.Duration, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), ErrStalled) {
		return fmt.Errorf("no data for %s: %w", timeout, ErrStalled)
	}
	return err
}

// copyBounded copies the body of an image from offset on into w, adding
// the bytes written to *n. bodyLen is the declared body length (-1 when
// undeclared), total the image's size (-1 when unknown) and limit the bound
// on offset + bytes written. It never reads past the declared length nor
// writes past the bound; an undeclared body that goes on past the bound is
// ErrTooLarge, a body or an image that ends early wraps io.ErrUnexpectedEOF.
func copyBounded(ctx context.Context, w io.Writer, r io.Reader, offset, bodyLen, limit, total int64, progress func(done, total int64), n *int64) error {
	room := limit - offset
	if bodyLen > room {
		return fmt.Errorf("%d more bytes would pass the bound of %d: %w", bodyLen, limit, ErrTooLarge)
	}
	max := room
	if bodyLen >= 0 {
		max = bodyLen
	}
	if err := copyWithProgress(ctx, w, io.LimitReader(r, max), offset, total, progress, n); err != nil {
		return err
	}
	switch {
	case bodyLen >= 0 && *n < bodyLen:
		return fmt.Errorf("got %d of %d bytes: %w", *n, bodyLen, io.ErrUnexpectedEOF)
	case bodyLen < 0 && *n == room:
		// The bound is reached: one more byte, never written, tells
		// whether the image is larger.
		var probe [1]byte
		k, err := io.ReadFull(r, probe[:])
		if k > 0 {
			return fmt.Errorf("image exceeds the bound of %d bytes: %w", limit, ErrTooLarge)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	if total >= 0 && offset+*n < total {
		// A 206 for less than the rest of the image.
		return fmt.Errorf("got bytes up to %d of %d: %w", offset+*n, total, io.ErrUnexpectedEOF)
	}
	return nil
}

// copyWithProgress copies r to w in progressStep chunks, adding to *n,
// checking ctx and reporting progress between chunks. io.CopyN keeps w's
// ReadFrom in play, so a file destination can use copy_file_range or
// splice.
func copyWithProgress(ctx context.Context, w io.Writer, r io.Reader, offset, total int64, progress func(done, total int64), n *int64) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := io.CopyN(w, r, progressStep)
		*n += c
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if progress != nil {
			progress(offset+*n, total)
		}
	}
	if progress != nil {
		progress(offset+*n, total)
	}
	return nil
}
