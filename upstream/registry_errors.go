package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// registryError is what a failed Fetch returns: a message already stripped
// of every secret, and the kinds of failure it wraps. The underlying error
// is not kept: its text came partly from the registry.
type registryError struct {
	msg   string
	kinds []error
}

func (e *registryError) Error() string   { return e.msg }
func (e *registryError) Unwrap() []error { return e.kinds }

// errorKinds are the values a failed Fetch may wrap.
var errorKinds = []error{
	ErrRegistryAuth, ErrImageNotFound, ErrNoPlatform, ErrFileNotFound,
	ErrChecksumMismatch, ErrBadImage, ErrTooLarge, ErrStalled,
	context.Canceled, context.DeadlineExceeded,
}

// failure turns an error of p into the error Fetch returns.
func (p *pull) failure(err error) error {
	var kinds []error
	var reason string
	var te *transport.Error
	if errors.As(err, &te) {
		var kind error
		reason, kind = p.statusReason(te)
		if kind != nil {
			kinds = append(kinds, kind)
		}
	} else {
		reason = p.redact(err.Error())
	}
	for _, k := range errorKinds {
		if errors.Is(err, k) {
			kinds = append(kinds, k)
		}
	}
	// The destination's own errors (a full disk) stay in the chain.
	var we *writeError
	if errors.As(err, &we) {
		kinds = append(kinds, we.err)
	}
	return &registryError{msg: "upstream: registry " + p.ref.String() + ": " + reason, kinds: kinds}
}

// minRedacted is the shortest secret redact looks for: shorter ones match
// ordinary text (hex digests, words) and would garble it.
const minRedacted = 4

// redact removes the auth file's secrets from text that did not come from
// isoedge (go-containerregistry's and the network's errors). They are not
// known to put credentials there; this makes sure. isoedge's own messages
// are built from codes, paths and digests only, and are left as they are.
func (p *pull) redact(text string) string {
	for _, s := range p.secrets {
		if len(s) >= minRedacted {
			text = strings.ReplaceAll(text, s, "[redacted]")
		}
	}
	// Blob storage URLs (a registry's redirect) carry signatures in their
	// query.
	text = urlQuery.ReplaceAllString(text, "$1?[query redacted]")
	return clip1k(text)
}

// urlQuery matches the query of a URL in an error text.
var urlQuery = regexp.MustCompile(`(https?://[^\s"'?]*)\?[^\s"']*`)

// clip1k bounds a foreign error text.
func clip1k(s string) string {
	const max = 1024
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// statusReason explains a registry's error answer from its status code and
// error codes only; the message and detail texts the registry sent are
// left out, since a hostile or confused one could echo anything.
func (p *pull) statusReason(te *transport.Error) (string, error) {
	what := "the registry"
	if te.Request != nil && te.Request.URL != nil {
		switch u := te.Request.URL.Path; {
		case strings.Contains(u, "/manifests/"):
			what = "the manifest request"
		case strings.Contains(u, "/blobs/"):
			what = "the blob request"
		}
		if h := te.Request.URL.Host; h != p.ref.Context().RegistryStr() {
			// A token service, or blob storage the registry redirected to.
			what = "the request to " + clip(h)
		}
	}
	status := fmt.Sprintf("status %d %s", te.StatusCode, http.StatusText(te.StatusCode))
	if codes := errorCodes(te); codes != "" {
		status += ", " + codes
	}
	host := p.ref.Context().RegistryStr()
	switch te.StatusCode {
	case http.StatusUnauthorized:
		switch {
		case p.hasCred:
			return fmt.Sprintf("%s failed: the registry refused the credentials of REGISTRY_AUTH_FILE entry %q (%s)", what, clip(p.cred.key), status), ErrRegistryAuth
		case p.src.authFile != "":
			return fmt.Sprintf("%s failed: the registry wants credentials and REGISTRY_AUTH_FILE has no entry for %s (%s)", what, host, status), ErrRegistryAuth
		default:
			return fmt.Sprintf("%s failed: the registry wants credentials; set REGISTRY_AUTH_FILE (%s)", what, status), ErrRegistryAuth
		}
	case http.StatusForbidden:
		return fmt.Sprintf("%s failed: access denied (%s)", what, status), ErrRegistryAuth
	case http.StatusNotFound:
		return fmt.Sprintf("%s failed: not found (%s)", what, status), ErrImageNotFound
	}
	return fmt.Sprintf("%s failed (%s)", what, status), nil
}

// errorCodes lists the registry's error codes (MANIFEST_UNKNOWN, …), each
// kept only if it looks like one.
func errorCodes(te *transport.Error) string {
	var codes []string
	for _, d := range te.Errors {
		c := string(d.Code)
		if len(codes) < 4 && isErrorCode(c) {
			codes = append(codes, c)
		}
	}
	return strings.Join(codes, " ")
}

func isErrorCode(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return true
}
