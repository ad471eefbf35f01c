package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testImageID = "0b5d1a5e-7c3a-4b8e-9f00-123456789abc"
	testSecret  = "TOPSECRET-credential-42"
	testLastMod = "Tue, 01 Sep 2026 10:00:00 GMT"
	testKargs   = `[{"operation":"append","value":"console=ttyS0"},{"operation":"append","value":"rd.debug"}]`
)

// seen is one request as the fake assisted-service received it.
type seen struct {
	Path   string
	Query  url.Values
	Header http.Header
}

// fakeAS records requests and answers like assisted-service unless the
// test's handler takes over.
type fakeAS struct {
	mu   sync.Mutex
	reqs []seen
}

func (f *fakeAS) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func defaultAS(w http.ResponseWriter, r *http.Request) {
	base := "/api/assisted-install/v2/infra-envs/" + testImageID
	switch r.URL.Path {
	case base + "/downloads/files":
		w.Header().Set("Last-Modified", testLastMod)
		fmt.Fprint(w, `{"ignition":{"version":"3.2.0"}}`)
	case base + "/downloads/minimal-initrd":
		fmt.Fprint(w, "RAMDISK")
	case base:
		fmt.Fprintf(w, `{"id":%q,"kernel_arguments":%q}`, testImageID, testKargs)
	default:
		http.NotFound(w, r)
	}
}

// newFake starts a fake assisted-service; handler nil means defaultAS.
func newFake(t *testing.T, timeout time.Duration, handler http.HandlerFunc) (*Client, *fakeAS) {
	t.Helper()
	if handler == nil {
		handler = defaultAS
	}
	f := &fakeAS{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
		f.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	c, err := NewClient(ClientConfig{Scheme: u.Scheme, Host: u.Host, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

// calls runs each Source method, so tests can cover all of them alike.
var calls = []struct {
	name string
	run  func(ctx context.Context, s Source, cred Credential) error
}{
	{"ignition", func(ctx context.Context, s Source, cred Credential) error {
		_, err := s.Ignition(ctx, testImageID, "full-iso", cred)
		return err
	}},
	{"minimal-initrd", func(ctx context.Context, s Source, cred Credential) error {
		_, err := s.MinimalInitrd(ctx, testImageID, cred)
		return err
	}},
	{"infra-env", func(ctx context.Context, s Source, cred Credential) error {
		_, err := s.KernelArgs(ctx, testImageID, cred)
		return err
	}},
}

// checkErrText fails when an error text could leak a credential.
func checkErrText(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, bad := range []string{testSecret, "api_key", "?"} {
		if strings.Contains(err.Error(), bad) {
			t.Errorf("error %q contains %q", err, bad)
		}
	}
}

func TestClientForwardsExactlyOneCredential(t *testing.T) {
	creds := []struct {
		cred                     Credential
		apiKey, token, authorize string
	}{
		{Credential{}, "", "", ""},
		{Credential{CredAPIKey, testSecret}, testSecret, "", ""},
		{Credential{CredImageToken, testSecret}, "", testSecret, ""},
		{Credential{CredAuthorization, "Bearer " + testSecret}, "", "", "Bearer " + testSecret},
	}
	for _, cc := range creds {
		for _, call := range calls {
			t.Run(cc.cred.Kind.String()+"/"+call.name, func(t *testing.T) {
				c, f := newFake(t, 5*time.Second, nil)
				if err := call.run(t.Context(), c, cc.cred); err != nil {
					t.Fatal(err)
				}
				reqs := f.requests()
				if len(reqs) != 1 {
					t.Fatalf("got %d requests, want 1", len(reqs))
				}
				r := reqs[0]
				if got, ok := r.Query["api_key"]; cc.apiKey == "" && ok || cc.apiKey != "" && !slices.Equal(got, []string{cc.apiKey}) {
					t.Errorf("api_key query = %q (present %v), want %q", got, ok, cc.apiKey)
				}
				if got := r.Header.Values("Image-Token"); cc.token == "" && len(got) > 0 || cc.token != "" && !slices.Equal(got, []string{cc.token}) {
					t.Errorf("Image-Token = %q, want %q", got, cc.token)
				}
				if got := r.Header.Values("Authorization"); cc.authorize == "" && len(got) > 0 || cc.authorize != "" && !slices.Equal(got, []string{cc.authorize}) {
					t.Errorf("Authorization = %q, want %q", got, cc.authorize)
				}
				if r.Query.Has("image_token") {
					t.Error("image_token query must never be forwarded")
				}
			})
		}
	}
}

func TestClientIgnitionRequest(t *testing.T) {
	tests := []struct {
		isoType string
		query   string
	}{
		{"full-iso", "discovery_iso_type=full-iso&file_name=discovery.ign"},
		{"minimal-iso", "discovery_iso_type=minimal-iso&file_name=discovery.ign"},
		{"disconnected-iso", "discovery_iso_type=disconnected-iso&file_name=discovery.ign"},
		{"", "file_name=discovery.ign"},
	}
	for _, tt := range tests {
		t.Run("type="+tt.isoType, func(t *testing.T) {
			c, f := newFake(t, 5*time.Second, nil)
			ign, err := c.Ignition(t.Context(), testImageID, tt.isoType, Credential{})
			if err != nil {
				t.Fatal(err)
			}
			if string(ign.Data) != `{"ignition":{"version":"3.2.0"}}` || ign.LastModified != testLastMod {
				t.Errorf("got %+v", ign)
			}
			r := f.requests()[0]
			if want := "/api/assisted-install/v2/infra-envs/" + testImageID + "/downloads/files"; r.Path != want {
				t.Errorf("path = %q, want %q", r.Path, want)
			}
			if got := r.Query.Encode(); got != tt.query {
				t.Errorf("query = %q, want %q", got, tt.query)
			}
		})
	}
}

func TestClientIgnitionWithoutLastModified(t *testing.T) {
	c, _ := newFake(t, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "{}")
	})
	ign, err := c.Ignition(t.Context(), testImageID, "", Credential{})
	if err != nil || ign.LastModified != "" || string(ign.Data) != "{}" {
		t.Fatalf("got %+v, %v", ign, err)
	}
}

func TestClientStatusPassthrough(t *testing.T) {
	for _, code := range []int{401, 403, 404, 500, 503} {
		for _, call := range calls {
			t.Run(fmt.Sprintf("%d/%s", code, call.name), func(t *testing.T) {
				c, _ := newFake(t, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, "nope "+r.URL.RawQuery, code)
				})
				err := call.run(t.Context(), c, Credential{CredAPIKey, testSecret})
				var se *StatusError
				if !errors.As(err, &se) || se.Code != code || se.Op != call.name {
					t.Fatalf("err = %v, want StatusError{%s, %d}", err, call.name, code)
				}
				if want := fmt.Sprintf("upstream: %s: assisted-service returned status %d", call.name, code); err.Error() != want {
					t.Errorf("Error() = %q, want %q", err, want)
				}
				checkErrText(t, err)
			})
		}
	}
}

