package config_test

// These tests hold config's checks against the code that later uses the
// values: whatever Load accepts must work there, so that a bad value fails
// at start and not on every request or template build.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/upstream"
)

func load(env map[string]string) (*config.Config, error) {
	return config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

// baseURLCorpus mixes values config accepts and refuses.
var baseURLCorpus = []string{
	"http://x", "https://images.example.com/api/assisted-images/", "http://[::1]:8080/p", "http://10.0.0.1/a%20b",
	"http://x/a%24b", "http://x/a%22b%27c", "http://x/%2F'", "http://x/a;b", "http://x$/", "http://x'/", `http://x"/`,
	"http://x/${foo}", "not a url", "http://x/a b", "http://x/é", "http://[fe80::1%25eth0]/", "http://x/a'b%2Fc",
	"https://u:p@x/", "http://x/?a=$", "http://x/#$", "HTTP://X/A", "http://x/a\u00a0b", "http://x:8080/a!b*c(d)",
}

// checkBuildAccepts fails t unless the minimal ISO template build accepts
// the rootfs URL built on base: given an empty file for the full ISO, it
// must get past its argument checks and fail on the image (ErrBadImage).
func checkBuildAccepts(t *testing.T, base string) {
	t.Helper()
	rootfs, err := customize.MinimalRootfsURL(base, "x86_64", "419.96.202501010000-0")
	if err != nil {
		t.Fatalf("%q: accepted by config, refused by MinimalRootfsURL: %v", base, err)
	}
	dir := t.TempDir()
	empty, err := os.Create(filepath.Join(dir, "empty.iso"))
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	err = customize.BuildMinimal(empty, filepath.Join(dir, "out.iso"), customize.MinimalOptions{RootfsURL: rootfs, Arch: "x86_64", WorkDir: dir})
	if !errors.Is(err, customize.ErrBadImage) {
		t.Errorf("%q: accepted by config, but the template build of rootfs URL %q fails with %v", base, rootfs, err)
	}
}

// TestBaseURLAcceptedByTemplateBuild: an IMAGE_SERVICE_BASE_URL Load
// accepts gives a rootfs URL the minimal template build accepts, and one
// the build would refuse is refused by Load.
func TestBaseURLAcceptedByTemplateBuild(t *testing.T) {
	accepted := 0
	for _, base := range baseURLCorpus {
		if _, err := load(map[string]string{"IMAGE_SERVICE_BASE_URL": base}); err != nil {
			continue
		}
		accepted++
		checkBuildAccepts(t, base)
	}
	if accepted < 10 {
		t.Errorf("only %d of %d corpus URLs accepted: the corpus no longer tests acceptance", accepted, len(baseURLCorpus))
	}
	// Values the template build refuses, which Load must refuse too.
	for _, base := range []string{"http://x$/", "http://x'/", `http://x"/`, "http://x/a'b%2Fc", "http://x/a$b%2Fc"} {
		rootfs, err := customize.MinimalRootfsURL(base, "x86_64", "1")
		if err != nil {
			t.Fatal(err)
		}
		if err := customize.BuildMinimal(nil, "", customize.MinimalOptions{RootfsURL: rootfs, Arch: "x86_64"}); err == nil || !strings.Contains(err.Error(), "rootfs URL") {
			t.Fatalf("%q: the template build no longer refuses rootfs URL %q (%v): pick another example", base, rootfs, err)
		}
		if _, err := load(map[string]string{"IMAGE_SERVICE_BASE_URL": base}); err == nil {
			t.Errorf("%q: refused by the template build, accepted by Load", base)
		}
	}
}

func FuzzBaseURLAcceptedByTemplateBuild(f *testing.F) {
	for _, s := range baseURLCorpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, base string) {
		if _, err := load(map[string]string{"IMAGE_SERVICE_BASE_URL": base}); err == nil {
			checkBuildAccepts(t, base)
		}
	})
}

// TestAssistedServiceHostAcceptedByClient: every ASSISTED_SERVICE_HOST
// Load accepts makes an upstream client.
func TestAssistedServiceHostAcceptedByClient(t *testing.T) {
	for _, h := range []string{"as", "as:8090", "10.0.0.1:1", "[::1]:8090", "[fe80::1%eth0]", "a_b.example.com.:65535", "a b", "as/x"} {
		cfg, err := load(map[string]string{"ASSISTED_SERVICE_HOST": h})
		if err != nil {
			continue
		}
		if _, err := upstream.NewClient(upstream.ClientConfig{Scheme: cfg.AssistedServiceScheme, Host: cfg.AssistedServiceHost}); err != nil {
			t.Errorf("%q: accepted by config, refused by upstream.NewClient: %v", h, err)
		}
	}
}

func FuzzAssistedServiceHost(f *testing.F) {
	for _, s := range []string{"", "as:8090", "[::1]:80", "[fe80::1%eth0]:1", "1.2.3.4", "a b", "x_y."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		cfg, err := load(map[string]string{"ASSISTED_SERVICE_HOST": h})
		if err != nil || cfg.UsesLocalIgnition() {
			return // refused, or standalone
		}
		if _, err := upstream.NewClient(upstream.ClientConfig{Scheme: "https", Host: cfg.AssistedServiceHost}); err != nil {
			t.Errorf("%q: accepted by config, refused by upstream.NewClient: %v", h, err)
		}
	})
}

// TestRequestHeadersReachMirror downloads an image over a real loopback
// connection with the headers and query parameters Load accepted: they
// arrive as configured and the download succeeds.
func TestRequestHeadersReachMirror(t *testing.T) {
	image := bytes.Repeat([]byte("rhcos"), 1000)
	var mu sync.Mutex
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Clone(context.Background())
		mu.Unlock()
		http.ServeContent(w, r, "rhcos.iso", time.Time{}, bytes.NewReader(image))
	}))
	defer srv.Close()

	cfg, err := load(map[string]string{
		"ASSISTED_SERVICE_HOST":          "as:8090",
		"OS_IMAGES":                      `[{"openshift_version":"4.19","cpu_architecture":"x86_64","url":"` + srv.URL + `/rhcos.iso","version":"419.96.1"}]`,
		"OS_IMAGES_REQUEST_HEADERS":      `{"authorization":"Bearer s3cret","X-Mirror-Token":"a\tb é","User-Agent":"edge/1","X-Empty":""}`,
		"OS_IMAGES_REQUEST_QUERY_PARAMS": `{"token":"t 0&k","a b":""}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	fetcher, _, err := upstream.NewImageSources(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := fetcher.Fetch(t.Context(), upstream.FetchRequest{URL: cfg.OSImages[0].URL}, &out); err != nil {
		t.Fatalf("fetch with accepted headers: %v", err)
	}
	if !bytes.Equal(out.Bytes(), image) {
		t.Errorf("fetched %d bytes, want the %d of the image", out.Len(), len(image))
	}
	mu.Lock()
	defer mu.Unlock()
	if got == nil {
		t.Fatal("the mirror saw no request")
	}
	for name, want := range map[string]string{"Authorization": "Bearer s3cret", "X-Mirror-Token": "a\tb é", "User-Agent": "edge/1"} {
		if v := got.Header.Get(name); v != want {
			t.Errorf("mirror got %s %q, want %q", name, v, want)
		}
	}
	if _, ok := got.Header["X-Empty"]; !ok {
		t.Error("mirror got no X-Empty header")
	}
	if q := got.URL.Query(); q.Get("token") != "t 0&k" || !q.Has("a b") {
		t.Errorf("mirror got query %v", q)
	}
}
