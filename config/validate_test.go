package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// loadErr runs Load with ASSISTED_SERVICE_HOST set plus env and returns
// the error, checking that it is an *Error naming wantVar when not nil.
func loadErr(t *testing.T, env map[string]string, wantVar string) error {
	t.Helper()
	m := map[string]string{"ASSISTED_SERVICE_HOST": "as:8090"}
	for k, v := range env {
		m[k] = v
	}
	_, err := Load(envMap(m))
	if err == nil {
		return nil
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Var != wantVar || !strings.HasPrefix(err.Error(), "config: "+wantVar+": ") {
		t.Errorf("error %q does not name %s", err, wantVar)
	}
	return err
}

func TestRequestHeaders(t *testing.T) {
	const secret = "s3cret-value"
	for _, c := range []struct {
		json    string
		wantErr string // "" means accepted
	}{
		{`{"Authorization":"Bearer ` + secret + `","X-Mirror-Token":"a\tb","User-Agent":"edge/1","X-Utf8":"é"}`, ""},
		{`{"x-lower":"` + secret + `","X_Under.score~!":""}`, ""},
		{`{}`, ""},
		{`{"Bad Name":"` + secret + `"}`, `header name "Bad"… is not an HTTP field name: byte 3 is ' '`},
		{`{"Authorization: Bearer ` + secret + `":"x"}`, `header name "Authorization"… is not an HTTP field name`},
		{`{"":"` + secret + `"}`, "empty header name"},
		{`{"X(y)":"v"}`, `header name "X"…`},
		{`{"Ĥ":"v"}`, "is not an HTTP field name"},
		{`{"X":"a\r\nInjected: ` + secret + `"}`, `value of header "X" holds a control character`},
		{`{"X":"` + secret + `\n"}`, `value of header "X" holds a control character`},
		{`{"X":"` + secret + `\u0000"}`, `value of header "X" holds a control character`},
		{`{"X":"` + secret + `\u007f"}`, `value of header "X" holds a control character`},
		{`{"Range":"bytes=100-"}`, `header "Range" is refused: isoedge sets it to resume downloads`},
		{`{"range":"bytes=100-"}`, `header "range" is refused`},
		{`{"If-Range":"x"}`, `header "If-Range" is refused`},
		{`{"Host":"x"}`, `header "Host" is refused`},
		{`{"Content-Length":"1"}`, `header "Content-Length" is refused`},
		{`{"Transfer-Encoding":"chunked"}`, `header "Transfer-Encoding" is refused`},
		{`{"Trailer":"x"}`, `header "Trailer" is refused`},
		{`{"CONNECTION":"close"}`, `header "CONNECTION" is refused: it is hop-by-hop`},
		{`{"Keep-Alive":"1"}`, `header "Keep-Alive" is refused`},
		{`{"Proxy-Connection":"1"}`, `header "Proxy-Connection" is refused`},
		{`{"TE":"trailers"}`, `header "TE" is refused`},
		{`{"Upgrade":"h2c"}`, `header "Upgrade" is refused`},
		{`{"Proxy-Authorization":"Basic ` + secret + `"}`, `header "Proxy-Authorization" is refused`},
		{`{"If-None-Match":"*"}`, `header "If-None-Match" is refused`},
		{`{"If-Modified-Since":"x"}`, `header "If-Modified-Since" is refused`},
		{`{"Accept-Encoding":"gzip"}`, `header "Accept-Encoding" is refused`},
		{`{"x-token":"1","X-Token":"` + secret + `"}`, `headers "X-Token" and "x-token" are the same header`},
	} {
		t.Run(c.json, func(t *testing.T) {
			err := loadErr(t, map[string]string{"OS_IMAGES_REQUEST_HEADERS": c.json}, "OS_IMAGES_REQUEST_HEADERS")
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows a header value", err)
			}
		})
	}
}

