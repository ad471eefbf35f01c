// Package cli is isoedge's offline command line: it customizes images on
// disk with the same plans the service serves.
package cli

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/internal/version"
	"golang.org/x/sys/unix"
)

// The offline commands build the same plans as the service and write them
// to a file.
const cliUsage = `usage:
  isoedge                      serve; configuration comes from the environment
  isoedge inspect [--json] ISO
  isoedge customize ISO -o OUT --ignition FILE [--karg K]... [--network-ramdisk FILE]
  isoedge customize-initrd ISO -o OUT --ignition FILE [--network-ramdisk FILE]
  isoedge version              print the version (also --version)

inspect           print the embed areas and boot files found in ISO
                  (--json: the stored layout)
customize         write ISO with the ignition config embedded, kernel arguments
                  appended and, for minimal ISOs, the static-network ramdisk
customize-initrd  write the PXE initrd: the ISO's initrd followed by the
                  ignition archive and the ramdisk
`

// usageError is a command line mistake: exit status 2 and the usage text.
type usageError string

func (e usageError) Error() string { return string(e) }

func usagef(format string, a ...any) error { return usageError(fmt.Sprintf(format, a...)) }

// Run runs one offline command and returns the process exit status:
// 0 on success, 1 when the command fails, 2 for a usage error.
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "isoedge: no command\n\n%s", cliUsage)
		return 2
	}
	var err error
	switch cmd := args[0]; cmd {
	case "inspect":
		err = cliInspect(args[1:], stdout)
	case "customize":
		err = cliCustomize(args[1:], false, stdout)
	case "customize-initrd":
		err = cliCustomize(args[1:], true, stdout)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version.String())
		return 0
	case "help", "-h", "-help", "--help":
		err = flag.ErrHelp
	default:
		err = usagef("unknown command %q", cmd)
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, cliUsage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "isoedge: %s\n\n%s", ue, cliUsage)
		return 2
	default:
		fmt.Fprintln(stderr, "isoedge:", err)
		return 1
	}
}

// parseArgs parses flags that may come before or after the positional
// arguments ("customize ISO -o OUT" and "customize -o OUT ISO").
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError(err.Error())
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// openISO opens and parses a base image.
func openISO(p string) (*os.File, *customize.Layout, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is not a regular file", p)
		}
		return nil, nil, err
	}
	l, err := customize.ParseLayout(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return f, l, nil
}

func cliInspect(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the layout as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("inspect takes one ISO, got %d arguments", len(pos))
	}
	f, l, err := openISO(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	if *asJSON {
		b, err := json.MarshalIndent(l, "", "  ")
		if err != nil {
			return err
		}
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	return printLayout(stdout, f, l)
}

func printLayout(stdout io.Writer, f *os.File, l *customize.Layout) error {
	w := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "volume id:\t%s\n", l.VolumeID)
	fmt.Fprintf(w, "size:\t%d bytes\n", l.Size)
	arch, why := guessArch(f, l)
	fmt.Fprintf(w, "architecture:\t%s (guess: %s)\n", arch, why)
	if l.Ignition.Len > 0 {
		free, err := freeTail(f, l.Ignition)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "ignition area:\t%s, ISO offset %d, length %d, free %d\n", l.IgnitionFile, l.Ignition.Off, l.Ignition.Len, free)
	} else {
		fmt.Fprintf(w, "ignition area:\tnone (%s not found)\n", l.IgnitionFile)
	}
	if len(l.KargAreas) == 0 {
		fmt.Fprintf(w, "karg areas:\tnone (%s)\n", l.KargsProblem)
	}
	for i, k := range l.KargAreas {
		label := ""
		if i == 0 {
			label = "karg areas:"
		}
		fmt.Fprintf(w, "%s\t%s, ISO offset %d, length %d\n", label, k.Path, k.Off, k.Len)
	}
	if l.KargsDefault != "" {
		fmt.Fprintf(w, "default kargs:\t%s\n", l.KargsDefault)
	}
	if a, ok := l.Files[customize.PathCustomRamdisk]; ok {
		fmt.Fprintf(w, "ramdisk area:\t%s, ISO offset %d, length %d\n", customize.PathCustomRamdisk, a.Off, a.Len)
	}
	var pxe []string
	for p := range l.Files {
		if strings.HasPrefix(p, "images/pxeboot/") {
			pxe = append(pxe, p)
		}
	}
	slices.Sort(pxe)
	if len(pxe) == 0 {
		fmt.Fprintf(w, "pxeboot files:\tnone\n")
	}
	for i, p := range pxe {
		label := ""
		if i == 0 {
			label = "pxeboot files:"
		}
		fmt.Fprintf(w, "%s\t%s\t%d bytes\n", label, p, l.Files[p].Len)
	}
	return w.Flush()
}

