package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxBaseURL bounds IMAGE_SERVICE_BASE_URL. The minimal ISO's rootfs URL,
// built on it, is a kernel argument, and a kernel command line is 2048
// bytes on x86 and ppc64le.
const maxBaseURL = 1024

// bootConfigUnsafe are the characters refused in IMAGE_SERVICE_BASE_URL
// besides whitespace and control characters: the rootfs URL goes into the
// minimal ISO's grub.cfg and isolinux.cfg as coreos.live.rootfs_url="…",
// where grub expands '$' and '\' and quotes end the argument; ';' ends a
// grub command outside quotes. The template build (customize.BuildMinimal)
// refuses the same characters in the URL it is given.
const bootConfigUnsafe = "$\\\"'`;"

// checkBaseURL validates IMAGE_SERVICE_BASE_URL: an absolute http or https
// URL with a host and no user info, query or fragment (the rootfs URL
// under it is the base's scheme, host and path), no more than maxBaseURL
// bytes, and nothing a boot configuration cannot hold (bootConfigUnsafe,
// whitespace, control characters). Errors do not repeat the URL.
func checkBaseURL(s string) error {
	if len(s) > maxBaseURL {
		return fmt.Errorf("longer than %d bytes (the minimal ISO's rootfs URL under it is a kernel argument)", maxBaseURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the URL; keep the message short.
		return fmt.Errorf("invalid URL: %w", errors.Unwrap(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("want an absolute http:// or https:// URL")
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return errors.New("no host: want http[s]://host[:port][/path]")
	case u.User != nil:
		return errors.New("user info is not accepted: the minimal ISO's rootfs URL would not carry it")
	case u.RawQuery != "" || u.ForceQuery:
		return errors.New("a query is not accepted: the minimal ISO's rootfs URL has its own")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("a fragment is not accepted")
	}
	unsafe := func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(bootConfigUnsafe, r)
	}
	if i := strings.IndexFunc(s, unsafe); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("character %q at byte %d cannot be written into the minimal ISO's boot configuration; percent-encode it", r, i)
	}
	// The rootfs URL is this URL printed again (customize.MinimalRootfsURL):
	// an escape the printer does not keep (%24 for '$') would come back
	// as the character itself.
	rendered := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
	if i := strings.IndexFunc(rendered, unsafe); i >= 0 {
		r, _ := utf8.DecodeRuneInString(rendered[i:])
		return fmt.Errorf("the path holds an escaped %q, which the minimal ISO's rootfs URL would carry unescaped into its boot configuration", r)
	}
	return nil
}