func TestRequestQueryParams(t *testing.T) {
	if err := loadErr(t, map[string]string{"OS_IMAGES_REQUEST_QUERY_PARAMS": `{"token":"","a b":"x&y"}`}, "OS_IMAGES_REQUEST_QUERY_PARAMS"); err != nil {
		t.Errorf("refused: %v", err)
	}
	err := loadErr(t, map[string]string{"OS_IMAGES_REQUEST_QUERY_PARAMS": `{"":"s3cret"}`}, "OS_IMAGES_REQUEST_QUERY_PARAMS")
	if err == nil || !strings.Contains(err.Error(), "empty parameter name") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v, want an empty-name error without the value", err)
	}
}

func TestAssistedServiceHost(t *testing.T) {
	for _, h := range []string{
		"as", "as:8090", "assisted-service.multicluster-engine.svc:8090", "assisted-service.ns.svc.", "localhost:1",
		"my_host:65535", "10.0.0.1", "10.0.0.1:8090", "[::1]", "[::1]:8090", "[fe80::1%eth0]:8090", "x-1.example.com",
	} {
		if err := loadErr(t, map[string]string{"ASSISTED_SERVICE_HOST": h}, "ASSISTED_SERVICE_HOST"); err != nil {
			t.Errorf("%q refused: %v", h, err)
		}
	}
	for _, h := range []string{
		"a b", " as", "as ", "as:", "as:0", "as:65536", "as:x", "as:-1", "as:+80", "http://as", "as/path", "as:8090/",
		"user@as", "user:pw@as:8090", "as?x", "as#x", "::1", "::1:8090", "[::1", "[::1]x", "[::1]:", "[1.2.3.4]", "[::1%]",
		"[fe80::1%e/0]", "1.2.3.999", "10.0.0.1.2", "-as", "as-", "a..b", ".as", "a\tb", "as\n", "é.example.com",
		strings.Repeat("a", 64) + ".example.com",
	} {
		err := loadErr(t, map[string]string{"ASSISTED_SERVICE_HOST": h}, "ASSISTED_SERVICE_HOST")
		if err == nil {
			t.Errorf("%q accepted", h)
		}
	}
	// The prefixed variable is the one named.
	if err := loadErr(t, map[string]string{"CLUSTER-IMAGE_ASSISTED_SERVICE_HOST": "a b"}, "CLUSTER-IMAGE_ASSISTED_SERVICE_HOST"); err == nil {
		t.Error("CLUSTER-IMAGE_ASSISTED_SERVICE_HOST=\"a b\" accepted")
	}
}

func TestListenPortsDistinct(t *testing.T) {
	tls := map[string]string{"HTTPS_CERT_FILE": "/c", "HTTPS_KEY_FILE": "/k"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		env     map[string]string
		wantVar string // "" means accepted
	}{
		{with(tls, "LISTEN_PORT", "18099", "HTTP_LISTEN_PORT", "18099"), "LISTEN_PORT and HTTP_LISTEN_PORT"},
		{with(tls, "LISTEN_PORT", "08080", "HTTP_LISTEN_PORT", "8080"), "LISTEN_PORT and HTTP_LISTEN_PORT"},
		{with(tls, "HTTP_LISTEN_PORT", "8080"), "LISTEN_PORT and HTTP_LISTEN_PORT"}, // LISTEN_PORT's default
		{with(tls, "CLUSTER-IMAGE_LISTEN_PORT", "9000", "HTTP_LISTEN_PORT", "9000"), "CLUSTER-IMAGE_LISTEN_PORT and HTTP_LISTEN_PORT"},
		{with(tls, "LISTEN_PORT", "8443", "HTTP_LISTEN_PORT", "8080"), ""},
		{with(tls, "LISTEN_PORT", "8443"), ""},
		// Without a key pair only HTTP_LISTEN_PORT is opened.
		{with(nil, "LISTEN_PORT", "18099", "HTTP_LISTEN_PORT", "18099"), ""},
	} {
		err := loadErr(t, c.env, c.wantVar)
		switch {
		case c.wantVar == "" && err != nil:
			t.Errorf("%v: %v", c.env, err)
		case c.wantVar != "" && (err == nil || !strings.Contains(err.Error(), "need two ports")):
			t.Errorf("%v: error %v, want one naming %s", c.env, err, c.wantVar)
		}
	}
}

