package config

import (
	"errors"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// envMap turns a map into a lookup function; only listed names are set.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

const oneImage = `[{"openshift_version":"4.16","cpu_architecture":"x86_64","url":"https://example.com/a.iso","version":"416.94"}]`

func TestLoadDefaults(t *testing.T) {
	c, err := Load(envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		AssistedServiceScheme:  "http",
		AssistedServiceTimeout: 30 * time.Second,
		IgnitionDir:            filepath.Join("/data", "ignition"),
		DataDir:                "/data",
		DataTempDir:            "/data_temp",
		ListenPort:             "8080",
		MaxConcurrentRequests:  400,
		RequestWait:            10 * time.Second,
		OSImages: []OSImage{{
			OpenshiftVersion: "4.99",
			CPUArchitecture:  "x86_64",
			URL:              SampleURL,
			Version:          "99.0.sample-0",
			Type:             "full-iso",
		}},
		Sample:              true,
		SampleIgnition:      true,                    // IGNITION_DIR chosen by Load
		ImageServiceBaseURL: "http://localhost:8080", // sample mode: this process
		LogLevel:            "info",
		MinRootfsBytes:      104857600,
		MinKernelBytes:      5242880,
		IgnitionCacheTTL:    DefaultIgnitionCacheTTL, DownloadConcurrency: DefaultDownloadConcurrency, Fetch: FetchEager, StreamStallTimeout: DefaultStreamStallTimeout,
	}
	withLimitDefaults(want)
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(empty) =\n%+v\nwant\n%+v", c, want)
	}
	if !c.UsesLocalIgnition() {
		t.Error("UsesLocalIgnition() = false without ASSISTED_SERVICE_HOST")
	}
}

