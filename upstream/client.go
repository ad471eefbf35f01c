package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Scheme, Host string // ASSISTED_SERVICE_SCHEME and ASSISTED_SERVICE_HOST
	// CAFile, when set, is a PEM file whose certificates are the only roots
	// trusted for assisted-service (MinVersion TLS 1.2).
	CAFile string
	// Timeout bounds each call, reading the body included
	// (ASSISTED_SERVICE_TIMEOUT); 0 means DefaultServiceTimeout.
	Timeout time.Duration
	// Memory, when not nil, bounds the ramdisk bytes held in memory across
	// all calls (UPSTREAM_MEMORY_MAX_BYTES). A ramdisk larger than
	// SpillThreshold, or one the budget has no room for, is then spilled to
	// an unlinked file in SpillDir (DATA_TEMP_DIR). Memory and SpillDir go
	// together; without them every ramdisk is held in memory.
	Memory   *MemoryBudget
	SpillDir string
	// SpillThreshold: 0 means DefaultSpillThreshold.
	SpillThreshold int64
	// Transport replaces the constructed transport (tests).
	Transport http.RoundTripper
}

// DefaultServiceTimeout is ClientConfig.Timeout's default.
const DefaultServiceTimeout = 30 * time.Second

// Client calls assisted-service on behalf of a caller, forwarding the
// caller's credential. It implements Source and is safe for concurrent use.
type Client struct {
	base    url.URL // scheme and host only
	hc      *http.Client
	timeout time.Duration
	spool   spool
}

var _ Source = (*Client)(nil)

const infraEnvPath = "/api/assisted-install/v2/infra-envs/"

