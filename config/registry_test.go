package config

import (
	"strings"
	"testing"
)

const mosDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func dockerEntry(arch, url, extra string) string {
	return `[{"openshift_version":"4.20","cpu_architecture":"` + arch + `","url":"` + url + `","version":"420.9"` + extra + `}]`
}

func TestParseOSImagesDocker(t *testing.T) {
	for _, c := range []struct {
		name, in          string
		wantPath          string
		wantMovable       bool
		wantErr, notInErr string
	}{
		{name: "digest, default path", in: dockerEntry("x86_64", "docker://quay.io/openshift-release-dev/ocp-v4.0-art-dev@"+mosDigest, ""), wantPath: "/coreos/coreos-x86_64.iso"},
		{name: "arm64 spelling", in: dockerEntry("arm64", "docker://mirror.example.com:5000/ocp/mos@"+mosDigest, ""), wantPath: "/coreos/coreos-aarch64.iso"},
		{name: "aarch64", in: dockerEntry("aarch64", "docker://localhost/mos@"+mosDigest, ""), wantPath: "/coreos/coreos-aarch64.iso"},
		{name: "ppc64le", in: dockerEntry("ppc64le", "docker://127.0.0.1:5000/mos@"+mosDigest, ""), wantPath: "/coreos/coreos-ppc64le.iso"},
		{name: "s390x, scheme in capitals", in: dockerEntry("s390x", "DOCKER://quay.io/mos@"+mosDigest, ""), wantPath: "/coreos/coreos-s390x.iso"},
		{name: "tag is movable", in: dockerEntry("x86_64", "docker://quay.io/mos:4.20", ""), wantPath: "/coreos/coreos-x86_64.iso", wantMovable: true},
		{name: "tag and digest", in: dockerEntry("x86_64", "docker://quay.io/mos:4.20@"+mosDigest, ""), wantPath: "/coreos/coreos-x86_64.iso"},
		{name: "explicit path", in: dockerEntry("x86_64", "docker://quay.io/mos@"+mosDigest, `,"path":"/srv/images/rhcos.iso"`), wantPath: "/srv/images/rhcos.iso"},

		{name: "no tag or digest", in: dockerEntry("x86_64", "docker://quay.io/mos", ""), wantErr: "docker URL"},
		{name: "no registry host", in: dockerEntry("x86_64", "docker://openshift/mos@"+mosDigest, ""), wantErr: "registry host must be explicit"},
		{name: "host only", in: dockerEntry("x86_64", "docker://quay.io", ""), wantErr: "want docker://HOST"},
		{name: "credentials in URL", in: dockerEntry("x86_64", "docker://user:hunter2@quay.io/mos@"+mosDigest, ""), wantErr: "use REGISTRY_AUTH_FILE", notInErr: "hunter2"},
		{name: "sha512 digest", in: dockerEntry("x86_64", "docker://quay.io/mos@sha512:"+strings.Repeat("ab", 64), ""), wantErr: "only sha256"},
		{name: "short digest", in: dockerEntry("x86_64", "docker://quay.io/mos@sha256:abcd", ""), wantErr: "docker URL"},
		{name: "query", in: dockerEntry("x86_64", "docker://quay.io/mos:4.20?token=x", ""), wantErr: "query or fragment"},
		{name: "upper-case repository", in: dockerEntry("x86_64", "docker://quay.io/MOS:4.20", ""), wantErr: "docker URL"},
		{name: "unknown architecture", in: dockerEntry("riscv64", "docker://quay.io/mos@"+mosDigest, ""), wantErr: `cpu_architecture "riscv64" has no image platform`},
		{name: "relative path", in: dockerEntry("x86_64", "docker://quay.io/mos@"+mosDigest, `,"path":"coreos/x.iso"`), wantErr: "want an absolute path"},
		{name: "root path", in: dockerEntry("x86_64", "docker://quay.io/mos@"+mosDigest, `,"path":"/"`), wantErr: "want an absolute path"},
		{name: "unclean path", in: dockerEntry("x86_64", "docker://quay.io/mos@"+mosDigest, `,"path":"/coreos/../etc/x.iso"`), wantErr: "not clean"},
		{name: "trailing slash", in: dockerEntry("x86_64", "docker://quay.io/mos@"+mosDigest, `,"path":"/coreos/"`), wantErr: "not clean"},
		{name: "NUL in path", in: dockerEntry("x86_64", "docker://quay.io/mos@"+mosDigest, `,"path":"/a\u0000b"`), wantErr: "NUL"},
		{name: "long path", in: dockerEntry("x86_64", "docker://quay.io/mos@"+mosDigest, `,"path":"/`+strings.Repeat("a", maxImagePath)+`"`), wantErr: "longer than"},
		{name: "path on an https entry", in: dockerEntry("x86_64", "https://example.com/a.iso", `,"path":"/coreos/x.iso"`), wantErr: "only docker:// URLs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			images, err := ParseOSImages(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				if c.notInErr != "" && strings.Contains(err.Error(), c.notInErr) {
					t.Errorf("error %q shows %q", err, c.notInErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if im := images[0]; im.Path != c.wantPath || im.MovableTag != c.wantMovable {
				t.Errorf("got path %q movable %v, want %q %v", im.Path, im.MovableTag, c.wantPath, c.wantMovable)
			}
		})
	}
}

func TestParseDockerURLReference(t *testing.T) {
	ref, movable, err := ParseDockerURL("docker://mirror.example.com:5000/ocp/release/mos@" + mosDigest)
	if err != nil || movable {
		t.Fatalf("ParseDockerURL: %v, movable %v", err, movable)
	}
	if ref.Context().RegistryStr() != "mirror.example.com:5000" || ref.Context().RepositoryStr() != "ocp/release/mos" || ref.Identifier() != mosDigest {
		t.Errorf("parsed %s / %s / %s", ref.Context().RegistryStr(), ref.Context().RepositoryStr(), ref.Identifier())
	}
	for _, u := range []string{"https://quay.io/mos:1", "docker:/quay.io/mos:1", "", "docker://"} {
		if _, _, err := ParseDockerURL(u); err == nil {
			t.Errorf("ParseDockerURL(%q) accepted", u)
		}
	}
}

func TestRegistryAuthFileVariable(t *testing.T) {
	c, err := Load(envMap(map[string]string{"REGISTRY_AUTH_FILE": "/run/secrets/pull-secret.json"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RegistryAuthFile != "/run/secrets/pull-secret.json" || c.Redacted()["REGISTRY_AUTH_FILE"] != c.RegistryAuthFile {
		t.Errorf("RegistryAuthFile = %q, Redacted %q", c.RegistryAuthFile, c.Redacted()["REGISTRY_AUTH_FILE"])
	}
	c, err = Load(envMap(map[string]string{"CLUSTER-IMAGE_REGISTRY_AUTH_FILE": "/a.json", "REGISTRY_AUTH_FILE": "/b.json"}))
	if err != nil || c.RegistryAuthFile != "/a.json" {
		t.Errorf("prefixed name: %v, %q", err, c.RegistryAuthFile)
	}
}
