// Package version says which build of isoedge is running: the version and
// revision the Makefile stamps into the binary, else what the Go toolchain
// recorded (module version, VCS revision), else "devel" and "unknown".
//
// The Makefile's build target sets both with
//
//	-ldflags "-X github.com/isoedge/isoedge/internal/version.version=$(git describe --tags --always --dirty)
//	          -X github.com/isoedge/isoedge/internal/version.revision=$(git rev-parse HEAD)"
package version

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Set at link time with -ldflags -X; empty in a plain `go build`.
var (
	version  string
	revision string
)

// Unknown values.
const (
	DevelVersion    = "devel"
	UnknownRevision = "unknown"
)

var resolved = sync.OnceValues(func() (string, string) {
	info, ok := debug.ReadBuildInfo()
	return resolve(version, revision, info, ok)
})

// Version is the release this binary was built from, as `git describe
// --tags --always --dirty` printed it at build time (e.g. "v1.2.0",
// "v1.2.0-3-gabc1234-dirty"), else the main module's version, else
// DevelVersion.
func Version() string { v, _ := resolved(); return v }

// Revision is the full commit hash this binary was built from, else the
// vcs.revision the Go toolchain recorded, else UnknownRevision.
func Revision() string { _, r := resolved(); return r }

// GoVersion is the Go release that built the binary, e.g. "go1.26.8".
func GoVersion() string { return runtime.Version() }

// String is the one-line form for `isoedge --version` and the first log
// line: "isoedge <version> (revision <revision>, <go version>)".
func String() string {
	return "isoedge " + Version() + " (revision " + Revision() + ", " + GoVersion() + ")"
}

// resolve picks the version and revision from the link-time values, then
// the build information.
func resolve(ldVersion, ldRevision string, info *debug.BuildInfo, ok bool) (v, r string) {
	v, r = ldVersion, ldRevision
	if ok && info != nil {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		if r == "" {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					r = s.Value
				}
			}
		}
	}
	if v == "" {
		v = DevelVersion
	}
	if r == "" {
		r = UnknownRevision
	}
	return v, r
}
