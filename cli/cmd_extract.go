package cli

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/isoedge/isoedge/customize"
	"github.com/spf13/pflag"
)

// pxebootDir holds the PXE boot files of a live ISO.
const pxebootDir = "images/pxeboot/"

// pxeFiles returns the ISO paths of the files directly in images/pxeboot,
// sorted.
func pxeFiles(l *customize.Layout) []string {
	var out []string
	for p := range l.Files {
		if rest, ok := strings.CutPrefix(p, pxebootDir); ok && !strings.Contains(rest, "/") {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// extractName is the file name coreos-installer gives an extracted PXE
// file: the ISO's name without its extension, "-", the file's name.
func extractName(iso, isoPath string) string {
	base := filepath.Base(iso)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	if stem == "" {
		stem = base
	}
	return stem + "-" + strings.ToLower(path.Base(isoPath))
}

func setupExtractPXE(fs *pflag.FlagSet) runFunc {
	dir := fs.StringP("output-dir", "o", ".", "write the files into directory `DIR`")
	return func(e *env, args []string) error {
		return withISO(args, func(name string, f *os.File, l *customize.Layout) error {
			files := pxeFiles(l)
			if len(files) == 0 {
				return fmt.Errorf("%s: no files in %s", name, pxebootDir)
			}
			if err := os.MkdirAll(*dir, 0o755); err != nil {
				return err
			}
			for _, p := range files {
				dst := filepath.Join(*dir, extractName(name, p))
				if _, err := os.Lstat(dst); err == nil {
					return fmt.Errorf("%s exists; not overwriting it", dst)
				}
				plan, err := customize.Artifact(l, name, p)
				if err != nil {
					return err
				}
				if _, err := writePlanFile(dst, f, plan); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, dst)
			}
			return nil
		})
	}
}

func setupExtractMinimal(fs *pflag.FlagSet) runFunc {
	rootfsURL := fs.String("rootfs-url", "", "boot the minimal ISO with coreos.live.rootfs_url=`URL` (required)")
	return func(e *env, args []string) error {
		if err := argCount(args, 2, "an ISO and an output file"); err != nil {
			return err
		}
		if *rootfsURL == "" {
			return usagef("needs --rootfs-url URL")
		}
		if args[1] == "" {
			return usagef("the output file name is empty")
		}
		t, err := outputFor(args[1], args[0])
		if err != nil {
			return err
		}
		if t.path == "" {
			if err := checkNotTerminal(e.stdout); err != nil {
				return err
			}
		}
		f, l, st, ks, err := openForChange(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if st.embedded() || ks.customized() {
			return fmt.Errorf("%s: %w", args[0], errCustomized)
		}
		arch, _ := guessArch(f, l)
		out, workDir := t.path, filepath.Dir(t.path)
		if t.path == "" {
			// Built in a scratch directory, then streamed.
			if workDir, err = os.MkdirTemp("", "isoedge-minimal-"); err != nil {
				return err
			}
			defer os.RemoveAll(workDir)
			out = filepath.Join(workDir, "minimal.iso")
		}
		opt := customize.MinimalOptions{RootfsURL: *rootfsURL, Arch: arch, WorkDir: workDir}
		if err := customize.BuildMinimal(f, out, opt); err != nil {
			return err
		}
		if t.path != "" {
			return nil
		}
		m, err := os.Open(out)
		if err != nil {
			return err
		}
		defer m.Close()
		_, err = io.Copy(e.stdout, m)
		return err
	}
}