// Anything but the expected success and the 4xx/5xx that pass through is a
// GatewayError: redirects are never followed, other 2xx are not data.
func TestClientUnexpectedStatus(t *testing.T) {
	redirect := func(code int, location string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if location != "" {
				w.Header().Set("Location", location)
			}
			w.WriteHeader(code)
		}
	}
	status := func(code int) http.HandlerFunc { return redirect(code, "") }
	tests := []struct {
		name   string
		handle http.HandlerFunc
		code   int
		calls  []string // operations that must fail; nil: all
	}{
		{"301 without Location", status(301), 301, nil},
		{"302 same host", redirect(302, "/api/assisted-install/v2/infra-envs/"+testImageID), 302, nil},
		{"307", redirect(307, "/elsewhere"), 307, nil},
		{"308", redirect(308, "/elsewhere"), 308, nil},
		{"304", status(304), 304, nil},
		{"202", status(202), 202, nil},
		{"206", status(206), 206, nil},
		{"204", status(204), 204, []string{"ignition", "infra-env"}},
		{"600", status(600), 600, nil},
	}
	for _, tt := range tests {
		for _, call := range calls {
			if tt.calls != nil && !slices.Contains(tt.calls, call.name) {
				continue
			}
			t.Run(tt.name+"/"+call.name, func(t *testing.T) {
				c, f := newFake(t, 5*time.Second, tt.handle)
				err := call.run(t.Context(), c, Credential{CredImageToken, testSecret})
				var ge *GatewayError
				if !errors.Is(err, ErrBadGateway) || !errors.As(err, &ge) || ge.Code != tt.code || ge.Op != call.name {
					t.Fatalf("err = %v, want GatewayError{%s, %d}", err, call.name, tt.code)
				}
				var se *StatusError
				if errors.As(err, &se) {
					t.Errorf("%v is also a StatusError, which the proxy would pass through", err)
				}
				if want := fmt.Sprintf("unexpected status %d from assisted-service", tt.code); ge.Reason() != want {
					t.Errorf("Reason() = %q, want %q", ge.Reason(), want)
				}
				if n := len(f.requests()); n != 1 {
					t.Errorf("%d requests, want 1 (no redirect followed)", n)
				}
				checkErrText(t, err)
			})
		}
	}
}

func TestClientTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(srv.URL)
	srv.Close()
	c, err := NewClient(ClientConfig{Scheme: "http", Host: u.Host, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			err := call.run(t.Context(), c, Credential{CredAPIKey, testSecret})
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			checkErrText(t, err)
		})
	}
}

func TestClientTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	release := make(chan struct{})
	c, _ := newFake(t, timeout, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		case <-time.After(10 * time.Second):
		}
	})
	defer close(release)
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			start := time.Now()
			err := call.run(t.Context(), c, Credential{CredAPIKey, testSecret})
			// Not held until the handler gives up (10 s); the margin is
			// for a busy machine.
			if elapsed := time.Since(start); elapsed > timeout+5*time.Second {
				t.Errorf("returned after %v, want about %v", elapsed, timeout)
			}
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want ErrUnavailable wrapping DeadlineExceeded", err)
			}
			checkErrText(t, err)
		})
	}
}

func TestClientTimeoutDuringBody(t *testing.T) {
	const timeout = 300 * time.Millisecond
	c, _ := newFake(t, timeout, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	_, err := c.Ignition(t.Context(), testImageID, "", Credential{CredImageToken, testSecret})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	checkErrText(t, err)
}

func TestClientKernelArgs(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
		err  error
	}{
		{"absent", `{"id":"x"}`, nil, nil},
		{"null", `{"kernel_arguments":null}`, nil, nil},
		{"empty string", `{"kernel_arguments":""}`, nil, nil},
		{"empty list", `{"kernel_arguments":"[]"}`, nil, nil},
		{"null list", `{"kernel_arguments":"null"}`, nil, nil},
		{"two appends", fmt.Sprintf(`{"kernel_arguments":%q}`, testKargs), []string{"console=ttyS0", "rd.debug"}, nil},
		{"delete op", `{"kernel_arguments":"[{\"operation\":\"append\",\"value\":\"a\"},{\"operation\":\"delete\",\"value\":\"b\"}]"}`, nil, ErrBadResponse},
		{"missing op", `{"kernel_arguments":"[{\"value\":\"b\"}]"}`, nil, ErrBadResponse},
		{"invalid outer JSON", `{"kernel_arguments":`, nil, ErrBadResponse},
		{"invalid inner JSON", `{"kernel_arguments":"[{"}`, nil, ErrBadResponse},
		{"not a string", `{"kernel_arguments":[{"operation":"append","value":"a"}]}`, nil, ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newFake(t, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, tt.body)
			})
			got, err := c.KernelArgs(t.Context(), testImageID, Credential{CredAPIKey, testSecret})
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("kargs = %#v, want %#v", got, tt.want)
			}
			if p := f.requests()[0].Path; p != "/api/assisted-install/v2/infra-envs/"+testImageID {
				t.Errorf("path = %q", p)
			}
			checkErrText(t, err)
		})
	}
}

func TestClientMinimalInitrd(t *testing.T) {
	tests := []struct {
		name    string
		code    int
		body    string
		want    []byte
		wantNil bool
	}{
		{"204", http.StatusNoContent, "", nil, true},
		{"200 empty", http.StatusOK, "", []byte{}, false},
		{"200 data", http.StatusOK, "RAMDISK", []byte("RAMDISK"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newFake(t, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.code)
				fmt.Fprint(w, tt.body)
			})
			got, err := c.MinimalInitrd(t.Context(), testImageID, Credential{})
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if (got == nil) != tt.wantNil || string(got.Bytes()) != string(tt.want) || got.Len() != int64(len(tt.want)) {
				t.Errorf("got %q (nil %v), want %q (nil %v)", got.Bytes(), got == nil, tt.want, tt.wantNil)
			}
			if !tt.wantNil && got.Bytes() == nil {
				t.Error("an in-memory ramdisk has nil Bytes")
			}
			if p := f.requests()[0].Path; p != "/api/assisted-install/v2/infra-envs/"+testImageID+"/downloads/minimal-initrd" {
				t.Errorf("path = %q", p)
			}
		})
	}
}