func TestLoadValues(t *testing.T) {
	c, err := Load(envMap(map[string]string{
		"ASSISTED_SERVICE_SCHEME":              "HTTPS",
		"ASSISTED_SERVICE_HOST":                "assisted-service:8090",
		"HTTPS_CA_FILE":                        "/ca-old.crt",
		"ASSISTED_SERVICE_TIMEOUT":             "1m",
		"DATA_DIR":                             "/d",
		"DATA_TEMP_DIR":                        "/t",
		"LISTEN_PORT":                          "8443",
		"HTTP_LISTEN_PORT":                     "8081",
		"HTTPS_KEY_FILE":                       "/k",
		"HTTPS_CERT_FILE":                      "/c",
		"MAX_CONCURRENT_REQUESTS":              "0x10",
		"MAX_CONCURRENT_REQUESTS_WAIT":         "0s",
		"RHCOS_VERSIONS":                       oneImage,
		"INSECURE_SKIP_VERIFY":                 "true",
		"OS_IMAGE_DOWNLOAD_TRUSTED_CA_FILE":    "/os-ca.crt",
		"OS_IMAGES_REQUEST_HEADERS":            `{"Authorization":"Bearer s3cret"}`,
		"OS_IMAGES_REQUEST_QUERY_PARAMS":       `{"token":"t0ken","b":"x"}`,
		"IMAGE_SERVICE_BASE_URL":               "https://images.example.com/api/assisted-images",
		"LOGLEVEL":                             "WARNING",
		"OS_IMAGE_MIN_ROOTFS_BYTES":            "0",
		"OS_IMAGE_MIN_KERNEL_BYTES":            "1_000",
		"ASSISTED_SERVICE_API_TRUSTED_CA_FILE": "",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		AssistedServiceScheme:  "https",
		AssistedServiceHost:    "assisted-service:8090",
		AssistedServiceCAFile:  "/ca-old.crt",
		AssistedServiceTimeout: time.Minute,
		DataDir:                "/d",
		DataTempDir:            "/t",
		ListenPort:             "8443",
		HTTPListenPort:         "8081",
		HTTPSKeyFile:           "/k",
		HTTPSCertFile:          "/c",
		MaxConcurrentRequests:  16,
		RequestWait:            0,
		OSImages: []OSImage{{
			OpenshiftVersion: "4.16",
			CPUArchitecture:  "x86_64",
			URL:              "https://example.com/a.iso",
			Version:          "416.94",
			Type:             "full-iso",
		}},
		InsecureSkipVerify:         true,
		OSImageCAFile:              "/os-ca.crt",
		OSImagesRequestHeaders:     map[string]string{"Authorization": "Bearer s3cret"},
		OSImagesRequestQueryParams: map[string]string{"token": "t0ken", "b": "x"},
		ImageServiceBaseURL:        "https://images.example.com/api/assisted-images",
		LogLevel:                   "warn",
		MinRootfsBytes:             0,
		MinKernelBytes:             1000,
		IgnitionCacheTTL:           DefaultIgnitionCacheTTL, DownloadConcurrency: DefaultDownloadConcurrency, Fetch: FetchEager, StreamStallTimeout: DefaultStreamStallTimeout,
	}
	withLimitDefaults(want)
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load =\n%+v\nwant\n%+v", c, want)
	}
	if c.UsesLocalIgnition() {
		t.Error("UsesLocalIgnition() = true with ASSISTED_SERVICE_HOST set")
	}

	r := c.Redacted()
	all := strings.Join(mapValues(r), "\n")
	for _, secret := range []string{"s3cret", "t0ken", "example.com/a.iso"} {
		if strings.Contains(all, secret) {
			t.Errorf("Redacted() leaks %q: %v", secret, r)
		}
	}
	if got := r["OS_IMAGES_REQUEST_HEADERS"]; got != "Authorization" {
		t.Errorf("Redacted headers = %q, want the key only", got)
	}
	if got := r["OS_IMAGES_REQUEST_QUERY_PARAMS"]; got != "b,token" {
		t.Errorf("Redacted query params = %q, want sorted keys only", got)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestLoadErrors sets one bad variable at a time on top of a valid base and
// checks that the error names it.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, value string
		wantVar     string // must appear in the error; defaults to name
		wantMsg     string
	}{
		{"ASSISTED_SERVICE_SCHEME", "ftp", "", `must be http or https, got "ftp"`},
		{"ASSISTED_SERVICE_TIMEOUT", "30", "", `invalid duration "30"`},
		{"ASSISTED_SERVICE_TIMEOUT", "", "", `invalid duration ""`},
		{"ASSISTED_SERVICE_TIMEOUT", "0s", "", "must be > 0"},
		{"ASSISTED_SERVICE_TIMEOUT", "-1s", "", "must be > 0"},
		{"MAX_CONCURRENT_REQUESTS", "x", "", `invalid integer "x"`},
		{"MAX_CONCURRENT_REQUESTS", "", "", `invalid integer ""`},
		{"MAX_CONCURRENT_REQUESTS", "0", "", "must be >= 1"},
		{"MAX_CONCURRENT_REQUESTS", "99999999999999999999", "", "invalid integer"},
		{"MAX_CONCURRENT_REQUESTS_WAIT", "soon", "", `invalid duration "soon"`},
		{"MAX_CONCURRENT_REQUESTS_WAIT", "-1s", "", "must not be negative"},
		{"MAX_CONCURRENT_REQUESTS_WAIT", "", "", `invalid duration ""`},
		{"INSECURE_SKIP_VERIFY", "yes", "", `invalid boolean "yes"`},
		{"INSECURE_SKIP_VERIFY", "", "", `invalid boolean ""`},
		{"OS_IMAGES_REQUEST_HEADERS", `{"a":`, "", "invalid JSON"},
		{"OS_IMAGES_REQUEST_HEADERS", `{"a":1}`, "", "string values"},
		{"OS_IMAGES_REQUEST_QUERY_PARAMS", `["a"]`, "", "string values"},
		{"IMAGE_SERVICE_BASE_URL", "http://a b\x7f/", "", "invalid URL"},
		{"LOG_LEVEL", "verbose", "", `invalid log level "verbose"`},
		{"LOGLEVEL", "trace", "", `invalid log level "trace"`},
		{"OS_IMAGE_MIN_ROOTFS_BYTES", "1M", "", `invalid integer "1M"`},
		{"OS_IMAGE_MIN_ROOTFS_BYTES", "-1", "", "must be >= 0"},
		{"OS_IMAGE_MIN_KERNEL_BYTES", "", "", `invalid integer ""`},
		{"OS_IMAGE_MIN_KERNEL_BYTES", "-5", "", "must be >= 0"},
		{"OS_IMAGES", "{", "", "invalid JSON"},
		{"RHCOS_VERSIONS", "[]", "", "must not be empty"},
		{"HTTPS_KEY_FILE", "/k", "HTTPS_KEY_FILE and HTTPS_CERT_FILE", "set both or neither"},
		{"HTTPS_CERT_FILE", "/c", "HTTPS_KEY_FILE and HTTPS_CERT_FILE", "set both or neither"},
		{"CLUSTER-IMAGE_LISTEN_PORT", "", "", ""}, // valid: empty string gets the default
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			env := map[string]string{"ASSISTED_SERVICE_HOST": "as:8090", tt.name: tt.value}
			_, err := Load(envMap(env))
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			wantVar := tt.wantVar
			if wantVar == "" {
				wantVar = tt.name
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: "+wantVar+": ") || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q, want prefix %q and %q", msg, "config: "+wantVar+": ", tt.wantMsg)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Var != wantVar {
				t.Errorf("error %#v is not an *Error with Var %q", err, wantVar)
			}
			for _, secret := range []string{"s3cret"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error leaks %q", secret)
				}
			}
		})
	}
}