func TestImageServiceBaseURL(t *testing.T) {
	for _, u := range []string{
		"http://x", "https://images.example.com/api/assisted-images", "https://images.example.com/api/assisted-images/",
		"http://[::1]:8080/", "http://10.0.0.1:8080/a%20b", "HTTPS://EDGE.example.com", "http://x/a%24b%22c", "http://x/é",
		"http://x/" + strings.Repeat("a", maxBaseURL-len("http://x/")),
	} {
		if err := loadErr(t, map[string]string{"IMAGE_SERVICE_BASE_URL": u}, "IMAGE_SERVICE_BASE_URL"); err != nil {
			t.Errorf("%q refused: %v", u, err)
		}
	}
	for _, c := range []struct{ url, wantErr string }{
		{"not a url", "want an absolute http:// or https:// URL"},
		{"not-a-url", "want an absolute http:// or https:// URL"},
		{"/api/assisted-images", "want an absolute http:// or https:// URL"},
		{"images.example.com", "want an absolute http:// or https:// URL"},
		{"ftp://x/", "want an absolute http:// or https:// URL"},
		{"http:x", "no host"},
		{"http://", "no host"},
		{"http:///p", "no host"},
		{"http://:8080/", "no host"},
		{"https://user:pw@x/", "user info is not accepted"},
		{"http://x/?a=b", "a query is not accepted"},
		{"http://x/?", "a query is not accepted"},
		{"http://x/#f", "a fragment is not accepted"},
		{"http://x/#", "a fragment is not accepted"},
		{"http://x/${foo}", `character '$'`},
		{"http://0/\xdb%24", `escaped '$'`}, // printed again without the escape (found by fuzzing)
		{"http://x$/", `character '$'`},
		{`http://x/a"b`, `character '"'`},
		{"http://x/a'b", `character '\''`},
		{"http://x'/", `character '\''`},
		{"http://x/a`b", "character '`'"},
		{"http://x/a;b", `character ';'`},
		{`http://x/a\b`, `character '\\'`},
		{"http://x/a b", `character ' '`},
		{"http://x/a\tb", `invalid URL`},
		{"http://x/a\u00a0b", `character '\u00a0'`},
		{"http://x/a\u0085b", `character '\u0085'`},
		{"http://a b\x7f/", "invalid URL"},
		{"http://x/%zz", "invalid URL"},
		{"http://x/" + strings.Repeat("a", maxBaseURL), "longer than 1024 bytes"},
	} {
		err := loadErr(t, map[string]string{"IMAGE_SERVICE_BASE_URL": c.url}, "IMAGE_SERVICE_BASE_URL")
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%q: error %v, want one containing %q", c.url, err, c.wantErr)
		} else if strings.Contains(c.url, "pw@") && strings.Contains(err.Error(), "pw") {
			t.Errorf("%q: error %q shows the password", c.url, err)
		}
	}
}

// entry is one OS_IMAGES entry in JSON.
func entry(ocp, arch, url, version, extra string) string {
	return fmt.Sprintf(`{"openshift_version":%q,"cpu_architecture":%q,"url":%q,"version":%q%s}`, ocp, arch, url, version, extra)
}