func TestClientBodyLimit(t *testing.T) {
	big := strings.Repeat("x", maxIgnitionSize+1)
	tests := []struct {
		name          string
		contentLength bool
	}{
		{"declared", true},
		{"chunked", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// 16 MiB through the race detector on a busy machine: a generous
			// timeout, so only the size limit can fail the call.
			c, _ := newFake(t, 60*time.Second, func(w http.ResponseWriter, r *http.Request) {
				if tt.contentLength {
					w.Header().Set("Content-Length", fmt.Sprint(len(big)))
				}
				w.Write([]byte(big))
			})
			_, err := c.Ignition(t.Context(), testImageID, "", Credential{})
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("err = %v, want ErrBadResponse", err)
			}
		})
	}
}

func TestClientEscapesImageID(t *testing.T) {
	c, f := newFake(t, 5*time.Second, nil)
	_, err := c.KernelArgs(t.Context(), "a/b?c=d", Credential{})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("err = %v, want 404", err)
	}
	r := f.requests()[0]
	if r.Path != "/api/assisted-install/v2/infra-envs/a/b?c=d" || len(r.Query) != 0 {
		t.Errorf("request = %+v, want the ID as one escaped segment", r)
	}
	for _, id := range []string{"", ".", ".."} {
		if _, err := c.KernelArgs(t.Context(), id, Credential{}); !errors.As(err, &se) || se.Code != 404 {
			t.Errorf("id %q: err = %v, want 404 without a request", id, err)
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("credential followed a redirect to another host: %v", r.Header)
	}))
	defer other.Close()
	for _, target := range []string{strings.Replace(other.URL, "127.0.0.1", "localhost", 1), other.URL} {
		c, f := newFake(t, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target+"/x", http.StatusFound)
		})
		_, err := c.Ignition(t.Context(), testImageID, "", Credential{CredImageToken, testSecret})
		var ge *GatewayError
		if !errors.As(err, &ge) || ge.Code != http.StatusFound {
			t.Fatalf("redirect to %s: err = %v, want GatewayError 302", target, err)
		}
		if n := len(f.requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	}
}

func TestClientDefaultTimeout(t *testing.T) {
	c, err := NewClient(ClientConfig{Scheme: "http", Host: "as:8090"})
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != DefaultServiceTimeout {
		t.Errorf("timeout %v, want %v when unset: a call must never wait forever", c.timeout, DefaultServiceTimeout)
	}
}

func TestNewClientErrors(t *testing.T) {
	dir := t.TempDir()
	noPEM := writeFile(t, dir, "nopem.crt", "not a certificate")
	tests := []struct {
		name string
		cfg  ClientConfig
	}{
		{"no host", ClientConfig{Scheme: "http"}},
		{"no scheme", ClientConfig{Host: "as:8090"}},
		{"bad scheme", ClientConfig{Scheme: "ftp", Host: "as:8090"}},
		{"bad host", ClientConfig{Scheme: "http", Host: "a s"}},
		{"missing CA", ClientConfig{Scheme: "https", Host: "as:8090", CAFile: dir + "/missing.crt"}},
		{"CA without cert", ClientConfig{Scheme: "https", Host: "as:8090", CAFile: noPEM}},
		{"budget without spill dir", ClientConfig{Scheme: "http", Host: "as:8090", Memory: NewMemoryBudget(0)}},
		{"spill dir without budget", ClientConfig{Scheme: "http", Host: "as:8090", SpillDir: dir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewClient(tt.cfg); err == nil {
				t.Error("NewClient succeeded")
			}
		})
	}
}

func FuzzKernelArguments(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"kernel_arguments":null}`, `{"kernel_arguments":""}`, `{"kernel_arguments":"[]"}`,
		`{"kernel_arguments":"[{\"operation\":\"append\",\"value\":\"a=b\"},{\"operation\":\"append\",\"value\":\"c\"}]"}`,
		`{"kernel_arguments":"[{\"operation\":\"replace\",\"value\":\"x\"}]"}`,
		`{"kernel_arguments":"not json"}`, `[1,2]`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		kargs, err := parseKernelArguments(doc)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		if kargs != nil && len(kargs) == 0 {
			t.Fatal("empty non-nil kargs: callers treat nil as none")
		}
		// Accepted arguments survive a round trip through the wire format.
		ops := make([]map[string]string, len(kargs))
		for i, k := range kargs {
			ops[i] = map[string]string{"operation": "append", "value": k}
		}
		inner, _ := json.Marshal(ops)
		outer, _ := json.Marshal(map[string]string{"kernel_arguments": string(inner)})
		again, err := parseKernelArguments(outer)
		if err != nil || !slices.Equal(again, kargs) {
			t.Fatalf("round trip of %q: %q, %v", kargs, again, err)
		}
	})
}
