package customize

import "fmt"

// diskfsCall runs fn, a call into go-diskfs on data that came from a base
// image, and turns a panic in it into an error wrapping ErrBadImage:
// go-diskfs trusts on-disk lengths and indexes with them. Only go-diskfs
// calls are wrapped, so a panic in isoedge's own parsers still crashes
// tests and fuzzers.
func diskfsCall(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: go-diskfs panicked: %v", ErrBadImage, what, r)
		}
	}()
	return fn()
}
