package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// errPlainHTTP refuses a registry request that is not https.
// go-containerregistry falls back to plain http for loopback and RFC 1918
// registries when https fails; a pull secret must never travel in clear,
// nor an image be taken from an unauthenticated peer.
var errPlainHTTP = errors.New("plain http to a registry refused (isoedge pulls over https only)")

// registryTransport is the innermost transport of registry pulls: it
// refuses anything but https, and aborts a response body that delivers
// nothing for stall (time the reader spends elsewhere does not count).
// It applies to every request go-containerregistry makes: ping, token,
// manifests, blobs, and redirects of any of them.
type registryTransport struct {
	next  http.RoundTripper
	stall time.Duration
}

func (t *registryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errPlainHTTP
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = &stallBody{
		stallReader: newStallReader(resp.Body, t.stall, cancel),
		body:        resp.Body, ctx: ctx, cancel: cancel, stall: t.stall,
	}
	return resp, nil
}

// stallBody is a response body under a stall timer.
type stallBody struct {
	*stallReader
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	stall  time.Duration
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.stallReader.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && errors.Is(context.Cause(b.ctx), ErrStalled) {
		err = fmt.Errorf("no data for %s: %w", b.stall, ErrStalled)
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.stop()
	err := b.body.Close()
	b.cancel(nil)
	return err
}