func TestHeaderErrorDoesNotLeak(t *testing.T) {
	for _, v := range []string{`{"Authorization":"Bearer s3cret"`, `{"Authorization":["s3cret"]}`} {
		_, err := Load(envMap(map[string]string{"OS_IMAGES_REQUEST_HEADERS": v}))
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Load(%s) error = %v; want an error without the value", v, err)
		}
	}
}

func TestPrefixPrecedence(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // ListenPort
	}{
		{"plain", map[string]string{"LISTEN_PORT": "1"}, "1"},
		{"prefixed", map[string]string{"CLUSTER-IMAGE_LISTEN_PORT": "2"}, "2"},
		{"prefixed wins", map[string]string{"CLUSTER-IMAGE_LISTEN_PORT": "2", "LISTEN_PORT": "1"}, "2"},
		// Set-but-empty prefixed variable still hides the plain one (envconfig),
		// and then the default applies.
		{"empty prefixed hides plain", map[string]string{"CLUSTER-IMAGE_LISTEN_PORT": "", "LISTEN_PORT": "1"}, "8080"},
		{"empty plain", map[string]string{"LISTEN_PORT": ""}, "8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(envMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.ListenPort != tt.want {
				t.Errorf("ListenPort = %q, want %q", c.ListenPort, tt.want)
			}
		})
	}

	// A set-but-empty prefixed integer is an error even if the plain one is
	// valid, and the error names the prefixed variable.
	_, err := Load(envMap(map[string]string{
		"CLUSTER-IMAGE_MAX_CONCURRENT_REQUESTS": "",
		"MAX_CONCURRENT_REQUESTS":               "5",
	}))
	if err == nil || !strings.HasPrefix(err.Error(), "config: CLUSTER-IMAGE_MAX_CONCURRENT_REQUESTS: ") {
		t.Errorf("error = %v, want one naming CLUSTER-IMAGE_MAX_CONCURRENT_REQUESTS", err)
	}
	c, err := Load(envMap(map[string]string{
		"CLUSTER-IMAGE_MAX_CONCURRENT_REQUESTS": "7",
		"MAX_CONCURRENT_REQUESTS":               "x",
	}))
	if err != nil || c.MaxConcurrentRequests != 7 {
		t.Errorf("Load = %v, %v; want MaxConcurrentRequests 7 from the prefixed variable", c, err)
	}
}

