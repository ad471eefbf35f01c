package upstream

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRegistryTransportRefusesPlainHTTP(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	c := &http.Client{Transport: &registryTransport{next: srv.Client().Transport, stall: time.Minute}}
	_, err := c.Get(srv.URL + "/v2/")
	if !errors.Is(err, errPlainHTTP) {
		t.Fatalf("error %v, want the plain http refusal", err)
	}
	if hits.Load() != 0 {
		t.Error("the request reached the server")
	}
}

func TestRegistryTransportStall(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("first bytes"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := &http.Client{Transport: &registryTransport{next: srv.Client().Transport, stall: 100 * time.Millisecond}}
	resp, err := c.Get(srv.URL + "/v2/x/blobs/sha256:0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("read %q then %v, want ErrStalled", b, err)
	}
	if string(b) != "first bytes" {
		t.Errorf("read %q before the stall", b)
	}
}
