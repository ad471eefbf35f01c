package upstream

import (
	"maps"
	"net/url"
	"slices"
	"strings"
)

// withQuery returns a copy of u with params added and the whole query
// re-encoded with sorted keys; u itself when params is empty, so a signed
// URL reaches the server byte for byte.
func withQuery(u *url.URL, params map[string]string) *url.URL {
	if len(params) == 0 {
		return u
	}
	c := *u
	q := c.Query()
	for _, k := range slices.Sorted(maps.Keys(params)) {
		q.Add(k, params[k])
	}
	c.RawQuery = q.Encode()
	return &c
}

// sameSite reports whether what was configured for first may go to dest:
// dest's host name is first's or a subdomain of it. Ports and schemes are
// not compared. This is the rule Go's client applies to Authorization and
// cookies on redirects (http.Client, "sensitive headers"), so a mirror on
// 127.0.0.1:8080 redirecting to 127.0.0.1:9090 keeps the headers, and one
// redirecting to cdn.example.net from example.com does not.
func sameSite(first, dest *url.URL) bool {
	parent, sub := strings.ToLower(first.Hostname()), strings.ToLower(dest.Hostname())
	if sub == parent {
		return true
	}
	if parent == "" || strings.ContainsAny(sub, ":%") {
		// An IPv6 literal is never a subdomain of anything.
		return false
	}
	return strings.HasSuffix(sub, "."+parent)
}

// stripKeys removes from u's query every parameter named in secrets or
// holding one of their values, in case a redirect echoes them to another
// host. The query is re-encoded only when something was removed.
func stripKeys(u *url.URL, secrets map[string]string) {
	if len(secrets) == 0 || u.RawQuery == "" {
		return
	}
	q := u.Query()
	removed := false
	for k, vs := range q {
		_, named := secrets[k]
		if named || slices.ContainsFunc(vs, func(v string) bool { return isSecretValue(v, secrets) }) {
			delete(q, k)
			removed = true
		}
	}
	if removed {
		u.RawQuery = q.Encode()
	}
}

func isSecretValue(v string, secrets map[string]string) bool {
	for _, s := range secrets {
		if s != "" && v == s {
			return true
		}
	}
	return false
}
