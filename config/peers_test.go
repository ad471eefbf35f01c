package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLoadPeers(t *testing.T) {
	c, err := Load(envMap(map[string]string{
		"OS_IMAGES":             oneImage,
		"ASSISTED_SERVICE_HOST": "as:8090",
		"PEERS":                 " http://10.0.0.2:8080/ ,https://isoedge-1.isoedge-peers:8443,, http://[fd00::3]:8081 ",
		"PEERS_DNS":             "isoedge-peers.ns.svc.cluster.local.",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://10.0.0.2:8080", "https://isoedge-1.isoedge-peers:8443", "http://[fd00::3]:8081"}
	if !slices.Equal(c.Peers, want) {
		t.Errorf("Peers = %q, want %q", c.Peers, want)
	}
	if c.PeersDNS != "isoedge-peers.ns.svc.cluster.local." {
		t.Errorf("PeersDNS = %q", c.PeersDNS)
	}
	if r := c.Redacted(); r["PEERS"] != strings.Join(want, ",") || r["PEERS_DNS"] != c.PeersDNS {
		t.Errorf("Redacted: PEERS %q, PEERS_DNS %q", r["PEERS"], r["PEERS_DNS"])
	}

	def, err := Load(envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if def.Peers != nil || def.PeersDNS != "" {
		t.Errorf("defaults: Peers %q, PeersDNS %q; want none", def.Peers, def.PeersDNS)
	}
}

func TestLoadPeersRejects(t *testing.T) {
	many := strings.Repeat("http://10.0.0.1:8080,", MaxPeers+1)
	for _, tc := range []struct {
		name, v, errPart string
		dns              bool
	}{
		{"ftp scheme", "ftp://host", "scheme", false},
		{"no scheme", "10.0.0.2:8080", "not a URL", false},
		{"relative", "host:8080", "scheme", false},
		{"no host", "http://", "no host", false},
		{"credentials", "http://user:SECRETPW@host", "credentials", false},
		{"query", "http://host/?token=x", "query", false},
		{"fragment", "http://host/#x", "query", false},
		{"too many", many, "at most", false},
		{"dns with port", "isoedge-peers:8080", "not a DNS name", true},
		{"dns with scheme", "http://isoedge-peers", "not a DNS name", true},
		{"dns bad label", "-bad.example", "not a DNS name", true},
		{"dns long label", strings.Repeat("a", 64), "not a DNS name", true},
		{"dns empty label", "a..b", "not a DNS name", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "PEERS"
			if tc.dns {
				name = "PEERS_DNS"
			}
			_, err := Load(envMap(map[string]string{name: tc.v}))
			var ce *Error
			if !errors.As(err, &ce) || ce.Var != name || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("Load(%s=%q) = %v; want a %s error mentioning %q", name, tc.v, err, name, tc.errPart)
			}
			if strings.Contains(err.Error(), "SECRETPW") {
				t.Errorf("error quotes the credential: %v", err)
			}
		})
	}
}

func TestPeerListener(t *testing.T) {
	for _, tc := range []struct {
		env                  map[string]string
		wantScheme, wantPort string
	}{
		{map[string]string{}, "http", "8080"},
		{map[string]string{"LISTEN_PORT": "9000"}, "http", "9000"},
		{map[string]string{"HTTP_LISTEN_PORT": "8081"}, "http", "8081"},
		{map[string]string{"HTTPS_CERT_FILE": "c", "HTTPS_KEY_FILE": "k"}, "https", "8080"},
		{map[string]string{"HTTPS_CERT_FILE": "c", "HTTPS_KEY_FILE": "k", "HTTP_LISTEN_PORT": "8081"}, "http", "8081"},
	} {
		c, err := Load(envMap(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if s, p := c.PeerListener(); s != tc.wantScheme || p != tc.wantPort {
			t.Errorf("%v: PeerListener = %s %s, want %s %s", tc.env, s, p, tc.wantScheme, tc.wantPort)
		}
	}
}