func TestOSImageEntries(t *testing.T) {
	const okURL = "https://mirror.example.com/rhcos.iso"
	for _, c := range []struct {
		name, list, wantErr string // wantErr "" means accepted
	}{
		{"https", entry("4.19", "x86_64", okURL, "419.96.1", ""), ""},
		{"http with port and user info", entry("4.19", "x86_64", "http://u:p@127.0.0.1:8080/x.iso?t=1", "419.96.1", ""), ""},
		{"scheme in capitals", entry("4.19", "x86_64", "HTTPS://mirror.example.com/x.iso", "419.96.1", ""), ""},
		{"file", entry("4.19", "x86_64", "file:///srv/images/rhcos.iso", "419.96.1", ""), ""},
		{"file on localhost", entry("4.19", "x86_64", "file://localhost/srv/rhcos.iso", "419.96.1", ""), ""},
		{"file with one slash", entry("4.19", "x86_64", "file:/srv/rhcos.iso", "419.96.1", ""), ""},
		{"every architecture", "[" + entry("4.19", "x86_64", okURL, "1", "") + "," + entry("4.19", "aarch64", okURL, "1", "") + "," +
			entry("4.19", "arm64", okURL, "1", "") + "," + entry("4.19", "ppc64le", okURL, "1", "") + "," + entry("4.19", "s390x", okURL, "1", "") + "]", ""},
		{"versions with dots, dashes, plus", entry("4.19.0-rc.1+x", "x86_64", okURL, "9.6.20250101-0", ""), ""},

		{"gopher", entry("4.19", "x86_64", "gopher://mirror.example.com/x.iso", "419.96.1", ""), `url: scheme "gopher" is not http, https, file or docker`},
		{"builtin sample marker", entry("4.19", "x86_64", SampleURL, "419.96.1", ""), `url: scheme "builtin" is not`},
		{"relative file", entry("4.19", "x86_64", "file:relative/x.iso", "419.96.1", ""), "a file URL needs an absolute path"},
		{"file without path", entry("4.19", "x86_64", "file://localhost", "419.96.1", ""), "a file URL needs an absolute path"},
		{"file on another host", entry("4.19", "x86_64", "file://nas/srv/x.iso", "419.96.1", ""), "a file URL names a local file"},
		{"file with user", entry("4.19", "x86_64", "file://u@/srv/x.iso", "419.96.1", ""), "a file URL names a local file"},
		{"file with query", entry("4.19", "x86_64", "file:///srv/x.iso?v=1", "419.96.1", ""), "no query or fragment"},
		{"file with fragment", entry("4.19", "x86_64", "file:///srv/x.iso#a", "419.96.1", ""), "no query or fragment"},
		{"no scheme", entry("4.19", "x86_64", "mirror.example.com/x.iso", "419.96.1", ""), "url: not absolute"},
		{"empty url", entry("4.19", "x86_64", "", "419.96.1", ""), "url: empty"},
		{"http without host", entry("4.19", "x86_64", "https:///x.iso", "419.96.1", ""), "url: no host"},
		{"http opaque", entry("4.19", "x86_64", "https:x.iso", "419.96.1", ""), "url: no host"},
		{"unparsable url", entry("4.19", "x86_64", "https://tok:s3cret@x/%zz", "419.96.1", ""), "url: not a URL"},
		{"long url", entry("4.19", "x86_64", "https://x/"+strings.Repeat("a", maxImageURL), "419.96.1", ""), "url: longer than 16384 bytes"},

		{"traversal version", entry("4.19", "x86_64", okURL, "../../../x", ""), `version "../../../x": holds ".."`},
		{"dots in version", entry("4.19", "x86_64", okURL, "4..1", ""), `holds ".."`},
		{"slash in version", entry("4.19", "x86_64", okURL, "a/b", ""), "version \"a/b\": holds a path separator"},
		{"backslash in version", entry("4.19", "x86_64", okURL, `a\b`, ""), "holds a path separator"},
		{"space in version", entry("4.19", "x86_64", okURL, "419 96", ""), "whitespace"},
		{"newline in version", entry("4.19", "x86_64", okURL, "419\n", ""), "control character"},
		{"C1 control in version", entry("4.19", "x86_64", okURL, "419\u0085", ""), "control character"},
		{"empty version", entry("4.19", "x86_64", okURL, "", ""), "version: empty"},
		{"long version", entry("4.19", "x86_64", okURL, strings.Repeat("9", maxVersion+1), ""), "version: longer than 128 bytes"},
		{"longest version", entry("4.19", "x86_64", okURL, strings.Repeat("9", maxVersion), ""), ""},
		{"empty openshift_version", entry("", "x86_64", okURL, "419.96.1", ""), "openshift_version: empty"},
		{"slash in openshift_version", entry("4/19", "x86_64", okURL, "419.96.1", ""), `openshift_version "4/19"`},
		{"long openshift_version", entry(strings.Repeat("4", maxVersion+1), "x86_64", okURL, "419.96.1", ""), "openshift_version: longer than"},

		{"arch in capitals", entry("4.19", "X86_64", okURL, "419.96.1", ""), `invalid version entry 0: cpu_architecture "X86_64": want one of x86_64, aarch64, arm64, ppc64le, s390x`},
		{"arch amd64", entry("4.19", "amd64", okURL, "419.96.1", ""), `cpu_architecture "amd64"`},
		{"arch empty", entry("4.19", "", okURL, "419.96.1", ""), `cpu_architecture ""`},
		{"arch of the second entry", "[" + entry("4.19", "x86_64", okURL, "1", "") + "," + entry("4.19", "aarch64 ", okURL, "2", "") + "]", `invalid version entry 1: cpu_architecture "aarch64 "`},

		{"same image, two OpenShift versions", "[" + entry("4.18", "x86_64", okURL, "418.94.1", "") + "," + entry("4.19", "x86_64", okURL, "418.94.1", "") + "]", ""},
		{"same version, other type", "[" + entry("4.19", "x86_64", okURL, "419.96.1", "") + "," + entry("4.19", "x86_64", okURL+"2", "419.96.1", `,"type":"disconnected-iso"`) + "]", ""},
		{"same version, other arch spelling", "[" + entry("4.19", "aarch64", okURL, "419.96.1", "") + "," + entry("4.19", "arm64", okURL+"2", "419.96.1", "") + "]", ""},
		{"duplicate with another url", "[" + entry("4.19", "x86_64", okURL, "419.96.1", "") + "," + entry("4.19", "s390x", okURL, "419.96.1", "") + "," +
			entry("4.19", "x86_64", okURL+"2", "419.96.1", `,"type":"full-iso"`) + "]", "entries 0 and 2 are both full-iso 419.96.1 x86_64 with different url, sha256 or path: entry 2 would never be used"},
		{"duplicate with another digest", "[" + entry("4.18", "x86_64", okURL, "419.96.1", `,"sha256":"`+strings.Repeat("a", 64)+`"`) + "," +
			entry("4.19", "x86_64", okURL, "419.96.1", "") + "]", "entries 0 and 1 are both"},
	} {
		t.Run(c.name, func(t *testing.T) {
			list := c.list
			if !strings.HasPrefix(list, "[") {
				list = "[" + list + "]"
			}
			err := loadErr(t, map[string]string{"OS_IMAGES": list}, "OS_IMAGES")
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "mirror.example.com") {
				t.Errorf("error %q shows the URL", err)
			}
		})
	}
}

