package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// checkHostPort validates ASSISTED_SERVICE_HOST, from which the upstream
// client builds scheme://HOST/api/…: host or host:port, where host is a DNS
// name, an IPv4 address or an IPv6 address in brackets (with an optional
// %zone), and port is 1-65535 in decimal. A path, user info, query,
// whitespace or any other character is refused.
func checkHostPort(s string) error {
	host, port, err := splitHostPort(s)
	if err != nil {
		return err
	}
	if port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("port %q: want 1-65535", port)
		}
	}
	if strings.HasPrefix(s, "[") {
		addr, zone, hasZone := strings.Cut(host, "%")
		ip, err := netip.ParseAddr(addr)
		if err != nil || !ip.Is6() {
			return fmt.Errorf("%q: not an IPv6 address in brackets", s)
		}
		if hasZone && (zone == "" || strings.Trim(zone, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "") {
			return fmt.Errorf("%q: invalid IPv6 zone", s)
		}
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		return nil
	}
	if !isDNSName(host, true) {
		return fmt.Errorf("%q: want host or host:port, where host is a DNS name or an IP address", s)
	}
	// A name whose last label is all digits is a mistyped IPv4 address:
	// no top-level domain is numeric (RFC 3696 §2).
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Errorf("%q: not an IPv4 address", s)
	}
	return nil
}

// splitHostPort splits host[:port] or [ipv6][:port]. A port, when its colon
// is present, must not be empty.
func splitHostPort(s string) (host, port string, err error) {
	rest := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", fmt.Errorf("%q: no closing bracket", s)
		}
		host, rest = s[1:end], s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if rest[0] != ':' {
			return "", "", fmt.Errorf("%q: want [address] or [address]:port", s)
		}
	} else {
		if strings.Count(s, ":") > 1 {
			return "", "", errors.New("an IPv6 address must be in brackets: [address] or [address]:port")
		}
		var found bool
		host, port, found = strings.Cut(s, ":")
		if !found {
			return host, "", nil
		}
		rest = ":" + port
	}
	if port = rest[1:]; port == "" {
		return "", "", fmt.Errorf("%q: empty port", s)
	}
	return host, port, nil
}
