package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MaxPeers bounds how many sibling replicas PEERS may list.
const MaxPeers = 64

// loadPeers fills Peers (PEERS: comma-separated base URLs of sibling
// replicas) and PeersDNS (PEERS_DNS: a DNS name whose A/AAAA records are
// the siblings, resolved at each fill). Both may be set; both empty turns
// peer fill off.
func (c *Config) loadPeers(e env) error {
	s, from := e.str("PEERS", "")
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := parsePeerURL(part)
		if err != nil {
			return &Error{from, err}
		}
		c.Peers = append(c.Peers, u)
	}
	if len(c.Peers) > MaxPeers {
		return &Error{from, fmt.Errorf("%d peers, at most %d", len(c.Peers), MaxPeers)}
	}
	c.PeersDNS, from = e.str("PEERS_DNS", "")
	c.PeersDNS = strings.TrimSpace(c.PeersDNS)
	if c.PeersDNS != "" && !isDNSName(c.PeersDNS, false) {
		return &Error{from, fmt.Errorf("not a DNS name: %q (a Service name, without scheme or port)", c.PeersDNS)}
	}
	return nil
}

// parsePeerURL checks one PEERS entry: an http or https base URL with a
// host, without credentials, query or fragment. It is returned without a
// trailing slash.
func parsePeerURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("an entry is not a URL (want http[s]://host[:port])")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("peer %q: scheme must be http or https", u.Redacted())
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("peer %q: no host", u.Redacted())
	case u.User != nil:
		return "", fmt.Errorf("peer %q: credentials are not sent to peers", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("peer %q: a base URL has no query or fragment", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// isDNSName reports whether s is a host name: dot-separated labels of
// letters, digits and hyphens (1-63 characters, no hyphen at either end),
// 253 characters at most, an optional final dot. underscore also admits
// '_' in labels, which resolvers accept in names that are not Services.
func isDNSName(s string, underscore bool) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || underscore && ch == '_') {
				return false
			}
		}
	}
	return true
}

// PeerListener returns the scheme and port on which sibling replicas,
// which run this same configuration, answer peer requests: the plain-HTTP
// port when one is served (HTTP_LISTEN_PORT if set, else LISTEN_PORT
// without a key pair), else HTTPS on LISTEN_PORT. This follows the
// listener table of proxy.ListenSpecs.
func (c *Config) PeerListener() (scheme, port string) {
	switch {
	case c.HTTPListenPort != "":
		return "http", c.HTTPListenPort
	case c.HTTPSCertFile != "" && c.HTTPSKeyFile != "":
		return "https", c.ListenPort
	}
	return "http", c.ListenPort
}