func TestCheckVersionNotUTF8(t *testing.T) {
	// JSON decoding replaces invalid UTF-8, so only a caller of the check
	// itself can pass it.
	if err := checkVersion("version", "419\xff"); err == nil || !strings.Contains(err.Error(), "not UTF-8") {
		t.Errorf("error %v, want not UTF-8", err)
	}
}

// TestSampleIgnition: the sample ignition may be written only into the
// IGNITION_DIR that Load chose itself.
func TestSampleIgnition(t *testing.T) {
	img := "[" + entry("4.19", "x86_64", "https://m/x.iso", "419.96.1", "") + "]"
	for _, c := range []struct {
		name    string
		env     map[string]string
		wantDir string
		want    bool
	}{
		{"sample, dir defaulted", map[string]string{"DATA_DIR": "/srv"}, "/srv/ignition", true},
		{"sample, empty dir is unset", map[string]string{"IGNITION_DIR": ""}, "/data/ignition", true},
		{"sample, operator's dir", map[string]string{"IGNITION_DIR": "/etc/ign"}, "/etc/ign", false},
		{"sample, operator's prefixed dir", map[string]string{"CLUSTER-IMAGE_IGNITION_DIR": "/etc/ign"}, "/etc/ign", false},
		{"sample with assisted-service", map[string]string{"ASSISTED_SERVICE_HOST": "as"}, "", false},
		{"images, operator's dir", map[string]string{"OS_IMAGES": img, "IGNITION_DIR": "/etc/ign"}, "/etc/ign", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Load(envMap(c.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.IgnitionDir != c.wantDir || cfg.SampleIgnition != c.want {
				t.Errorf("IgnitionDir %q SampleIgnition %v, want %q %v", cfg.IgnitionDir, cfg.SampleIgnition, c.wantDir, c.want)
			}
		})
	}
}
