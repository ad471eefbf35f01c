package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of an OS image entry, those of the base records the store keeps
// (cache.ValidateRecord): a value outside them would be accepted here and
// refused when the downloaded image is committed.
const (
	maxVersion  = 128      // bytes in version and openshift_version
	maxImageURL = 16 << 10 // bytes in url
)

// architectures lists the accepted cpu_architecture values. They are matched
// verbatim, as the original does: aarch64 and arm64 are two spellings of
// ARM (assisted-service uses arm64, RHCOS file names aarch64), and a request
// finds an entry only with the spelling that entry uses.
var architectures = []string{"x86_64", "aarch64", "arm64", "ppc64le", "s390x"}

// checkArch accepts the values of architectures, case-sensitively.
func checkArch(a string) error {
	for _, ok := range architectures {
		if a == ok {
			return nil
		}
	}
	return fmt.Errorf("cpu_architecture %q: want one of %s (lower case)", a, strings.Join(architectures, ", "))
}

// checkVersion accepts a version or openshift_version: non-empty, at most
// maxVersion bytes of UTF-8, without '/', '\', "..", whitespace or control
// characters. Versions name files and index keys.
func checkVersion(key, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s: empty", key)
	case len(v) > maxVersion:
		return fmt.Errorf("%s: longer than %d bytes", key, maxVersion)
	case !utf8.ValidString(v):
		return fmt.Errorf("%s: not UTF-8", key)
	case strings.Contains(v, ".."):
		return fmt.Errorf("%s %q: holds \"..\"", key, v)
	case strings.ContainsFunc(v, func(r rune) bool {
		return r == '/' || r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r)
	}):
		return fmt.Errorf("%s %q: holds a path separator, whitespace or a control character", key, v)
	}
	return nil
}

// checkImageURL accepts the url of an entry that is not docker:// (see
// ParseDockerURL): http or https with a host, or file with an absolute
// path and no host other than localhost, no user info, query or fragment.
// Errors never quote the URL, which may carry a token.
func checkImageURL(s string) error {
	if s == "" {
		return errors.New("url: empty")
	}
	if len(s) > maxImageURL {
		return fmt.Errorf("url: longer than %d bytes", maxImageURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("url: not a URL")
	}
	switch u.Scheme {
	case "http", "https":
		if u.Opaque != "" || u.Hostname() == "" {
			return fmt.Errorf("url: no host (want %s://host[:port]/path)", u.Scheme)
		}
		return nil
	case "file":
		switch {
		case u.Host != "" && u.Host != "localhost" || u.User != nil:
			return errors.New("url: a file URL names a local file: no host but localhost (file:///path)")
		case u.Opaque != "" || !strings.HasPrefix(u.Path, "/"):
			return errors.New("url: a file URL needs an absolute path (file:///path)")
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
			return errors.New("url: a file URL has no query or fragment (escape '?' and '#' in file names as %3F and %23)")
		}
		return nil
	case "":
		return errors.New("url: not absolute (want http://, https://, file:// or docker://)")
	}
	return fmt.Errorf("url: scheme %.32q is not http, https, file or docker", u.Scheme)
}

// checkDuplicates refuses two entries with the same type, version and
// cpu_architecture but a different source (url, sha256 or path): both
// would name one stored image and only the first would ever be fetched.
// Entries that agree on the source are accepted: the original deduplicates
// them, and they let one image be found under several openshift_version
// values (a new OpenShift release that still boots the previous RHCOS).
func checkDuplicates(images []OSImage) error {
	type key struct{ typ, version, arch string }
	first := make(map[key]int, len(images))
	for i, im := range images {
		k := key{im.Type, im.Version, im.CPUArchitecture}
		j, ok := first[k]
		if !ok {
			first[k] = i
			continue
		}
		if o := images[j]; o.URL != im.URL || o.SHA256 != im.SHA256 || o.Path != im.Path {
			return fmt.Errorf("entries %d and %d are both %s %s %s with different url, sha256 or path: entry %d would never be used", j, i, im.Type, im.Version, im.CPUArchitecture, i)
		}
	}
	return nil
}
