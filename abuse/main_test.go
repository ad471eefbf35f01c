//go:build abuse

package abuse

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// isoedgeBin is the binary under test: $ISOEDGE_BIN, or one built from the
// repository root by TestMain.
var isoedgeBin string

func TestMain(m *testing.M) {
	bin := os.Getenv("ISOEDGE_BIN")
	var tmp string
	if bin == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "isoedge-abuse-"); err != nil {
			fmt.Fprintln(os.Stderr, "abuse:", err)
			os.Exit(1)
		}
		bin = filepath.Join(tmp, "isoedge")
		if err := buildBinary(bin); err != nil {
			fmt.Fprintln(os.Stderr, "abuse:", err)
			os.RemoveAll(tmp)
			os.Exit(1)
		}
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		os.Exit(1)
	}
	if st, err := os.Stat(abs); err != nil || !st.Mode().IsRegular() {
		fmt.Fprintf(os.Stderr, "abuse: ISOEDGE_BIN %s is not a file: %v\n", abs, err)
		os.Exit(1)
	}
	isoedgeBin = abs
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// buildBinary runs `go build -o out .` in the module root.
func buildBinary(out string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build in %s: %w\n%s", root, err, b)
	}
	return nil
}
