package config

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DockerScheme starts an OS image URL that names a file inside a container
// image: docker://HOST[:PORT]/REPO@sha256:HEX, or …/REPO:TAG.
const DockerScheme = "docker://"

// maxImagePath bounds the "path" key of an OS image entry.
const maxImagePath = 4096

// IsDockerURL reports whether u names a container image (the scheme is
// matched without regard to case).
func IsDockerURL(u string) bool {
	return len(u) >= len(DockerScheme) && strings.EqualFold(u[:len(DockerScheme)], DockerScheme)
}

// ParseDockerURL parses a docker:// OS image URL into an image reference.
// The registry host must be explicit (HOST contains a dot or a colon, or is
// localhost), the reference must carry a tag or a sha256 digest, and user
// info is refused: credentials come from REGISTRY_AUTH_FILE only. movable
// is true when the reference is a tag without a digest: what it names can
// change between two pulls. Errors never quote the URL.
func ParseDockerURL(u string) (ref name.Reference, movable bool, err error) {
	if !IsDockerURL(u) {
		return nil, false, errors.New("not a docker:// URL")
	}
	s := u[len(DockerScheme):]
	host, rest, found := strings.Cut(s, "/")
	switch {
	case strings.Contains(host, "@"):
		return nil, false, errors.New("docker URL: credentials in the URL are not accepted; use REGISTRY_AUTH_FILE")
	case !found || rest == "":
		return nil, false, errors.New("docker URL: want docker://HOST[:PORT]/REPO@sha256:DIGEST")
	case host != "localhost" && !strings.ContainsAny(host, ".:"):
		return nil, false, errors.New("docker URL: the registry host must be explicit (a name with a dot, HOST:PORT, or localhost)")
	case strings.ContainsAny(s, "?#"):
		return nil, false, errors.New("docker URL: a query or fragment is not accepted")
	}
	ref, err = name.ParseReference(s, name.StrictValidation)
	if err != nil {
		// name's errors quote the reference, which is safe here: user info
		// was refused above.
		return nil, false, fmt.Errorf("docker URL: %w", err)
	}
	switch r := ref.(type) {
	case name.Digest:
		if !strings.HasPrefix(r.DigestStr(), "sha256:") {
			return nil, false, errors.New("docker URL: only sha256 digests are accepted")
		}
		return ref, false, nil
	case name.Tag:
		return ref, true, nil
	}
	return nil, false, errors.New("docker URL: want a tag or a digest")
}

// RegistryArch maps an entry's cpu_architecture to the architecture of its
// image in a manifest list (OS linux) and to the one in the default file
// name (/coreos/coreos-<file>.iso, as openshift/machine-os-images lays it
// out). Both spellings assisted-service uses for ARM are accepted.
func RegistryArch(cpu string) (platform, file string, ok bool) {
	switch cpu {
	case "x86_64":
		return "amd64", "x86_64", true
	case "aarch64", "arm64":
		return "arm64", "aarch64", true
	case "ppc64le":
		return "ppc64le", "ppc64le", true
	case "s390x":
		return "s390x", "s390x", true
	}
	return "", "", false
}

// DefaultRegistryPath is the file a docker:// entry takes when it has no
// "path" key: /coreos/coreos-<arch>.iso, "" for an unknown architecture.
func DefaultRegistryPath(cpu string) string {
	_, file, ok := RegistryArch(cpu)
	if !ok {
		return ""
	}
	return "/coreos/coreos-" + file + ".iso"
}

// checkDockerEntry validates the registry fields of a docker:// entry and
// fills its default path and MovableTag.
func checkDockerEntry(im *OSImage) error {
	_, movable, err := ParseDockerURL(im.URL)
	if err != nil {
		return err
	}
	im.MovableTag = movable
	if _, _, ok := RegistryArch(im.CPUArchitecture); !ok {
		return fmt.Errorf("docker URL: cpu_architecture %q has no image platform (want x86_64, aarch64, arm64, ppc64le or s390x)", im.CPUArchitecture)
	}
	if im.Path == "" {
		im.Path = DefaultRegistryPath(im.CPUArchitecture)
		return nil
	}
	return checkImagePath(im.Path)
}

// checkImagePath accepts an absolute, clean path to a file.
func checkImagePath(p string) error {
	switch {
	case len(p) > maxImagePath:
		return fmt.Errorf("path: longer than %d bytes", maxImagePath)
	case strings.ContainsRune(p, 0):
		return errors.New("path: contains a NUL byte")
	case !strings.HasPrefix(p, "/") || p == "/":
		return fmt.Errorf("path %q: want an absolute path to a file", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q: not clean (want %q)", p, path.Clean(p))
	}
	return nil
}