func TestImageListSource(t *testing.T) {
	const other = `[{"openshift_version":"4.17","cpu_architecture":"arm64","url":"https://example.com/b.iso","version":"v"}]`
	tests := []struct {
		name       string
		env        map[string]string
		wantVer    string
		wantSample bool
		wantErr    string
	}{
		{"OS_IMAGES wins", map[string]string{"OS_IMAGES": oneImage, "RHCOS_VERSIONS": other}, "4.16", false, ""},
		{"RHCOS_VERSIONS", map[string]string{"RHCOS_VERSIONS": other}, "4.17", false, ""},
		{"empty OS_IMAGES falls back", map[string]string{"OS_IMAGES": "", "RHCOS_VERSIONS": other}, "4.17", false, ""},
		{"both empty is sample", map[string]string{"OS_IMAGES": "", "RHCOS_VERSIONS": ""}, "4.99", true, ""},
		{"prefixed OS_IMAGES", map[string]string{"CLUSTER-IMAGE_OS_IMAGES": other, "OS_IMAGES": oneImage}, "4.17", false, ""},
		{"OS_IMAGES error named", map[string]string{"OS_IMAGES": "[]", "RHCOS_VERSIONS": other}, "", false, "config: OS_IMAGES: "},
		{"RHCOS_VERSIONS error named", map[string]string{"RHCOS_VERSIONS": `[{}]`}, "", false, "config: RHCOS_VERSIONS: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["ASSISTED_SERVICE_HOST"] = "as"
			c, err := Load(envMap(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.OSImages[0].OpenshiftVersion != tt.wantVer || c.Sample != tt.wantSample {
				t.Errorf("got version %q sample %v, want %q %v", c.OSImages[0].OpenshiftVersion, c.Sample, tt.wantVer, tt.wantSample)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "info"},
		{map[string]string{"LOGLEVEL": "debug"}, "debug"},
		{map[string]string{"LOG_LEVEL": "Error"}, "error"},
		{map[string]string{"LOG_LEVEL": "warning"}, "warn"},
		{map[string]string{"LOG_LEVEL": "panic", "LOGLEVEL": "debug"}, "panic"},
		{map[string]string{"LOG_LEVEL": "", "LOGLEVEL": "fatal"}, "fatal"},
		{map[string]string{"LOG_LEVEL": "", "LOGLEVEL": ""}, "info"},
		{map[string]string{"CLUSTER-IMAGE_LOGLEVEL": "warn", "LOGLEVEL": "x"}, "warn"},
	}
	for _, tt := range tests {
		c, err := Load(envMap(tt.env))
		if err != nil {
			t.Errorf("Load(%v): %v", tt.env, err)
			continue
		}
		if c.LogLevel != tt.want {
			t.Errorf("Load(%v).LogLevel = %q, want %q", tt.env, c.LogLevel, tt.want)
		}
	}
}

func TestAllowedDomains(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" ", nil},
		{",,", nil},
		{"https://a.example.com", []string{"https://a.example.com"}},
		{" https://a.example.com , https://b.example.com,", []string{"https://a.example.com", "https://b.example.com"}},
		{"http://a .example.com,*", []string{"http://a.example.com", "*"}},
	}
	for _, tt := range tests {
		c, err := Load(envMap(map[string]string{"ALLOWED_DOMAINS": tt.in}))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.AllowedDomains, tt.want) {
			t.Errorf("ALLOWED_DOMAINS=%q: got %q, want %q", tt.in, c.AllowedDomains, tt.want)
		}
	}
}

func TestIgnitionSource(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantDir string
		wantErr error
	}{
		{"sample default", map[string]string{"DATA_DIR": "/srv"}, "/srv/ignition", nil},
		{"sample explicit", map[string]string{"IGNITION_DIR": "/ign"}, "/ign", nil},
		{"images without host", map[string]string{"OS_IMAGES": oneImage}, "", ErrNoAssistedService},
		{"images with ignition dir", map[string]string{"OS_IMAGES": oneImage, "IGNITION_DIR": "/ign"}, "/ign", nil},
		{"images with host", map[string]string{"OS_IMAGES": oneImage, "ASSISTED_SERVICE_HOST": "as"}, "", nil},
		{"empty host", map[string]string{"OS_IMAGES": oneImage, "ASSISTED_SERVICE_HOST": ""}, "", ErrNoAssistedService},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(envMap(tt.env))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if want := "config: ASSISTED_SERVICE_HOST is not set (set it, or IGNITION_DIR for a standalone site)"; err.Error() != want {
					t.Errorf("error = %q, want %q", err, want)
				}
				return
			}
			if c.IgnitionDir != tt.wantDir {
				t.Errorf("IgnitionDir = %q, want %q", c.IgnitionDir, tt.wantDir)
			}
		})
	}
}

