package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// OSImage is one entry of OS_IMAGES / RHCOS_VERSIONS.
type OSImage struct {
	OpenshiftVersion string `json:"openshift_version"`
	CPUArchitecture  string `json:"cpu_architecture"`
	URL              string `json:"url"`
	Version          string `json:"version"`
	Type             string `json:"type,omitempty"`   // "full-iso" (default, filled in by Load) or "disconnected-iso"
	SHA256           string `json:"sha256,omitempty"` // optional expected digest, 64 lowercase hex
	// Path is the file to take from the container image of a docker:// URL;
	// ParseOSImages fills in DefaultRegistryPath when the key is absent.
	// Always "" for other URLs.
	Path string `json:"path,omitempty"`
	// MovableTag is true for a docker:// URL that names a tag without a
	// digest: the image behind it can change. Set by ParseOSImages, never
	// read from JSON; callers log a warning.
	MovableTag bool `json:"-"`
}

// Image types accepted in the "type" key.
const (
	TypeFullISO         = "full-iso"
	TypeDisconnectedISO = "disconnected-iso"
	// TypeMinimalISO is served from the minimal template derived from a
	// full-iso entry; it is never configured itself.
	TypeMinimalISO = "minimal-iso"
)

// SampleURL is the URL of the built-in sample image used when no image list is configured.
const SampleURL = "builtin:sample"

// sampleImages is the list used when neither OS_IMAGES nor RHCOS_VERSIONS is
// set. It is a function so that no caller can modify a shared slice.
func sampleImages() []OSImage {
	return []OSImage{{
		OpenshiftVersion: "4.99",
		CPUArchitecture:  "x86_64",
		URL:              SampleURL,
		Version:          "99.0.sample-0",
		Type:             TypeFullISO,
	}}
}

// requiredKeys must be present in every entry, in the order they are checked.
var requiredKeys = [...]string{"openshift_version", "cpu_architecture", "url", "version"}

// ParseOSImages parses and validates an OS image list: a JSON array of objects
// whose values are all strings. Each object must have the keys
// openshift_version, cpu_architecture, url and version. The optional "type"
// defaults to "full-iso" and must be "full-iso" or "disconnected-iso"; the
// optional "sha256" must be 64 hex digits and is returned in lower case. A
// url of the form docker://HOST[:PORT]/REPO@sha256:HEX (or :TAG, flagged
// MovableTag) names a file in a container image, see ParseDockerURL: its
// cpu_architecture must be one RegistryArch knows and the optional "path"
// (absolute, clean) defaults to DefaultRegistryPath. "path" is refused on
// other URLs, which must be http or https with a host, or file with an
// absolute local path (at most 16 KiB). version and openshift_version must
// be non-empty, at most 128 bytes, without '/', '\', "..", whitespace or
// control characters; cpu_architecture one of x86_64, aarch64, arm64,
// ppc64le or s390x, matched verbatim. Two entries with the same type,
// version and cpu_architecture must have the same url, sha256 and path.
// Other keys are ignored, but their values must still be strings, as in
// the original. An empty list is an error.
//
// Errors do not name a variable; Load adds it.
func ParseOSImages(s string) ([]OSImage, error) {
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if len(raw) == 0 {
		return nil, errors.New("invalid versions: must not be empty")
	}
	images := make([]OSImage, 0, len(raw))
	for i, obj := range raw {
		im, err := parseOSImage(obj)
		if err != nil {
			return nil, fmt.Errorf("invalid version entry %d: %w", i, err)
		}
		images = append(images, im)
	}
	if err := checkDuplicates(images); err != nil {
		return nil, fmt.Errorf("invalid versions: %w", err)
	}
	return images, nil
}

func parseOSImage(obj map[string]json.RawMessage) (OSImage, error) {
	// Check every value first, in key order so the error is deterministic.
	vals := make(map[string]string, len(obj))
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, err := jsonString(obj[k])
		if err != nil {
			return OSImage{}, fmt.Errorf("value of %q key: %w", k, err)
		}
		vals[k] = v
	}
	for _, k := range requiredKeys {
		if _, ok := vals[k]; !ok {
			return OSImage{}, fmt.Errorf("missing %s key", k)
		}
	}
	im := OSImage{
		OpenshiftVersion: vals["openshift_version"],
		CPUArchitecture:  vals["cpu_architecture"],
		URL:              vals["url"],
		Version:          vals["version"],
		Type:             vals["type"],
		SHA256:           strings.ToLower(vals["sha256"]),
		Path:             vals["path"],
	}
	switch im.Type {
	case "":
		im.Type = TypeFullISO
	case TypeFullISO, TypeDisconnectedISO:
	default:
		return OSImage{}, fmt.Errorf("invalid image type: %s", im.Type)
	}
	if im.SHA256 != "" {
		if b, err := hex.DecodeString(im.SHA256); err != nil || len(b) != 32 {
			return OSImage{}, fmt.Errorf("invalid sha256 %q: want 64 hex digits", im.SHA256)
		}
	}
	if IsDockerURL(im.URL) {
		if err := checkDockerEntry(&im); err != nil {
			return OSImage{}, err
		}
	} else if _, ok := vals["path"]; ok {
		return OSImage{}, errors.New("path: only docker:// URLs name a file in an image")
	} else if err := checkImageURL(im.URL); err != nil {
		return OSImage{}, err
	}
	if err := checkVersion("openshift_version", im.OpenshiftVersion); err != nil {
		return OSImage{}, err
	}
	if err := checkVersion("version", im.Version); err != nil {
		return OSImage{}, err
	}
	if err := checkArch(im.CPUArchitecture); err != nil {
		return OSImage{}, err
	}
	return im, nil
}

// jsonString decodes raw, which must be a JSON string. json.Unmarshal alone
// would accept null (leaving the string empty), which the list does not allow.
func jsonString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf("not a string: %.40s", raw)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}
