package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// FetcherConfig configures a Fetcher. Zero durations and sizes mean the
// defaults below.
type FetcherConfig struct {
	// Headers are set on every request to the image's own host, and on
	// redirects to the same host or a subdomain of it; never beyond
	// (OS_IMAGES_REQUEST_HEADERS).
	Headers map[string]string
	// Query is added to the image URL of the first request, after which the
	// whole query is re-encoded with sorted keys; a redirect to another host
	// loses these keys (OS_IMAGES_REQUEST_QUERY_PARAMS).
	Query map[string]string
	// CAFile is a PEM file appended to the system roots.
	CAFile string
	// InsecureSkipVerify disables certificate checks, with or without
	// CAFile (AIS ignores it when a CA file is set, quirk Z.4).
	InsecureSkipVerify bool
	// ConnectTimeout bounds establishing one TCP connection
	// (OS_IMAGE_CONNECT_TIMEOUT).
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for response headers once a request is
	// sent (OS_IMAGE_HEADER_TIMEOUT).
	HeaderTimeout time.Duration
	// StallTimeout fails a download with ErrStalled when no body byte
	// arrives for this long (OS_IMAGE_STALL_TIMEOUT). Time the destination
	// writer takes is not counted.
	StallTimeout time.Duration
	// MaxBytes bounds the size of every image (OS_IMAGE_MAX_BYTES);
	// FetchRequest.MaxBytes can only lower it.
	MaxBytes int64
	// Transport replaces the constructed transport (tests). ConnectTimeout
	// and HeaderTimeout are then up to that transport.
	Transport http.RoundTripper
}

// Defaults for FetcherConfig's zero values.
const (
	DefaultConnectTimeout       = 30 * time.Second
	DefaultHeaderTimeout        = 60 * time.Second
	DefaultStallTimeout         = 60 * time.Second
	DefaultMaxImageBytes  int64 = 16 << 30
)

// maxRedirects is how many redirects one fetch follows, as Go's client.
const maxRedirects = 10

// Fetcher downloads OS images from http://, https:// and file:// URLs. It is
// safe for concurrent use.
type Fetcher struct {
	hc       *http.Client
	headers  map[string]string
	query    map[string]string
	stall    time.Duration
	maxBytes int64
}

// FetchRequest is one download, or the continuation of one.
type FetchRequest struct {
	URL string
	// Offset is how many leading bytes of the image the caller already has;
	// Fetch writes only what follows. Offset > 0 needs Validator.
	Offset int64
	// Validator is the token an earlier Fetch of the same image reported
	// (OnResponse, FetchResult). It pins the image's version and size: a
	// resume is refused with ErrNoResume unless the source proves it still
	// serves that version. Opaque; ignored when Offset is 0.
	Validator string
	// MaxBytes bounds the image's total size, Offset included: Fetch never
	// lets Offset+N exceed it. 0 or more than FetcherConfig.MaxBytes means
	// the configured bound.
	MaxBytes int64
	// OnResponse, if not nil, is called once the source's answer has been
	// accepted and before the first body byte is written, with the validator
	// to keep for a later resume ("" when the source offers none, so the
	// download cannot be resumed) and the image's total size (-1 when
	// unknown). An error aborts the fetch and is returned wrapped.
	OnResponse func(validator string, total int64) error
	// Progress, if not nil, is called with (Offset + bytes so far, total or
	// -1) at most every 64 MiB and once at the end.
	Progress func(done, total int64)
}

// FetchResult describes what a Fetch did, also when it failed.
type FetchResult struct {
	N         int64  // bytes written to w by this call
	Total     int64  // the image's size, -1 when unknown or not yet known
	Validator string // as passed to OnResponse; "" when none or not yet known
}

var (
	// ErrNoResume reports that a download cannot be continued from the
	// requested offset: no usable validator, the source changed, or it
	// ignored the range. Nothing was written; the caller should discard its
	// partial copy and fetch again from offset 0.
	ErrNoResume = errors.New("upstream: cannot resume the download")
	// ErrTooLarge reports an image larger than the fetch's size bound.
	// Nothing past the bound was written.
	ErrTooLarge = errors.New("upstream: image too large")
	// ErrStalled reports a download that received no data for the stall
	// timeout.
	ErrStalled = errors.New("upstream: download stalled")
)

// progressStep is how many bytes pass between progress reports.
const progressStep = 4 << 20

