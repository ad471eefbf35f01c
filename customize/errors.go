package customize

import "errors"

var (
	// ErrTooLarge means a patch does not fit its embed area.
	ErrTooLarge = errors.New("customize: too large for its embed area")
	// ErrNoEmbedArea means the base image lacks an embed area the request needs.
	ErrNoEmbedArea = errors.New("customize: no embed area")
	// ErrNoFile means the base image lacks a file the request needs.
	ErrNoFile = errors.New("customize: file not in image")
	// ErrBadImage means the base image failed an ingest check.
	ErrBadImage = errors.New("customize: invalid base image")
	// ErrBadKarg means a kernel argument cannot be written into a boot
	// config so that it reaches the kernel unchanged (see
	// CheckKernelArgument).
	ErrBadKarg = errors.New("customize: invalid kernel argument")
	// ErrRange means a byte range lies outside a plan.
	ErrRange = errors.New("customize: range outside the plan")
)
