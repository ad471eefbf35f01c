package upstream

import (
	"context"
	"errors"
	"strconv"
)

// Ignition is a discovery ignition as served by assisted-service.
type Ignition struct {
	Data []byte
	// LastModified is the raw Last-Modified response header, "" if none.
	LastModified string
	// held is Data's share of ClientConfig.Memory, returned by Release.
	held *hold
}

// Release returns Data's memory to the budget it was counted in (the
// caller drops Data once it is done with it). Calling it again, or on an
// Ignition that was never counted, does nothing.
func (i Ignition) Release() { i.held.release() }

// Source supplies per-InfraEnv data. Client (assisted-service) and LocalDir
// implement it.
type Source interface {
	// Ignition fetches the discovery ignition. isoType is "full-iso",
	// "minimal-iso", "disconnected-iso", or "" for PXE, which sends no
	// discovery_iso_type parameter.
	Ignition(ctx context.Context, imageID, isoType string, cred Credential) (Ignition, error)
	// MinimalInitrd fetches the static-network ramdisk; it returns (nil, nil)
	// when there is none (assisted-service answers 204). The caller closes
	// the Blob.
	MinimalInitrd(ctx context.Context, imageID string, cred Credential) (*Blob, error)
	// KernelArgs returns the InfraEnv's appended kernel arguments, nil when
	// there are none.
	KernelArgs(ctx context.Context, imageID string, cred Credential) ([]string, error)
}

// StatusError is a 4xx or 5xx answer from assisted-service (or its local
// stand-in); the proxy passes Code through to its client.
type StatusError struct {
	Op   string // "ignition", "minimal-initrd" or "infra-env"
	Code int
}

func (e *StatusError) Error() string {
	return "upstream: " + e.Op + ": assisted-service returned status " + strconv.Itoa(e.Code)
}

// GatewayError is an answer from assisted-service that is neither what the
// call expects nor a 4xx/5xx to pass through: a redirect (never followed),
// or a 1xx/2xx other than the expected ones. It wraps ErrBadGateway.
type GatewayError struct {
	Op   string // as in StatusError
	Code int
}

func (e *GatewayError) Error() string {
	return "upstream: " + e.Op + ": " + e.Reason()
}

// Reason is the error text without the package and operation, fit for a
// 502 body: "unexpected status 302 from assisted-service".
func (e *GatewayError) Reason() string {
	return "unexpected status " + strconv.Itoa(e.Code) + " from assisted-service"
}

func (e *GatewayError) Unwrap() error { return ErrBadGateway }

var (
	// ErrBadGateway reports an unexpected status from assisted-service (see
	// GatewayError); the proxy answers 502.
	ErrBadGateway = errors.New("upstream: unexpected status from assisted-service")
	// ErrUnavailable reports a transport failure or timeout talking to
	// assisted-service; the proxy answers 502.
	ErrUnavailable = errors.New("upstream: assisted-service unavailable")
	// ErrBadResponse reports an answer that cannot be used: undecodable JSON,
	// a kernel-argument operation other than append, an oversized body. The
	// proxy answers 500.
	ErrBadResponse = errors.New("upstream: bad response")
	// ErrBusy reports that the memory for answers from assisted-service
	// (UPSTREAM_MEMORY_MAX_BYTES) is taken by other requests; the proxy
	// answers 503 with Retry-After.
	ErrBusy = errors.New("upstream: memory for assisted-service answers is exhausted")
)

// Size limits for bodies read into memory.
const (
	maxIgnitionSize = 16 << 20
	maxRamdiskSize  = 64 << 20
	maxInfraEnvSize = 4 << 20
)

// Operation names used in errors.
const (
	opIgnition = "ignition"
	opRamdisk  = "minimal-initrd"
	opInfraEnv = "infra-env"
)
