package upstream

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

func writeAuth(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAuthFileLookup(t *testing.T) {
	// A pull secret, a docker config.json key with scheme and /v1/, the
	// separate-field form, and a namespace-scoped entry.
	af, secrets, err := parseAuthFile([]byte(`{"auths":{
		"quay.io": {"auth": "` + b64("quser:qpass-secret") + `", "email": "x@example.com"},
		"https://index.docker.io/v1/": {"auth": "` + b64("duser:dpass-secret") + `"},
		"registry.example.com:5000": {"username": "ruser", "password": "rpass-secret"},
		"registry.example.com:5000/team/": {"username": "tuser", "password": "tpass-secret"},
		"tokens.example.com": {"identitytoken": "id-token-secret"}
	}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		repo, user, pass, token string
	}{
		{"quay.io/openshift-release-dev/ocp-v4.0-art-dev", "quser", "qpass-secret", ""},
		{"index.docker.io/library/busybox", "duser", "dpass-secret", ""},
		{"registry.example.com:5000/other/repo", "ruser", "rpass-secret", ""},
		{"registry.example.com:5000/team/mos", "tuser", "tpass-secret", ""},
		{"registry.example.com:5000/team/sub/mos", "tuser", "tpass-secret", ""},
		{"registry.example.com:5000/teamx/mos", "ruser", "rpass-secret", ""},
		{"tokens.example.com/a", "", "", "id-token-secret"},
	} {
		repo, err := name.NewRepository(c.repo)
		if err != nil {
			t.Fatal(err)
		}
		cred, ok := af.lookup(repo)
		if !ok || cred.user != c.user || cred.password != c.pass || cred.identityToken != c.token {
			t.Errorf("lookup(%s) = %+v, %v; want %s/%s/%s", c.repo, cred, ok, c.user, c.pass, c.token)
		}
	}
	repo, _ := name.NewRepository("registry.example.com/other")
	if _, ok := af.lookup(repo); ok {
		t.Error("a host without a port matched an entry with a port")
	}
	joined := strings.Join(secrets, "\n")
	for _, s := range []string{"qpass-secret", "dpass-secret", "rpass-secret", "tpass-secret", "id-token-secret", b64("quser:qpass-secret"), b64("ruser:rpass-secret")} {
		if !strings.Contains(joined, s) {
			t.Errorf("secrets to redact miss %q", s)
		}
	}
}

func TestAuthFileErrorsHideValues(t *testing.T) {
	for _, c := range []struct {
		name, content, want string
	}{
		{"syntax", `{"auths":{"quay.io":{"auth":"c2VjcmV0LXZhbHVl"` + "\n", "invalid JSON at offset"},
		{"not an object", `["c2VjcmV0LXZhbHVl"]`, `want {"auths"`},
		{"entry not strings", `{"auths":{"quay.io":{"auth":["c2VjcmV0LXZhbHVl"]}}}`, `entry "quay.io": want an object of strings`},
		{"auth not base64", `{"auths":{"quay.io":{"auth":"c2VjcmV0LXZhbHVl!!"}}}`, `entry "quay.io": "auth" is not base64`},
		{"auth without colon", `{"auths":{"quay.io":{"auth":"` + b64("secret-value") + `"}}}`, "does not decode to user:password"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewRegistrySource(RegistryConfig{AuthFile: writeAuth(t, c.content)})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "REGISTRY_AUTH_FILE") {
				t.Fatalf("error %v, want one naming REGISTRY_AUTH_FILE and saying %q", err, c.want)
			}
			for _, s := range []string{"secret-value", "c2VjcmV0LXZhbHVl"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q quotes the file", err)
				}
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := NewRegistrySource(RegistryConfig{AuthFile: filepath.Join(t.TempDir(), "none.json")})
		if err == nil || !strings.Contains(err.Error(), "REGISTRY_AUTH_FILE") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		_, err := NewRegistrySource(RegistryConfig{AuthFile: writeAuth(t, `{"auths":{}}`+strings.Repeat(" ", maxAuthFileSize))})
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestNormaliseAuthKey(t *testing.T) {
	for in, want := range map[string]string{
		"quay.io":                        "quay.io",
		"https://index.docker.io/v1/":    "index.docker.io",
		"http://registry.local:5000/":    "registry.local:5000",
		"registry.local:5000/ns/repo/":   "registry.local:5000/ns/repo",
		"registry.local:5000/v1":         "registry.local:5000/v1",
		"https://registry.local/v2":      "registry.local",
		" registry.local:5000/ns/repo  ": "registry.local:5000/ns/repo",
	} {
		if got := normaliseAuthKey(in); got != want {
			t.Errorf("normaliseAuthKey(%q) = %q, want %q", in, got, want)
		}
	}
}