// freeTail returns how many bytes at the end of a are zero: the room left
// in an embed area.
func freeTail(f *os.File, a customize.Area) (int64, error) {
	buf := make([]byte, 64<<10)
	end := a.Off + a.Len
	for end > a.Off {
		n := min(int64(len(buf)), end-a.Off)
		b := buf[:n]
		if _, err := f.ReadAt(b, end-n); err != nil {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				return a.Off + a.Len - (end - n + int64(i) + 1), nil
			}
		}
		end -= n
	}
	return a.Len, nil
}

// guessArch guesses the image's architecture from the kernel's header,
// else from the boot files present.
func guessArch(f *os.File, l *customize.Layout) (arch, why string) {
	if k, err := l.Kernel(); err == nil && k.Len >= 0x240 {
		var h [0x240]byte
		if _, err := f.ReadAt(h[:], k.Off); err == nil {
			switch {
			case string(h[:4]) == "\x7fELF":
				m := binary.LittleEndian.Uint16(h[18:])
				if h[5] == 2 { // big-endian
					m = binary.BigEndian.Uint16(h[18:])
				}
				switch m {
				case 62:
					return "x86_64", "ELF kernel"
				case 183:
					return "aarch64", "ELF kernel"
				case 21:
					return "ppc64le", "ELF kernel"
				case 22:
					return "s390x", "ELF kernel"
				}
			case string(h[0x202:0x206]) == "HdrS":
				return "x86_64", "bzImage kernel"
			case string(h[0x38:0x3c]) == "ARM\x64", string(h[4:8]) == "zimg":
				return "aarch64", "arm64 kernel image"
			}
		}
	}
	has := func(p string) bool { _, ok := l.Files[p]; return ok }
	switch {
	case has(customize.PathGenericIns) || has("images/cdboot.img") || len(l.AddrsizeHead) > 0:
		return "s390x", "s390x boot files"
	case has("isolinux/isolinux.bin") || has("isolinux/isolinux.cfg"):
		return "x86_64", "isolinux present"
	case has("images/efiboot.img"):
		return "aarch64", "EFI boot image without isolinux"
	case has("boot/grub/grub.cfg"):
		return "ppc64le", "boot/grub/grub.cfg without an EFI image"
	}
	return "unknown", "no known boot files"
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cliCustomize(args []string, initrd bool, stdout io.Writer) error {
	name := "customize"
	if initrd {
		name = "customize-initrd"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	out := fs.String("o", "", "output file")
	ignPath := fs.String("ignition", "", "ignition config file")
	ramdiskPath := fs.String("network-ramdisk", "", "static-network ramdisk (gzip'd cpio)")
	var kargs stringList
	if !initrd {
		fs.Var(&kargs, "karg", "kernel argument to append (repeatable)")
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 1:
		return usagef("%s takes one ISO, got %d arguments", name, len(pos))
	case *out == "":
		return usagef("%s needs -o OUT", name)
	case *ignPath == "":
		return usagef("%s needs --ignition FILE", name)
	}
	for _, k := range kargs {
		if err := customize.CheckKernelArgument(k); err != nil {
			return usagef("bad --karg: %v", err)
		}
	}
	f, l, err := openISO(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	ign, err := os.ReadFile(*ignPath)
	if err != nil {
		return err
	}
	archive, err := customize.IgnitionArchive(ign)
	if err != nil {
		return err
	}
	var ramdisk []byte
	if *ramdiskPath != "" {
		if _, ok := l.Files[customize.PathCustomRamdisk]; !ok && !initrd {
			return fmt.Errorf("--network-ramdisk: %s has no %s (only minimal ISOs have a ramdisk area)", pos[0], customize.PathCustomRamdisk)
		}
		if ramdisk, err = os.ReadFile(*ramdiskPath); err != nil {
			return err
		}
	}
	var plan customize.Plan
	if initrd {
		plan, err = customize.PXEInitrd(l, pos[0], archive, ramdisk)
	} else {
		plan, err = customize.ISO(l, pos[0], customize.Overlay{Ignition: archive, Kargs: kargs, Ramdisk: ramdisk})
	}
	if err != nil {
		return err
	}
	st, err := writePlanFile(*out, f, plan)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes (%d copied in the kernel, %d from memory)\n", *out, plan.Size, st.zeroCopy, st.patched)
	return nil
}

// copyStats says how a plan's bytes reached the output file.
type copyStats struct {
	zeroCopy int64 // base bytes copied by copy_file_range
	fallback int64 // base bytes copied through user space
	patched  int64 // patch bytes written from memory
	holes    int64 // zero bytes left as holes
}

// writePlanFile writes p to path atomically: into a temporary file in the
// same directory, synced, then renamed over path.
func writePlanFile(path string, src *os.File, p customize.Plan) (st copyStats, err error) {
	tmp, err := customize.CreateTempFor(path)
	if err != nil {
		return st, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if st, err = writePlan(tmp, src, p); err != nil {
		return st, err
	}
	err = customize.CommitFile(tmp, path)
	return st, err
}

// writePlan writes p into dst, a new empty file, at explicit offsets: base
// extents with copy_file_range (the kernel copies, or shares, the blocks),
// patches from memory, zero segments left as holes.
func writePlan(dst, src *os.File, p customize.Plan) (copyStats, error) {
	if err := p.Validate(); err != nil {
		return copyStats{}, err
	}
	var st copyStats
	var pos int64
	for _, s := range p.Segs {
		switch s.Kind {
		case customize.FromData:
			if _, err := dst.WriteAt(s.Data[s.Off:s.Off+s.Len], pos); err != nil {
				return st, err
			}
			st.patched += s.Len
		case customize.FromZero:
			st.holes += s.Len
		case customize.FromBase:
			zc, fb, err := copyRange(dst, pos, src, s.Off, s.Len)
			st.zeroCopy += zc
			st.fallback += fb
			if err != nil {
				return st, err
			}
		}
		pos += s.Len
	}
	return st, dst.Truncate(p.Size)
}

const maxCopyChunk = 1 << 30

// copyFileRange is the system call; tests replace it to take the fallback.
var copyFileRange = unix.CopyFileRange

// copyRange copies n bytes of src at srcOff to dst at dstOff with
// copy_file_range, neither file's position moving. Where the kernel or
// file system cannot (ENOSYS, EXDEV, EOPNOTSUPP, …, or a silent 0 on
// kernels before 5.19) the rest is copied through user space.
func copyRange(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) (zeroCopy, fallback int64, err error) {
	defer runtime.KeepAlive(src)
	defer runtime.KeepAlive(dst)
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for n > 0 {
		c, err := copyFileRange(sfd, &srcOff, dfd, &dstOff, int(min(n, maxCopyChunk)), 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			switch err {
			case unix.ENOSYS, unix.EXDEV, unix.EINVAL, unix.EIO, unix.EOPNOTSUPP, unix.EPERM:
			default:
				return zeroCopy, 0, fmt.Errorf("copy_file_range: %w", err)
			}
		}
		if err != nil || c == 0 {
			break
		}
		zeroCopy += int64(c)
		n -= int64(c)
	}
	if n == 0 {
		return zeroCopy, 0, nil
	}
	fallback, err = io.Copy(io.NewOffsetWriter(dst, dstOff), io.NewSectionReader(src, srcOff, n))
	if err == nil && fallback != n {
		err = fmt.Errorf("copying the base image: %w after %d of %d bytes", io.ErrUnexpectedEOF, fallback, n)
	}
	return zeroCopy, fallback, err
}
