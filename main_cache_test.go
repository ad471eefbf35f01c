package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
)

// Edge-cache behaviour over HTTP: per-download snapshots, coalescing, and
// credential isolation, counted at a fake assisted-service.

func countKinds(reqs []recordedReq) map[string]int {
	m := map[string]int{}
	for _, r := range reqs {
		m[r.Kind]++
	}
	return m
}

// TestRangeStormUsesOneSnapshot reads 2000 consecutive 256 KiB ranges of a
// full.iso, as a BMC mounting it as virtual media does: only the first
// request asks assisted-service.
func TestRangeStormUsesOneSnapshot(t *testing.T) {
	const chunk = 256 << 10
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{RootfsSize: 2000*chunk + 1<<20})
	as := newFakeAS(t)
	id := "0a0b0c0d-0000-4000-8000-000000000001"
	as.set(id, &infraEnv{ignition: ignitionFor("storm"), lastModified: "Wed, 25 Nov 2026 10:00:00 GMT", kargs: ptr(`[{"operation":"append","value":"storm=1"}]`)})
	env := baseEnv(dir)
	env["ASSISTED_SERVICE_HOST"] = as.hostPort()
	env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{OpenshiftVersion: "4.19", CPUArchitecture: "x86_64", URL: "file://" + iso, Version: "419.96.1"})
	in := startInstance(t, env)
	in.waitReady(t, 120*time.Second)

	path := "/byid/" + id + "/4.19/x86_64/full.iso"
	_, full := in.get(t, path, nil, http.StatusOK)
	before := countKinds(as.requests(id))
	if before["ignition"] != 1 || before["infra-env"] != 1 {
		t.Fatalf("one full download made %v calls", before)
	}
	var etag string
	for i := 0; i < 2000; i++ {
		off := int64(i) * chunk
		resp, body := in.get(t, path, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", off, off+chunk-1)}, http.StatusPartialContent)
		if i == 0 {
			etag = resp.Header.Get("ETag")
		} else if resp.Header.Get("ETag") != etag {
			t.Fatalf("range %d: ETag changed from %s to %s", i, etag, resp.Header.Get("ETag"))
		}
		if !bytes.Equal(body, full[off:off+chunk]) {
			t.Fatalf("range %d differs from the full download", i)
		}
	}
	after := countKinds(as.requests(id))
	sets := after["ignition"] - before["ignition"]
	if sets > 1 || after["infra-env"]-before["infra-env"] > 1 {
		t.Fatalf("2000 range reads made %d ignition and %d infra-env calls; want at most one set", sets, after["infra-env"]-before["infra-env"])
	}
	t.Logf("2000 range reads: %d set(s) of assisted-service calls", sets)

	// If-Range with another entity tag: the whole image, 200.
	resp, body := in.get(t, path, map[string]string{"Range": "bytes=1000-", "If-Range": `"not-the-etag"`}, http.StatusOK)
	if int64(len(body)) != int64(len(full)) || resp.Header.Get("Content-Range") != "" {
		t.Fatalf("If-Range mismatch: %d bytes, Content-Range %q; want the whole %d", len(body), resp.Header.Get("Content-Range"), len(full))
	}
	// If-Range with the current tag: the range.
	in.get(t, path, map[string]string{"Range": "bytes=1000-1999", "If-Range": etag}, http.StatusPartialContent)
}

// TestConcurrentPXEStampede sends 1000 identical pxe-initrd requests at once
// to a slow assisted-service: identical fetches in flight share one set of
// calls.
//
// "At once" is made true rather than hoped for: assisted-service answers
// nothing until every request has been written to its connection, so a
// busy machine spreading the requests out cannot turn them into many
// flights one after another.
func TestConcurrentPXEStampede(t *testing.T) {
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{})
	as := newFakeAS(t)
	id := "0a0b0c0d-0000-4000-8000-000000000002"
	gate := make(chan struct{})
	as.set(id, &infraEnv{ignition: ignitionFor("pxe"), delay: 50 * time.Millisecond, gate: gate})
	env := baseEnv(dir)
	env["LOG_LEVEL"] = "info"
	env["ASSISTED_SERVICE_HOST"] = as.hostPort()
	env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{OpenshiftVersion: "4.19", CPUArchitecture: "x86_64", URL: "file://" + iso, Version: "419.96.1"})
	in := startInstance(t, env)
	in.waitReady(t, 120*time.Second)

	const n = 1000
	// Each request has its own connection (none is free for reuse before
	// the gate opens) and is written with one Write.
	var written atomic.Int32
	allWritten := make(chan struct{})
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &firstWriteConn{Conn: c, written: func() {
			if written.Add(1) == n {
				close(allWritten)
			}
		}}, nil
	}
	go func() {
		select {
		case <-allWritten:
		case <-time.After(2 * time.Minute): // then the failures below say why
		}
		close(gate)
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true, DialContext: dial}, Timeout: 5 * time.Minute}
	defer client.CloseIdleConnections()
	start := make(chan struct{})
	var wg sync.WaitGroup
	var failures atomic.Int32
	var firstBody atomic.Value
	var mismatch atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Get(in.url + "/images/" + id + "/pxe-initrd?version=4.19&arch=x86_64")
			if err != nil {
				failures.Add(1)
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				failures.Add(1)
				return
			}
			if !firstBody.CompareAndSwap(nil, b) && !bytes.Equal(firstBody.Load().([]byte), b) {
				mismatch.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed (%d written before the gate opened)", f, n, written.Load())
	}
	if m := mismatch.Load(); m != 0 {
		t.Fatalf("%d responses differ", m)
	}
	kinds := countKinds(as.requests(id))
	t.Logf("1000 concurrent pxe-initrd requests: %d ignition, %d minimal-initrd calls", kinds["ignition"], kinds["minimal-initrd"])
	if kinds["ignition"] > 10 || kinds["minimal-initrd"] > 10 {
		t.Fatalf("1000 concurrent requests made %v calls; want at most 10 sets", kinds)
	}
}

