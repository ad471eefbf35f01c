package version

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := &debug.BuildInfo{
		Main:     debug.Module{Path: "github.com/isoedge/isoedge", Version: "v0.0.0-20260101000000-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}},
	}
	devel := &debug.BuildInfo{Main: debug.Module{Path: "github.com/isoedge/isoedge", Version: "(devel)"}}
	tests := []struct {
		name         string
		ldV, ldR     string
		info         *debug.BuildInfo
		ok           bool
		wantV, wantR string
	}{
		{"ldflags win", "v1.2.0-3-gabc1234-dirty", "abc1234def", vcs, true, "v1.2.0-3-gabc1234-dirty", "abc1234def"},
		{"build info", "", "", vcs, true, "v0.0.0-20260101000000-0123456789ab+dirty", "0123456789abcdef"},
		{"ldflags version only", "v1.0.0", "", vcs, true, "v1.0.0", "0123456789abcdef"},
		{"devel module, no vcs", "", "", devel, true, DevelVersion, UnknownRevision},
		{"no build info", "", "", nil, false, DevelVersion, UnknownRevision},
	}
	for _, tt := range tests {
		v, r := resolve(tt.ldV, tt.ldR, tt.info, tt.ok)
		if v != tt.wantV || r != tt.wantR {
			t.Errorf("%s: resolve = %q, %q; want %q, %q", tt.name, v, r, tt.wantV, tt.wantR)
		}
	}
}

func TestString(t *testing.T) {
	s := String()
	want := "isoedge " + Version() + " (revision " + Revision() + ", " + runtime.Version() + ")"
	if s != want || GoVersion() != runtime.Version() || Version() == "" || Revision() == "" {
		t.Errorf("String() = %q, want %q", s, want)
	}
}

// TestMakefileStampsVersion builds a program printing this package's
// answers with the -ldflags of the Makefile's build target (as `make -n`
// prints them) and checks that both values arrive.
func TestMakefileStampsVersion(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go not in PATH:", err)
	}
	const v, r = "v9.8.7-1-gfeedbee-dirty", "feedbee0123456789feedbee0123456789feedbe"
	out, err := exec.Command("make", "-s", "-n", "-C", "../..", "build", "VERSION="+v, "REVISION="+r, "GO="+goBin).Output()
	if err != nil {
		t.Fatalf("make -n build: %v", err)
	}
	m := regexp.MustCompile(`-ldflags "([^"]*)"`).FindStringSubmatch(string(out))
	if m == nil || !strings.Contains(string(out), "-trimpath") {
		t.Fatalf("make -n build printed %q: no -trimpath or no -ldflags", out)
	}
	bin := filepath.Join(t.TempDir(), "printversion")
	build := exec.Command(goBin, "build", "-trimpath", "-ldflags", m[1], "-o", bin, "./testdata/printversion")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	got, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := v + "\n" + r + "\n" + runtime.Version() + "\n" + "isoedge " + v + " (revision " + r + ", " + runtime.Version() + ")\n"
	if string(got) != want {
		t.Errorf("stamped binary printed\n%s\nwant\n%s", got, want)
	}
}
