package upstream

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Metered wraps a Source with call metrics:
//
//	isoedge_upstream_request_duration_seconds{call}   Prometheus histogram
//	isoedge_upstream_errors_total{call,reason}        reason: status code, unavailable, bad_gateway, bad_response, other
func Metered(s Source, set *metrics.Set) Source { return metered{s: s, set: set} }

type metered struct {
	s   Source
	set *metrics.Set
}

var upstreamBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

func (m metered) observe(call string, t0 time.Time, err error) {
	m.set.GetOrCreatePrometheusHistogramExt(`isoedge_upstream_request_duration_seconds{call="`+call+`"}`, upstreamBuckets).UpdateDuration(t0)
	if err == nil {
		return
	}
	reason := "other"
	var se *StatusError
	switch {
	case errors.As(err, &se):
		reason = strconv.Itoa(se.Code)
	case errors.Is(err, ErrUnavailable):
		reason = "unavailable"
	case errors.Is(err, ErrBadGateway):
		reason = "bad_gateway"
	case errors.Is(err, ErrBadResponse):
		reason = "bad_response"
	}
	m.set.GetOrCreateCounter(`isoedge_upstream_errors_total{call="` + call + `",reason="` + reason + `"}`).Inc()
}

func (m metered) Ignition(ctx context.Context, imageID, isoType string, cred Credential) (Ignition, error) {
	t0 := time.Now()
	ign, err := m.s.Ignition(ctx, imageID, isoType, cred)
	m.observe("ignition", t0, err)
	return ign, err
}

func (m metered) MinimalInitrd(ctx context.Context, imageID string, cred Credential) (*Blob, error) {
	t0 := time.Now()
	b, err := m.s.MinimalInitrd(ctx, imageID, cred)
	m.observe("minimal_initrd", t0, err)
	return b, err
}

func (m metered) KernelArgs(ctx context.Context, imageID string, cred Credential) ([]string, error) {
	t0 := time.Now()
	k, err := m.s.KernelArgs(ctx, imageID, cred)
	m.observe("kernel_args", t0, err)
	return k, err
}