// credAS answers ignition per api_key: "ign-<key>" for keys starting with
// "good", 401 otherwise (no key included).
type credAS struct {
	mu      sync.Mutex
	version int
	calls   map[string]int
}

func (c *credAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("api_key")
	c.mu.Lock()
	c.calls[key]++
	v := c.version
	c.mu.Unlock()
	if !strings.HasPrefix(key, "good") {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/downloads/files"):
		fmt.Fprintf(w, `{"ignition":{"version":"3.2.0"},"who":%q,"v":%d}`, key, v)
	case strings.HasSuffix(r.URL.Path, "/downloads/minimal-initrd"):
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Write([]byte(`{}`))
	}
}

func (c *credAS) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[key]
}

// TestSnapshotsNeverCrossCredentials checks that a snapshot serves only the
// credential that fetched it, and that a new download sees new content.
func TestSnapshotsNeverCrossCredentials(t *testing.T) {
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{})
	fake := &credAS{calls: map[string]int{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	env := baseEnv(dir)
	env["ASSISTED_SERVICE_HOST"] = strings.TrimPrefix(srv.URL, "http://")
	env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{OpenshiftVersion: "4.19", CPUArchitecture: "x86_64", URL: "file://" + iso, Version: "419.96.1"})
	in := startInstance(t, env)
	in.waitReady(t, 120*time.Second)
	id := "0a0b0c0d-0000-4000-8000-000000000003"
	initrd := func(key string) string { return "/images/" + id + "/pxe-initrd?version=4.19&api_key=" + key }

	_, goodA := in.get(t, initrd("goodA"), nil, http.StatusOK)
	_, goodB := in.get(t, initrd("goodB"), nil, http.StatusOK)
	if bytes.Equal(goodA, goodB) {
		t.Fatal("two credentials got the same initrd")
	}
	// goodA's snapshot is cached; a rejected credential continuing a
	// download still goes to assisted-service and gets its 401.
	in.get(t, initrd("bad"), map[string]string{"Range": "bytes=100-"}, http.StatusUnauthorized)
	// No credential does not share goodA's snapshot either.
	in.get(t, "/images/"+id+"/pxe-initrd?version=4.19", map[string]string{"Range": "bytes=100-"}, http.StatusUnauthorized)
	// goodA continuing its download: its own snapshot, no new call.
	callsA := fake.count("goodA")
	_, part := in.get(t, initrd("goodA"), map[string]string{"Range": "bytes=100-"}, http.StatusPartialContent)
	if !bytes.Equal(part, goodA[100:]) || fake.count("goodA") != callsA {
		t.Fatalf("continuing goodA: same bytes %v, calls %d -> %d", bytes.Equal(part, goodA[100:]), callsA, fake.count("goodA"))
	}
	_, partB := in.get(t, initrd("goodB"), map[string]string{"Range": "bytes=100-"}, http.StatusPartialContent)
	if !bytes.Equal(partB, goodB[100:]) {
		t.Fatal("goodB's continuation is not goodB's initrd")
	}

	// The InfraEnv changes: a new download (no Range) sees it at once.
	fake.mu.Lock()
	fake.version = 2
	fake.mu.Unlock()
	_, newA := in.get(t, initrd("goodA"), nil, http.StatusOK)
	if bytes.Equal(newA, goodA) {
		t.Fatal("a new download after the change got the old ignition")
	}
	if fake.count("goodA") != callsA+2 {
		t.Fatalf("a new download made %d calls, want one set (ignition and minimal-initrd)", fake.count("goodA")-callsA)
	}
}

// firstWriteConn calls written once, when its first Write has returned.
type firstWriteConn struct {
	net.Conn
	once    sync.Once
	written func()
}

func (c *firstWriteConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil {
		c.once.Do(c.written)
	}
	return n, err
}
