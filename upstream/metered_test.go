package upstream

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

type meteredStub struct{ err error }

func (s meteredStub) Ignition(context.Context, string, string, Credential) (Ignition, error) {
	return Ignition{Data: []byte("{}")}, s.err
}
func (s meteredStub) MinimalInitrd(context.Context, string, Credential) (*Blob, error) {
	return nil, s.err
}
func (s meteredStub) KernelArgs(context.Context, string, Credential) ([]string, error) {
	return nil, s.err
}

func TestMetered(t *testing.T) {
	set := metrics.NewSet()
	ok := Metered(meteredStub{}, set)
	bad := Metered(meteredStub{err: &StatusError{Op: "ignition", Code: 401}}, set)
	down := Metered(meteredStub{err: ErrUnavailable}, set)
	gateway := Metered(meteredStub{err: &GatewayError{Op: "infra-env", Code: 302}}, set)
	ctx := context.Background()
	ok.Ignition(ctx, "id", "", Credential{})
	bad.Ignition(ctx, "id", "", Credential{})
	down.KernelArgs(ctx, "id", Credential{})
	ok.MinimalInitrd(ctx, "id", Credential{})
	gateway.KernelArgs(ctx, "id", Credential{})
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	out := buf.String()
	for _, want := range []string{
		`isoedge_upstream_request_duration_seconds_count{call="ignition"} 2`,
		`isoedge_upstream_request_duration_seconds_count{call="kernel_args"} 2`,
		`isoedge_upstream_request_duration_seconds_bucket{call="minimal_initrd",le="+Inf"} 1`,
		`isoedge_upstream_errors_total{call="ignition",reason="401"} 1`,
		`isoedge_upstream_errors_total{call="kernel_args",reason="unavailable"} 1`,
		`isoedge_upstream_errors_total{call="kernel_args",reason="bad_gateway"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `call="minimal_initrd",reason`) {
		t.Error("a successful call counted as an error")
	}
}
