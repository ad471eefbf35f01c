package upstream

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// maxAuthFileSize bounds REGISTRY_AUTH_FILE. A pull secret for every
// registry Red Hat knows is a few KiB.
const maxAuthFileSize = 4 << 20

// registryCred is one registry's entry of an auth file.
type registryCred struct {
	key            string // the auths key it came from, as written
	user, password string
	identityToken  string
	registryToken  string
}

// authenticator is the go-containerregistry form of c.
func (c registryCred) authenticator() authn.Authenticator {
	return authn.FromConfig(authn.AuthConfig{
		Username: c.user, Password: c.password,
		IdentityToken: c.identityToken, RegistryToken: c.registryToken,
	})
}

// secrets lists what must never appear in a log line or an error text.
// The user name is not among them: it names an account, it opens nothing.
func (c registryCred) secrets(raw string) []string {
	var out []string
	for _, s := range []string{c.password, c.identityToken, c.registryToken, raw} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// authFile is a parsed containers-auth.json: normalised key → credential.
type authFile map[string]registryCred

// authEntry is one value of the "auths" object. "auth" is
// base64("user:password"); docker's config.json and containers-auth.json
// may instead (or also) carry the fields separately, and token fields.
type authEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// loadAuthFile reads and parses the auth file at path. Errors name the file
// and an entry's key, never a value.
func loadAuthFile(path string) (authFile, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("upstream: REGISTRY_AUTH_FILE: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAuthFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("upstream: REGISTRY_AUTH_FILE: %w", err)
	}
	if len(b) > maxAuthFileSize {
		return nil, nil, fmt.Errorf("upstream: REGISTRY_AUTH_FILE %s: larger than %d bytes", path, maxAuthFileSize)
	}
	af, raws, err := parseAuthFile(b)
	if err != nil {
		return nil, nil, fmt.Errorf("upstream: REGISTRY_AUTH_FILE %s: %w", path, err)
	}
	return af, raws, nil
}

// parseAuthFile parses the containers-auth.json format (also that of a
// pull secret and of ~/.docker/config.json):
//
//	{"auths": {"host[:port][/namespace]": {"auth": "base64(user:password)"}}}
//
// Keys may carry a scheme and a trailing slash, as docker writes them
// ("https://index.docker.io/v1/"). Credential helpers (credsStore,
// credHelpers) are not run. The second result lists every secret of the
// file, for redaction.
func parseAuthFile(b []byte) (authFile, []string, error) {
	var doc struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, nil, fmt.Errorf("invalid JSON at offset %d", se.Offset)
		}
		return nil, nil, errors.New(`want {"auths": {"host": {"auth": "..."}}}`)
	}
	af := make(authFile, len(doc.Auths))
	var secrets []string
	for key, raw := range doc.Auths {
		var e authEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, nil, fmt.Errorf("entry %q: want an object of strings", key)
		}
		c := registryCred{key: key, user: e.Username, password: e.Password, identityToken: e.IdentityToken, registryToken: e.RegistryToken}
		if e.Auth != "" {
			user, pass, err := decodeAuth(e.Auth)
			if err != nil {
				return nil, nil, fmt.Errorf("entry %q: %w", key, err)
			}
			c.user, c.password = user, pass
		}
		secrets = append(secrets, c.secrets(e.Auth)...)
		if c.password != "" {
			secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.password)))
		}
		af[normaliseAuthKey(key)] = c
	}
	return af, secrets, nil
}

// decodeAuth splits base64("user:password").
func decodeAuth(s string) (user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return "", "", errors.New(`"auth" is not base64`)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", errors.New(`"auth" does not decode to user:password`)
	}
	return user, pass, nil
}

// normaliseAuthKey drops a scheme and trailing slashes, and the /v1 or /v2
// path docker appends to registry URLs.
func normaliseAuthKey(k string) string {
	k = strings.TrimSpace(k)
	scheme := false
	for _, p := range []string{"https://", "http://"} {
		if rest, ok := strings.CutPrefix(k, p); ok {
			k, scheme = rest, true
		}
	}
	k = strings.TrimRight(k, "/")
	if scheme {
		k = strings.TrimSuffix(strings.TrimSuffix(k, "/v1"), "/v2")
	}
	return k
}

// lookup finds the credential for repo: the most specific key among
// host/a/b, host/a, host (as containers-auth.json is read). Docker Hub is
// also looked up as docker.io.
func (af authFile) lookup(repo name.Repository) (registryCred, bool) {
	hosts := []string{repo.RegistryStr()}
	if hosts[0] == name.DefaultRegistry {
		hosts = append(hosts, "docker.io")
	}
	for _, host := range hosts {
		p := repo.RepositoryStr()
		for {
			if c, ok := af[host+"/"+p]; ok {
				return c, true
			}
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
		}
		if c, ok := af[host]; ok {
			return c, true
		}
	}
	return registryCred{}, false
}
