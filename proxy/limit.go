package proxy

import (
	"time"
)

// limiter bounds concurrent image streams. Each stream holds an open file
// and a socket for as long as the download lasts; a request that cannot get
// a slot within wait is refused rather than queued without end.
type limiter struct {
	slots chan struct{}
	wait  time.Duration
}

func newLimiter(n int, wait time.Duration) *limiter {
	return &limiter{slots: make(chan struct{}, n), wait: wait}
}

// acquire takes a slot, waiting up to l.wait. The returned release must be
// called exactly once.
func (l *limiter) acquire() (release func(), ok bool) {
	select {
	case l.slots <- struct{}{}:
	default:
		if l.wait <= 0 {
			return nil, false
		}
		t := time.NewTimer(l.wait)
		defer t.Stop()
		select {
		case l.slots <- struct{}{}:
		case <-t.C:
			return nil, false
		}
	}
	done := false
	return func() {
		if !done {
			done = true
			<-l.slots
		}
	}, true
}

func (l *limiter) inUse() int { return len(l.slots) }