func TestCAFileFallback(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, ""},
		{map[string]string{"HTTPS_CA_FILE": "/old"}, "/old"},
		{map[string]string{"ASSISTED_SERVICE_API_TRUSTED_CA_FILE": "/new", "HTTPS_CA_FILE": "/old"}, "/new"},
	}
	for _, tt := range tests {
		c, err := Load(envMap(tt.env))
		if err != nil {
			t.Fatal(err)
		}
		if c.AssistedServiceCAFile != tt.want {
			t.Errorf("Load(%v).AssistedServiceCAFile = %q, want %q", tt.env, c.AssistedServiceCAFile, tt.want)
		}
	}
}

func TestParseOSImages(t *testing.T) {
	const digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name    string
		in      string
		want    []OSImage
		wantErr string
	}{
		{
			name: "minimal",
			in:   oneImage,
			want: []OSImage{{OpenshiftVersion: "4.16", CPUArchitecture: "x86_64", URL: "https://example.com/a.iso", Version: "416.94", Type: "full-iso"}},
		},
		{
			name: "empty type, extra keys, all fields",
			in: `[{"openshift_version":"4.15","cpu_architecture":"s390x","url":"file:///srv/a.iso","version":"415.1","type":"",` +
				`"extra":"ignored"},{"openshift_version":"4.16","cpu_architecture":"arm64","url":"http://u/x.iso","version":"v",` +
				`"type":"disconnected-iso","sha256":"` + strings.ToUpper(digest) + `"}]`,
			want: []OSImage{
				{OpenshiftVersion: "4.15", CPUArchitecture: "s390x", URL: "file:///srv/a.iso", Version: "415.1", Type: "full-iso"},
				{OpenshiftVersion: "4.16", CPUArchitecture: "arm64", URL: "http://u/x.iso", Version: "v", Type: "disconnected-iso", SHA256: digest},
			},
		},
		{name: "empty array", in: `[]`, wantErr: "must not be empty"},
		{name: "null", in: `null`, wantErr: "must not be empty"},
		{name: "empty string", in: ``, wantErr: "invalid JSON"},
		{name: "object", in: `{"url":"u"}`, wantErr: "invalid JSON"},
		{name: "trailing garbage", in: oneImage + `x`, wantErr: "invalid JSON"},
		{name: "array element not object", in: `["x"]`, wantErr: "invalid JSON"},
		{name: "null element", in: `[null]`, wantErr: "missing openshift_version key"},
		{name: "missing openshift_version", in: `[{"cpu_architecture":"x","url":"u","version":"v"}]`, wantErr: "invalid version entry 0: missing openshift_version key"},
		{name: "missing cpu_architecture", in: `[{"openshift_version":"4","url":"u","version":"v"}]`, wantErr: "missing cpu_architecture key"},
		{name: "missing url", in: `[{"openshift_version":"4","cpu_architecture":"x","version":"v"}]`, wantErr: "missing url key"},
		{name: "missing version in second", in: `[` + oneImage[1:len(oneImage)-1] + `,{"openshift_version":"4","cpu_architecture":"x","url":"u"}]`, wantErr: "invalid version entry 1: missing version key"},
		{name: "number value", in: `[{"openshift_version":4.16,"cpu_architecture":"x","url":"u","version":"v"}]`, wantErr: `"openshift_version" key: not a string`},
		{name: "null value", in: `[{"openshift_version":"4","cpu_architecture":null,"url":"u","version":"v"}]`, wantErr: `"cpu_architecture" key: not a string`},
		{name: "non-string ignored key", in: `[{"openshift_version":"4","cpu_architecture":"x","url":"u","version":"v","extra":true}]`, wantErr: `"extra" key: not a string`},
		{name: "object value", in: `[{"openshift_version":"4","cpu_architecture":"x","url":{},"version":"v"}]`, wantErr: `"url" key: not a string`},
		{name: "invalid type", in: `[{"openshift_version":"4","cpu_architecture":"x","url":"u","version":"v","type":"minimal-iso"}]`, wantErr: "invalid image type: minimal-iso"},
		{name: "type case matters", in: `[{"openshift_version":"4","cpu_architecture":"x","url":"u","version":"v","type":"Full-ISO"}]`, wantErr: "invalid image type: Full-ISO"},
		{name: "sha256 short", in: `[{"openshift_version":"4","cpu_architecture":"x","url":"u","version":"v","sha256":"abcd"}]`, wantErr: "invalid sha256"},
		{name: "sha256 long", in: `[{"openshift_version":"4","cpu_architecture":"x","url":"u","version":"v","sha256":"` + digest + `00"}]`, wantErr: "invalid sha256"},
		{name: "sha256 not hex", in: `[{"openshift_version":"4","cpu_architecture":"x","url":"u","version":"v","sha256":"` + strings.Repeat("g", 64) + `"}]`, wantErr: "invalid sha256"},
		{name: "sha256 prefixed", in: `[{"openshift_version":"4","cpu_architecture":"x","url":"u","version":"v","sha256":"sha256:` + digest + `"}]`, wantErr: "invalid sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOSImages(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("got %v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSampleImagesNotShared(t *testing.T) {
	a, _ := Load(envMap(nil))
	a.OSImages[0].URL = "changed"
	b, _ := Load(envMap(nil))
	if b.OSImages[0].URL != SampleURL {
		t.Error("sample list is shared between Load calls")
	}
}

func FuzzParseOSImages(f *testing.F) {
	for _, s := range []string{
		oneImage,
		`[]`, `null`, `[null]`, `[{}]`, `{"a":"b"}`,
		`[{"openshift_version":"4","cpu_architecture":"x","url":"u","version":"v","type":"disconnected-iso","sha256":"` + strings.Repeat("Ab", 32) + `"}]`,
		`[{"openshift_version":"4","cpu_architecture":"x","url":"u","version":"v","type":""}]`,
		`[{"openshift_version":"4","cpu_architecture":1,"url":"u","version":"v"}]`,
		`[{"openshift_version":"\u00e9","cpu_architecture":"x","url":"u","version":"v","x":"\ud800"}]`,
		`[{"openshift_version":"4","cpu_architecture":"arm64","url":"docker://quay.io/a/b@sha256:` + strings.Repeat("ab", 32) + `","version":"v"}]`,
		`[{"openshift_version":"4","cpu_architecture":"x86_64","url":"docker://127.0.0.1:5000/a:t","version":"v","path":"/coreos/x.iso"}]`,
		`[{"openshift_version":"4.19","cpu_architecture":"aarch64","url":"file:///srv/a.iso","version":"419.1"},` +
			`{"openshift_version":"4.20","cpu_architecture":"aarch64","url":"file:///srv/a.iso","version":"419.1"},` +
			`{"openshift_version":"4.20","cpu_architecture":"s390x","url":"https://m:8/x?t=1","version":"420.1","type":"disconnected-iso"}]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		images, err := ParseOSImages(s)
		if err != nil {
			if images != nil {
				t.Fatalf("non-nil list with error %v", err)
			}
			return
		}
		if len(images) == 0 {
			t.Fatal("accepted an empty list")
		}
		for i, im := range images {
			if im.Type != TypeFullISO && im.Type != TypeDisconnectedISO {
				t.Fatalf("entry %d: type %q", i, im.Type)
			}
			if im.SHA256 != "" && (len(im.SHA256) != 64 || strings.ToLower(im.SHA256) != im.SHA256) {
				t.Fatalf("entry %d: sha256 %q", i, im.SHA256)
			}
			if docker := IsDockerURL(im.URL); docker != strings.HasPrefix(im.Path, "/") || (!docker && (im.Path != "" || im.MovableTag)) {
				t.Fatalf("entry %d: url %q with path %q, movable %v", i, im.URL, im.Path, im.MovableTag)
			}
			if err := checkArch(im.CPUArchitecture); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
			for _, v := range []string{im.Version, im.OpenshiftVersion} {
				if v == "" || len(v) > maxVersion || strings.ContainsAny(v, "/\\ \t\r\n\x00") || strings.Contains(v, "..") {
					t.Fatalf("entry %d: version %q", i, v)
				}
			}
			if u, err := url.Parse(im.URL); !IsDockerURL(im.URL) && (err != nil || !slices.Contains([]string{"http", "https", "file"}, u.Scheme)) {
				t.Fatalf("entry %d: url %q", i, im.URL)
			}
			for j := range i {
				if o := images[j]; o.Type == im.Type && o.Version == im.Version && o.CPUArchitecture == im.CPUArchitecture && o.URL != im.URL {
					t.Fatalf("entries %d and %d: same image, urls %q and %q", j, i, o.URL, im.URL)
				}
			}
		}
	})
}

func TestEdgeCacheVariables(t *testing.T) {
	base := map[string]string{"ASSISTED_SERVICE_HOST": "as:8090"}
	load := func(extra map[string]string) (*Config, error) {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return Load(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
	}
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.IgnitionCacheTTL != DefaultIgnitionCacheTTL || c.DownloadConcurrency != 2 || c.Fetch != FetchEager || c.DataDirMaxBytes != 0 {
		t.Fatalf("defaults: ttl=%v conc=%d fetch=%q max=%d", c.IgnitionCacheTTL, c.DownloadConcurrency, c.Fetch, c.DataDirMaxBytes)
	}
	c, err = load(map[string]string{"IGNITION_CACHE_TTL": "90s", "OS_IMAGES_DOWNLOAD_CONCURRENCY": "4", "OS_IMAGES_FETCH": "LAZY", "DATA_DIR_MAX_BYTES": "1000000"})
	if err != nil {
		t.Fatal(err)
	}
	if c.IgnitionCacheTTL != 90*time.Second || c.DownloadConcurrency != 4 || c.Fetch != FetchLazy || c.DataDirMaxBytes != 1000000 {
		t.Fatalf("parsed: %+v", c)
	}
	for name, val := range map[string]string{
		"IGNITION_CACHE_TTL":             "soon",
		"OS_IMAGES_DOWNLOAD_CONCURRENCY": "0",
		"OS_IMAGES_FETCH":                "sometimes",
		"DATA_DIR_MAX_BYTES":             "-1",
		"STREAM_STALL_TIMEOUT":           "0s",
	} {
		_, err := load(map[string]string{name: val})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: err = %v, want an error naming the variable", name, val, err)
		}
	}
}

// TestSampleBaseURL: in sample mode IMAGE_SERVICE_BASE_URL defaults to the
// process's own listener, so the sample minimal ISO works; otherwise it
// stays unset unless given.
func TestSampleBaseURL(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"LISTEN_PORT": "9000"}, "http://localhost:9000"},
		{map[string]string{"HTTP_LISTEN_PORT": "9001"}, "http://localhost:9001"},
		{map[string]string{"LISTEN_PORT": "9443", "HTTPS_CERT_FILE": "c", "HTTPS_KEY_FILE": "k"}, "https://localhost:9443"},
		{map[string]string{"IMAGE_SERVICE_BASE_URL": "http://edge.example:8080"}, "http://edge.example:8080"},
		{map[string]string{"ASSISTED_SERVICE_HOST": "as:8090", "OS_IMAGES": `[{"openshift_version":"4.18","cpu_architecture":"x86_64","url":"http://m/x.iso","version":"418"}]`}, ""},
	}
	for _, c := range cases {
		cfg, err := Load(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		if cfg.ImageServiceBaseURL != c.want {
			t.Errorf("%v: IMAGE_SERVICE_BASE_URL = %q, want %q", c.env, cfg.ImageServiceBaseURL, c.want)
		}
	}
}