// NewClient returns a Client for the assisted-service at cfg.Scheme and
// cfg.Host. It fails when the host is empty, the scheme is not http or
// https, the CA file cannot be read or holds no certificate, or only one of
// Memory and SpillDir is set.
func NewClient(cfg ClientConfig) (*Client, error) {
	scheme := strings.ToLower(cfg.Scheme)
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("upstream: assisted-service scheme %q is not http or https", cfg.Scheme)
	}
	if cfg.Host == "" {
		return nil, errors.New("upstream: assisted-service host is not set")
	}
	base := url.URL{Scheme: scheme, Host: cfg.Host}
	if _, err := url.Parse(base.String() + infraEnvPath); err != nil {
		return nil, fmt.Errorf("upstream: invalid assisted-service host %q", cfg.Host)
	}
	if (cfg.Memory == nil) != (cfg.SpillDir == "") {
		return nil, errors.New("upstream: a memory budget needs a spill directory, and a spill directory a budget")
	}
	rt := cfg.Transport
	if rt == nil {
		tlsConf, err := serviceTLSConfig(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		rt = newTransport(tlsConf, DefaultConnectTimeout)
	}
	return &Client{
		base: base,
		hc: &http.Client{
			Transport: rt,
			// Never follow a redirect: the forwarded credential must not
			// travel anywhere else, and assisted-service has no reason to
			// send one. A 3xx is a GatewayError.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout: orDefault(cfg.Timeout, DefaultServiceTimeout),
		spool:   spool{budget: cfg.Memory, dir: cfg.SpillDir, threshold: orDefault(cfg.SpillThreshold, DefaultSpillThreshold)},
	}, nil
}

// Ignition implements Source: GET …/infra-envs/{id}/downloads/files with
// file_name=discovery.ign and, unless isoType is "", discovery_iso_type.
// 200 is the ignition; 4xx and 5xx are a StatusError, anything else a
// GatewayError.
func (c *Client) Ignition(ctx context.Context, imageID, isoType string, cred Credential) (Ignition, error) {
	q := url.Values{"file_name": {"discovery.ign"}}
	if isoType != "" {
		q.Set("discovery_iso_type", isoType)
	}
	var ign Ignition
	err := c.call(ctx, opIgnition, imageID, "/downloads/files", q, cred, []int{http.StatusOK},
		func(ctx context.Context, resp *http.Response) error {
			body, held, err := c.readCounted(ctx, opIgnition, resp, maxIgnitionSize, cred)
			ign = Ignition{Data: body, LastModified: resp.Header.Get("Last-Modified"), held: held}
			return err
		})
	return ign, err
}

// MinimalInitrd implements Source: GET …/infra-envs/{id}/downloads/minimal-initrd.
// 204 yields (nil, nil); 200 yields the body, possibly empty but never nil;
// 4xx and 5xx are a StatusError, anything else a GatewayError.
func (c *Client) MinimalInitrd(ctx context.Context, imageID string, cred Credential) (*Blob, error) {
	var ramdisk *Blob
	err := c.call(ctx, opRamdisk, imageID, "/downloads/minimal-initrd", nil, cred, []int{http.StatusOK, http.StatusNoContent},
		func(ctx context.Context, resp *http.Response) error {
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
			b, err := c.spool.read(resp.Body, resp.ContentLength, maxRamdiskSize)
			var se *sourceError
			switch {
			case errors.As(err, &se):
				return c.unavailable(ctx, opRamdisk, se.err, cred)
			case errors.Is(err, errBodyTooLarge):
				return fmt.Errorf("%w: %s: body exceeds %d bytes", ErrBadResponse, opRamdisk, int64(maxRamdiskSize))
			case err != nil:
				return fmt.Errorf("upstream: %s: %w", opRamdisk, err)
			}
			ramdisk = b
			return nil
		})
	return ramdisk, err
}

// KernelArgs implements Source: GET …/infra-envs/{id} and decode the field
// kernel_arguments, a string holding [{"operation":"append","value":"…"}].
// Every operation must be append. An absent, null, empty or empty-list
// field yields nil; AIS turns "[]" into an empty kargs string that breaks
// s390x (quirk Z.11), isoedge treats it as no kernel arguments. Statuses
// are handled as for Ignition.
func (c *Client) KernelArgs(ctx context.Context, imageID string, cred Credential) ([]string, error) {
	var kargs []string
	err := c.call(ctx, opInfraEnv, imageID, "", nil, cred, []int{http.StatusOK},
		func(ctx context.Context, resp *http.Response) error {
			body, err := c.readAll(ctx, opInfraEnv, resp, maxInfraEnvSize, cred)
			if err != nil {
				return err
			}
			kargs, err = parseKernelArguments(body)
			return err
		})
	return kargs, err
}

type kernelArgument struct {
	Operation string `json:"operation"`
	Value     string `json:"value"`
}

func parseKernelArguments(infraEnv []byte) ([]string, error) {
	var doc struct {
		KernelArguments *string `json:"kernel_arguments"`
	}
	if err := json.Unmarshal(infraEnv, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: decode infra-env: %v", ErrBadResponse, opInfraEnv, err)
	}
	if doc.KernelArguments == nil || strings.TrimSpace(*doc.KernelArguments) == "" {
		return nil, nil
	}
	var list []kernelArgument
	if err := json.Unmarshal([]byte(*doc.KernelArguments), &list); err != nil {
		return nil, fmt.Errorf("%w: %s: decode kernel_arguments: %v", ErrBadResponse, opInfraEnv, err)
	}
	if len(list) == 0 {
		return nil, nil
	}
	kargs := make([]string, 0, len(list))
	for _, a := range list {
		if a.Operation != "append" {
			return nil, fmt.Errorf("%w: %s: kernel argument operation %q is not supported", ErrBadResponse, opInfraEnv, a.Operation)
		}
		kargs = append(kargs, a.Value)
	}
	return kargs, nil
}

// call performs one GET of infraEnvPath + imageID + suffix with the
// credential attached, under the call's timeout. When the status is one of
// ok it hands the response to read, still under the timeout; otherwise 4xx
// and 5xx become a StatusError and anything else a GatewayError. Transport
// failures and timeouts become ErrUnavailable; the error text names the
// operation but never the URL or the credential.
func (c *Client) call(ctx context.Context, op, imageID, suffix string, q url.Values, cred Credential, ok []int,
	read func(ctx context.Context, resp *http.Response) error) error {
	if imageID == "" || imageID == "." || imageID == ".." {
		// Would address a different resource once the path is cleaned.
		return &StatusError{Op: op, Code: http.StatusNotFound}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := c.newRequest(ctx, imageID, suffix, q, cred)
	if err != nil {
		// The parse error would quote the URL, credential included.
		return fmt.Errorf("upstream: %s: cannot build request URL", op)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.unavailable(ctx, op, err, cred)
	}
	defer resp.Body.Close()
	if !slices.Contains(ok, resp.StatusCode) {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode >= 400 && resp.StatusCode <= 599 {
			return &StatusError{Op: op, Code: resp.StatusCode}
		}
		return &GatewayError{Op: op, Code: resp.StatusCode}
	}
	return read(ctx, resp)
}

// readAll reads a body of at most limit bytes into memory.
func (c *Client) readAll(ctx context.Context, op string, resp *http.Response, limit int64, cred Credential) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: %s: body of %d bytes exceeds %d", ErrBadResponse, op, resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, c.unavailable(ctx, op, err, cred)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: %s: body exceeds %d bytes", ErrBadResponse, op, limit)
	}
	return body, nil
}

