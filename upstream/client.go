package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Scheme, Host string // ASSISTED_SERVICE_SCHEME and ASSISTED_SERVICE_HOST
	// CAFile, when set, is a PEM file whose certificates are the only roots
	// trusted for assisted-service (MinVersion TLS 1.2).
	CAFile string
	// Timeout bounds each call, body included; 0 means no limit beyond the
	// caller's context.
	Timeout time.Duration
	// Transport replaces the constructed transport (tests).
	Transport http.RoundTripper
}

// Client calls assisted-service on behalf of a caller, forwarding the
// caller's credential. It implements Source and is safe for concurrent use.
type Client struct {
	base    url.URL // scheme and host only
	hc      *http.Client
	timeout time.Duration
}

var _ Source = (*Client)(nil)

const infraEnvPath = "/api/assisted-install/v2/infra-envs/"

// NewClient returns a Client for the assisted-service at cfg.Scheme and
// cfg.Host. It fails when the host is empty, the scheme is not http or
// https, or the CA file cannot be read or holds no certificate.
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
			// Follow redirects only within assisted-service: the forwarded
			// credential must not travel to another host.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 10 || req.URL.Host != via[0].URL.Host {
					return http.ErrUseLastResponse
				}
				return nil
			},
		},
		timeout: cfg.Timeout,
	}, nil
}

// Ignition implements Source: GET …/infra-envs/{id}/downloads/files with
// file_name=discovery.ign and, unless isoType is "", discovery_iso_type.
// Any status but 200 is a StatusError.
func (c *Client) Ignition(ctx context.Context, imageID, isoType string, cred Credential) (Ignition, error) {
	q := url.Values{"file_name": {"discovery.ign"}}
	if isoType != "" {
		q.Set("discovery_iso_type", isoType)
	}
	var ign Ignition
	err := c.get(ctx, opIgnition, imageID, "/downloads/files", q, cred, maxIgnitionSize,
		func(resp *http.Response, body []byte) error {
			if resp.StatusCode != http.StatusOK {
				return &StatusError{Op: opIgnition, Code: resp.StatusCode}
			}
			ign = Ignition{Data: body, LastModified: resp.Header.Get("Last-Modified")}
			return nil
		})
	return ign, err
}

// MinimalInitrd implements Source: GET …/infra-envs/{id}/downloads/minimal-initrd.
// 204 yields (nil, nil); any other 2xx yields the body, possibly empty but
// never nil; anything else is a StatusError.
func (c *Client) MinimalInitrd(ctx context.Context, imageID string, cred Credential) ([]byte, error) {
	var ramdisk []byte
	err := c.get(ctx, opRamdisk, imageID, "/downloads/minimal-initrd", nil, cred, maxRamdiskSize,
		func(resp *http.Response, body []byte) error {
			switch {
			case resp.StatusCode == http.StatusNoContent:
				return nil
			case resp.StatusCode < 200 || resp.StatusCode > 299:
				return &StatusError{Op: opRamdisk, Code: resp.StatusCode}
			}
			if body == nil {
				body = []byte{}
			}
			ramdisk = body
			return nil
		})
	return ramdisk, err
}

// KernelArgs implements Source: GET …/infra-envs/{id} and decode the field
// kernel_arguments, a string holding [{"operation":"append","value":"…"}].
// Every operation must be append. An absent, null, empty or empty-list
// field yields nil; AIS turns "[]" into an empty kargs string that breaks
// s390x (quirk Z.11), isoedge treats it as no kernel arguments.
func (c *Client) KernelArgs(ctx context.Context, imageID string, cred Credential) ([]string, error) {
	var kargs []string
	err := c.get(ctx, opInfraEnv, imageID, "", nil, cred, maxInfraEnvSize,
		func(resp *http.Response, body []byte) error {
			if resp.StatusCode != http.StatusOK {
				return &StatusError{Op: opInfraEnv, Code: resp.StatusCode}
			}
			var err error
			kargs, err = parseKernelArguments(body)
			return err
		})
	return kargs, err
}

// Fetch is FetchSnapshot with c as the Source.
func (c *Client) Fetch(ctx context.Context, imageID, isoType string, cred Credential, needRamdisk, needKargs bool) (Snapshot, error) {
	return FetchSnapshot(ctx, c, imageID, isoType, cred, needRamdisk, needKargs)
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

// get performs one GET of infraEnvPath + imageID + suffix with the
// credential attached, reads at most limit bytes of body and hands status
// and body to handle. Transport failures and timeouts become
// ErrUnavailable; the error text names the operation but never the URL or
// the credential.
func (c *Client) get(ctx context.Context, op, imageID, suffix string, q url.Values, cred Credential, limit int64,
	handle func(resp *http.Response, body []byte) error) error {
	if imageID == "" || imageID == "." || imageID == ".." {
		// Would address a different resource once the path is cleaned.
		return &StatusError{Op: op, Code: http.StatusNotFound}
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
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

	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if !ok || resp.StatusCode == http.StatusNoContent {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return handle(resp, nil)
	}
	if resp.ContentLength > limit {
		return fmt.Errorf("%w: %s: body of %d bytes exceeds %d", ErrBadResponse, op, resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return c.unavailable(ctx, op, err, cred)
	}
	if int64(len(body)) > limit {
		return fmt.Errorf("%w: %s: body exceeds %d bytes", ErrBadResponse, op, limit)
	}
	return handle(resp, body)
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
		if errors.Is(ctxErr, context.DeadlineExceeded) && c.timeout > 0 {
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