// NewFetcher returns a Fetcher; it fails when the CA file cannot be read or
// holds no certificate.
func NewFetcher(cfg FetcherConfig) (*Fetcher, error) {
	rt := cfg.Transport
	if rt == nil {
		tlsConf, err := downloadTLSConfig(cfg.CAFile, cfg.InsecureSkipVerify)
		if err != nil {
			return nil, err
		}
		t := newTransport(tlsConf, orDefault(cfg.ConnectTimeout, DefaultConnectTimeout))
		t.ResponseHeaderTimeout = orDefault(cfg.HeaderTimeout, DefaultHeaderTimeout)
		// Identity bodies only: Content-Length then counts the bytes we
		// store, which the size bounds and resume offsets rely on.
		t.DisableCompression = true
		rt = t
	}
	return &Fetcher{
		hc: &http.Client{
			Transport: rt,
			// Fetcher follows redirects itself, so it decides what each hop
			// carries and no Referer is ever sent.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		headers:  maps.Clone(cfg.Headers),
		query:    maps.Clone(cfg.Query),
		stall:    orDefault(cfg.StallTimeout, DefaultStallTimeout),
		maxBytes: orDefault(cfg.MaxBytes, DefaultMaxImageBytes),
	}, nil
}

func orDefault[T time.Duration | int64](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Fetch streams req.URL into w from req.Offset on.
//
// A fresh download (Offset 0) needs a 200 answer. A resume sends
// "Range: bytes=Offset-" with "If-Range: <validator>" and needs a 206 from
// Offset whose validator and total size match the token; anything else that
// shows the source changed or ignored the range (200, 416, another total,
// another ETag, no or a weak validator) is ErrNoResume, returned before
// anything is written. For file:// URLs the validator is the file's size
// and modification time.
//
// Fetch writes at most the declared length (Content-Length, Content-Range)
// and never more than the size bound; a larger image is ErrTooLarge, refused
// up front when its size is declared. A body that ends early is an error
// wrapping io.ErrUnexpectedEOF: the caller keeps what it got and resumes. A
// body without a declared length is accepted (AIS rejects it, quirk Z.3),
// so callers verify what they got.
//
// Error texts show URLs without query, fragment or user info (RedactURL).
func (f *Fetcher) Fetch(ctx context.Context, req FetchRequest, w io.Writer) (FetchResult, error) {
	res := FetchResult{Total: -1}
	safe := RedactURL(req.URL)
	if req.Offset < 0 {
		return res, fmt.Errorf("upstream: fetch %s: negative offset %d", safe, req.Offset)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return res, fmt.Errorf("upstream: fetch %s: invalid URL", safe)
	}
	limit := f.maxBytes
	if req.MaxBytes > 0 && req.MaxBytes < limit {
		limit = req.MaxBytes
	}
	if req.Offset > limit {
		return res, fmt.Errorf("upstream: fetch %s: already have %d bytes, more than the bound of %d: %w", safe, req.Offset, limit, ErrTooLarge)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		err = f.fetchHTTP(ctx, u, req, limit, w, &res)
	case "file":
		err = fetchFile(ctx, u, req, limit, w, &res)
	default:
		err = fmt.Errorf("unsupported URL scheme %q", u.Scheme)
	}
	if err != nil {
		return res, fmt.Errorf("upstream: fetch %s: %w", safe, err)
	}
	return res, nil
}

func (f *Fetcher) fetchHTTP(ctx context.Context, u *url.URL, req FetchRequest, limit int64, w io.Writer, res *FetchResult) error {
	var want validator
	if req.Offset > 0 {
		var err error
		if want, err = resumable(req.Validator, req.Offset, kindETag, kindDate); err != nil {
			return err
		}
	}
	// The stall timer cancels with ErrStalled as the cause, so a body read
	// it interrupts can be told apart from the caller's cancellation.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// Resuming a complete copy asks for its last byte: a 206 for it still
	// proves the version, where asking for nothing would only get a 416.
	from := req.Offset
	if req.Offset > 0 && req.Offset == want.total {
		from--
	}
	extra := http.Header{}
	if req.Offset > 0 {
		extra.Set("Range", fmt.Sprintf("bytes=%d-", from))
		extra.Set("If-Range", want.value)
	}
	resp, err := f.get(ctx, u, extra)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	var got validator
	var bodyLen int64
	if req.Offset == 0 {
		got, bodyLen, err = acceptFresh(resp)
	} else {
		got, bodyLen, err = acceptResume(resp, from, want)
	}
	if err != nil {
		return err
	}
	res.Total, res.Validator = got.total, got.String()
	if got.total > limit {
		return fmt.Errorf("image of %d bytes exceeds the bound of %d: %w", got.total, limit, ErrTooLarge)
	}
	if req.OnResponse != nil {
		if err := req.OnResponse(res.Validator, res.Total); err != nil {
			return err
		}
	}
	body := newStallReader(resp.Body, f.stall, cancel)
	defer body.stop()
	if from < req.Offset {
		// The byte before the offset is already the caller's.
		if _, err := io.CopyN(io.Discard, body, 1); err != nil {
			return stalledOr(ctx, f.stall, err)
		}
		bodyLen--
	}
	err = copyBounded(ctx, w, body, req.Offset, bodyLen, limit, got.total, req.Progress, &res.N)
	return stalledOr(ctx, f.stall, err)
}

// acceptFresh checks the answer to a request without Range and returns the
// validator it offers and the body length (-1 when undeclared).
func acceptFresh(resp *http.Response) (validator, int64, error) {
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		// A part we did not ask for would be stored as if it were whole.
		return validator{}, 0, errors.New("unrequested partial content")
	case resp.StatusCode != http.StatusOK:
		return validator{}, 0, fmt.Errorf("server returned status %d", resp.StatusCode)
	}
	v := responseValidator(resp.Header, resp.ContentLength)
	return v, resp.ContentLength, nil
}

// acceptResume checks the answer to "Range: bytes=from-" with If-Range and
// returns the body length to expect. ErrNoResume means the answer shows the
// source cannot continue the copy the validator describes.
func acceptResume(resp *http.Response, from int64, want validator) (validator, int64, error) {
	switch {
	case resp.StatusCode == http.StatusOK:
		return validator{}, 0, fmt.Errorf("server sent the whole image (changed, or no range support): %w", ErrNoResume)
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return validator{}, 0, fmt.Errorf("server refused the range: %w", ErrNoResume)
	case resp.StatusCode != http.StatusPartialContent:
		return validator{}, 0, fmt.Errorf("server returned status %d", resp.StatusCode)
	}
	start, end, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
	switch {
	case !ok || start != from:
		return validator{}, 0, fmt.Errorf("server answered another range: %w", ErrNoResume)
	case size < 0 || (want.total >= 0 && size != want.total):
		return validator{}, 0, fmt.Errorf("image size unknown or changed: %w", ErrNoResume)
	case !want.matches(resp.Header):
		return validator{}, 0, fmt.Errorf("image changed: %w", ErrNoResume)
	}
	n := end - start + 1
	if resp.ContentLength >= 0 && resp.ContentLength != n {
		return validator{}, 0, fmt.Errorf("Content-Length %d disagrees with Content-Range", resp.ContentLength)
	}
	got := want
	got.total = size
	return got, n, nil
}

// get sends a GET for u and follows up to maxRedirects redirects. Headers
// and query secrets from the config travel only while the hops stay on u's
// host or its subdomains (the rule Go's client applies to Authorization),
// and stop for good at the first hop beyond; extra (Range, If-Range) goes
// to every hop. No Referer is sent, and a hop from https to http is refused.
func (f *Fetcher) get(ctx context.Context, u *url.URL, extra http.Header) (*http.Response, error) {
	first := u
	target := withQuery(u, f.query)
	trusted, secure := true, false
	for hop := 0; ; hop++ {
		secure = secure || target.Scheme == "https"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
		if err != nil {
			return nil, errors.New("cannot build request")
		}
		if trusted {
			for k, v := range f.headers {
				req.Header.Set(k, v)
			}
		}
		for k, v := range extra {
			req.Header[k] = v
		}
		resp, err := f.hc.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error quotes the full URL
			}
			return nil, err
		}
		if !isRedirect(resp.StatusCode) {
			return resp, nil
		}
		loc := resp.Header.Get("Location")
		// Not drained: a redirect body that trickles would hold us here
		// with no timer running. The connection is not reused, that is all.
		resp.Body.Close()
		if loc == "" {
			return nil, fmt.Errorf("redirect %d without Location", resp.StatusCode)
		}
		if hop+1 >= maxRedirects {
			return nil, fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		next, err := target.Parse(loc)
		if err != nil {
			// The Location may hold secrets: do not quote it.
			return nil, fmt.Errorf("redirect %d to an invalid Location", resp.StatusCode)
		}
		switch scheme := strings.ToLower(next.Scheme); {
		case scheme == "http" && secure:
			return nil, fmt.Errorf("refusing redirect from https to http (%s)", RedactURL(next.String()))
		case scheme != "http" && scheme != "https":
			return nil, fmt.Errorf("refusing redirect to scheme %q", next.Scheme)
		}
		if trusted && !sameSite(first, next) {
			trusted = false
		}
		if !trusted {
			stripKeys(next, f.query)
		}
		target = next
	}
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// RedactURL returns raw reduced to scheme://host/path: no query (which may
// carry credentials from FetcherConfig.Query), fragment or user info.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		s, _, _ := strings.Cut(raw, "?")
		s, _, _ = strings.Cut(s, "#")
		if scheme, rest, ok := strings.Cut(s, "://"); ok {
			authority, path, _ := strings.Cut(rest, "/")
			if i := strings.LastIndex(authority, "@"); i >= 0 {
				authority = authority[i+1:]
			}
			return scheme + "://" + authority + "/" + path
		}
		return s
	}
	clean := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	if u.Opaque != "" {
		clean.Opaque = u.Opaque
	}
	return clean.String()
}

// parseContentRange parses "bytes first-last/size" and returns first, last
// and size (-1 when "*").
func parseContentRange(s string) (start, end, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, sz, found := strings.Cut(strings.TrimSpace(rest), "/")
	if !found {
		return 0, 0, 0, false
	}
	first, last, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, 0, false
	}
	if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
		return 0, 0, 0, false
	}
	if sz == "*" {
		return start, end, -1, true
	}
	size, err = strconv.ParseInt(sz, 10, 64)
	if err != nil || size <= end {
		return 0, 0, 0, false
	}
	return start, end, size, true
}
