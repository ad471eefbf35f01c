package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// FetcherConfig configures a Fetcher.
type FetcherConfig struct {
	// Headers are set on every request (OS_IMAGES_REQUEST_HEADERS).
	Headers map[string]string
	// Query is added to every http(s) URL, after which the whole query is
	// re-encoded with sorted keys (OS_IMAGES_REQUEST_QUERY_PARAMS).
	Query map[string]string
	// CAFile is a PEM file appended to the system roots.
	CAFile string
	// InsecureSkipVerify disables certificate checks, with or without
	// CAFile (AIS ignores it when a CA file is set, quirk Z.4).
	InsecureSkipVerify bool
	// Transport replaces the constructed transport (tests).
	Transport http.RoundTripper
}

// Fetcher downloads OS images from http://, https:// and file:// URLs. It is
// safe for concurrent use.
type Fetcher struct {
	hc      *http.Client
	headers map[string]string
	query   map[string]string
}

// ErrNoResume reports that a resumed download was not answered with the
// requested range; the caller should start again from offset 0.
var ErrNoResume = errors.New("upstream: server does not support resuming")

// progressStep is how many bytes pass between progress reports.
const progressStep = 64 << 20

// NewFetcher returns a Fetcher; it fails when the CA file cannot be read or
// holds no certificate.
func NewFetcher(cfg FetcherConfig) (*Fetcher, error) {
	rt := cfg.Transport
	if rt == nil {
		tlsConf, err := downloadTLSConfig(cfg.CAFile, cfg.InsecureSkipVerify)
		if err != nil {
			return nil, err
		}
		rt = newTransport(tlsConf)
	}
	return &Fetcher{
		hc:      &http.Client{Transport: rt},
		headers: maps.Clone(cfg.Headers),
		query:   maps.Clone(cfg.Query),
	}, nil
}

// Fetch streams rawURL into w and returns the number of bytes written to w.
//
// With offset > 0 it resumes: it asks for bytes from offset on, and the
// server must answer 206 with a Content-Range starting there, else Fetch
// returns ErrNoResume without writing anything; for file:// it seeks. The
// status must be 2xx. When the length is known, a body that ends early is an
// error wrapping io.ErrUnexpectedEOF; a response without Content-Length is
// accepted (AIS rejects it, quirk Z.3), so callers verify what they got.
//
// progress, if not nil, is called with (offset + bytes so far, total size or
// -1) at most every 64 MiB and once at the end. Error texts show the URL
// without query, fragment or user info (see RedactURL).
func (f *Fetcher) Fetch(ctx context.Context, rawURL string, offset int64, w io.Writer, progress func(done, total int64)) (int64, error) {
	if offset < 0 {
		return 0, fmt.Errorf("upstream: fetch %s: negative offset %d", RedactURL(rawURL), offset)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, fmt.Errorf("upstream: fetch %s: invalid URL", RedactURL(rawURL))
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return f.fetchHTTP(ctx, u, offset, w, progress)
	case "file":
		return fetchFile(ctx, u, offset, w, progress)
	default:
		return 0, fmt.Errorf("upstream: fetch %s: unsupported URL scheme %q", RedactURL(rawURL), u.Scheme)
	}
}

func (f *Fetcher) fetchHTTP(ctx context.Context, u *url.URL, offset int64, w io.Writer, progress func(done, total int64)) (int64, error) {
	safe := RedactURL(u.String())
	if len(f.query) > 0 {
		q := u.Query()
		for _, k := range slices.Sorted(maps.Keys(f.query)) {
			q.Add(k, f.query[k])
		}
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("upstream: fetch %s: cannot build request", safe)
	}
	for k, v := range f.headers {
		req.Header.Set(k, v)
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the full URL
		}
		return 0, fmt.Errorf("upstream: fetch %s: %w", safe, err)
	}
	defer resp.Body.Close()

	if offset > 0 && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		return 0, fmt.Errorf("upstream: fetch %s: %w", safe, ErrNoResume)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, fmt.Errorf("upstream: fetch %s: server returned status %d", safe, resp.StatusCode)
	}
	total := resp.ContentLength
	switch {
	case offset > 0:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if resp.StatusCode != http.StatusPartialContent || !ok || start != offset {
			return 0, fmt.Errorf("upstream: fetch %s: %w", safe, ErrNoResume)
		}
		switch {
		case size >= 0:
			total = size
		case resp.ContentLength >= 0:
			total = offset + resp.ContentLength
		default:
			total = -1
		}
	case resp.StatusCode == http.StatusPartialContent:
		// A part we did not ask for would be stored as if it were whole.
		return 0, fmt.Errorf("upstream: fetch %s: unrequested partial content", safe)
	}

	n, err := copyWithProgress(ctx, w, resp.Body, offset, total, progress)
	if err != nil {
		return n, fmt.Errorf("upstream: fetch %s: %w", safe, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("upstream: fetch %s: got %d of %d bytes: %w", safe, n, resp.ContentLength, io.ErrUnexpectedEOF)
	}
	return n, nil
}

func fetchFile(ctx context.Context, u *url.URL, offset int64, w io.Writer, progress func(done, total int64)) (int64, error) {
	safe := RedactURL(u.String())
	if u.Host != "" && u.Host != "localhost" {
		return 0, fmt.Errorf("upstream: fetch %s: file URL with remote host", safe)
	}
	file, err := os.Open(u.Path)
	if err != nil {
		return 0, fmt.Errorf("upstream: fetch: %w", err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return 0, fmt.Errorf("upstream: fetch: %w", err)
	}
	if !info.Mode().IsRegular() {
		return 0, fmt.Errorf("upstream: fetch %s: not a regular file", safe)
	}
	size := info.Size()
	if offset > size {
		return 0, fmt.Errorf("upstream: fetch %s: %w", safe, ErrNoResume)
	}
	if offset > 0 {
		if _, err := file.Seek(offset, io.SeekStart); err != nil {
			return 0, fmt.Errorf("upstream: fetch: %w", err)
		}
	}
	n, err := copyWithProgress(ctx, w, file, offset, size, progress)
	if err != nil {
		return n, fmt.Errorf("upstream: fetch %s: %w", safe, err)
	}
	if n != size-offset {
		return n, fmt.Errorf("upstream: fetch %s: got %d of %d bytes: %w", safe, n, size-offset, io.ErrUnexpectedEOF)
	}
	return n, nil
}

// copyWithProgress copies r to w in progressStep chunks, checking ctx and
// reporting progress between chunks. io.CopyN keeps w's ReadFrom in play,
// so a file destination can use copy_file_range or splice.
func copyWithProgress(ctx context.Context, w io.Writer, r io.Reader, offset, total int64, progress func(done, total int64)) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		c, err := io.CopyN(w, r, progressStep)
		n += c
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		if progress != nil {
			progress(offset+n, total)
		}
	}
	if progress != nil {
		progress(offset+n, total)
	}
	return n, nil
}

// parseContentRange parses "bytes first-last/size" and returns first and
// size (-1 when "*").
func parseContentRange(s string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(strings.TrimSpace(rest), "/")
	if !found {
		return 0, 0, false
	}
	first, last, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	if end, err := strconv.ParseInt(last, 10, 64); err != nil || end < start {
		return 0, 0, false
	}
	if sz == "*" {
		return start, -1, true
	}
	size, err = strconv.ParseInt(sz, 10, 64)
	if err != nil || size <= start {
		return 0, 0, false
	}
	return start, size, true
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