// readCounted is readAll with the body counted in ClientConfig.Memory, if
// set: reserved as it arrives (at once when its length is declared), and
// refused with ErrBusy when the budget has no room for it, so that the
// answers held across all requests stay bounded.
func (c *Client) readCounted(ctx context.Context, op string, resp *http.Response, limit int64, cred Credential) ([]byte, *hold, error) {
	budget := c.spool.budget
	if budget == nil {
		body, err := c.readAll(ctx, op, resp, limit, cred)
		return body, nil, err
	}
	if resp.ContentLength > limit {
		return nil, nil, fmt.Errorf("%w: %s: body of %d bytes exceeds %d", ErrBadResponse, op, resp.ContentLength, limit)
	}
	h := &hold{budget: budget}
	fail := func(err error) ([]byte, *hold, error) {
		h.release()
		return nil, nil, err
	}
	if n := resp.ContentLength; n >= 0 {
		// One reservation and one allocation of exactly the declared size
		// (a growing buffer would briefly hold it two or three times).
		if !budget.Acquire(n) {
			return fail(fmt.Errorf("%w (%s)", ErrBusy, op))
		}
		h.n = n
		data := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, data); err != nil {
			return fail(c.unavailable(ctx, op, err, cred))
		}
		var extra [1]byte
		if k, _ := io.ReadFull(resp.Body, extra[:]); k > 0 {
			return fail(fmt.Errorf("%w: %s: body longer than its Content-Length", ErrBadResponse, op))
		}
		return data, h, nil
	}
	step := int64(64 << 10)
	var buf bytes.Buffer
	for {
		if !budget.Acquire(step) {
			return fail(fmt.Errorf("%w (%s)", ErrBusy, op))
		}
		h.n += step
		n, err := io.CopyN(&buf, resp.Body, step)
		if int64(buf.Len()) > limit {
			return fail(fmt.Errorf("%w: %s: body exceeds %d bytes", ErrBadResponse, op, limit))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(c.unavailable(ctx, op, err, cred))
		}
		if n < step {
			break
		}
	}
	// Keep counted only what the body holds.
	if extra := h.n - int64(buf.Len()); extra > 0 {
		budget.Release(extra)
		h.n -= extra
	}
	return buf.Bytes(), h, nil
}

func (c *Client) newRequest(ctx context.Context, imageID, suffix string, q url.Values, cred Credential) (*http.Request, error) {
	if cred.Kind == CredAPIKey {
		if q == nil {
			q = url.Values{}
		}
		q.Set("api_key", cred.Value)
	}
	// PathEscape keeps an odd image ID from adding segments or a query.
	target := c.base.String() + infraEnvPath + url.PathEscape(imageID) + suffix
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	switch cred.Kind {
	case CredImageToken:
		req.Header.Set("Image-Token", cred.Value)
	case CredAuthorization:
		req.Header.Set("Authorization", cred.Value)
	}
	return req, nil
}

// unavailable wraps a transport error in ErrUnavailable with a reason that
// holds neither the request URL (url.Error prints it, query included) nor
// the credential. The context error is wrapped too, so callers can tell
// their own cancellation apart.
func (c *Client) unavailable(ctx context.Context, op string, err error, cred Credential) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %s: no answer within %s: %w", ErrUnavailable, op, c.timeout, ctxErr)
		}
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, ctxErr)
	}
	reason := err
	var ue *url.Error
	if errors.As(err, &ue) {
		reason = ue.Err
	}
	return fmt.Errorf("%w: %s: %s", ErrUnavailable, op, scrub(reason.Error(), cred))
}

// scrub removes the credential value from s, in case an error from below
// quoted it.
func scrub(s string, cred Credential) string {
	if cred.Value == "" {
		return s
	}
	s = strings.ReplaceAll(s, cred.Value, "REDACTED")
	if esc := url.QueryEscape(cred.Value); esc != cred.Value {
		s = strings.ReplaceAll(s, esc, "REDACTED")
	}
	return s
}
