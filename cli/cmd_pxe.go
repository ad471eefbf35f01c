package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/isoedge/isoedge/customize"
	"github.com/spf13/pflag"
)

// pxeCommands are the "pxe" verbs: they work on the PXE initramfs and the
// archive appended to it, not on the ISO.
func pxeCommands() []*command {
	return []*command{
		{name: "pxe", group: true},
		{name: "pxe ignition", group: true},
		{
			name: "pxe ignition wrap", synopsis: "[-i FILE] [-o OUT]",
			summary: "wrap an Ignition config in an initrd archive",
			about: `Writes the gzip'd cpio archive holding config.ign that the service appends
to the PXE initramfs (4-byte padded, so another archive may follow it). Give
it to the boot loader as a second initrd, or append it to the initramfs.`,
			setup: setupPXEWrap,
		},
		{
			name: "pxe ignition unwrap", synopsis: "[FILE]",
			summary: "print the Ignition config of a wrapped archive",
			about: `FILE (standard input when absent or "-") is an archive written by
'pxe ignition wrap', or gzip'd or plain cpio archives concatenated (such as
an initramfs whose parts are all gzip'd); the last config.ign wins, as when
the kernel unpacks them.`,
			setup: setupPXEUnwrap,
		},
		{
			name: "pxe customize", synopsis: "[-i FILE] [--network-ramdisk FILE] -o OUT INITRAMFS",
			summary: "append an Ignition config (and a network ramdisk) to a PXE initramfs",
			about: `OUT is INITRAMFS followed by the Ignition archive and the ramdisk: the
service's pxe-initrd. INITRAMFS is the live initramfs itself
(images/pxeboot/initrd.img, or rhcos-live-initramfs.x86_64.img).`,
			setup: setupPXECustomize,
		},
	}
}

func setupPXEWrap(fs *pflag.FlagSet) runFunc {
	ign := fs.StringP("ignition-file", "i", "", ignitionUsage)
	out := fs.StringP("output", "o", "-", "write the archive to `OUT` (\"-\": standard output)")
	return func(e *env, args []string) error {
		if err := argCount(args, 0, "no arguments"); err != nil {
			return err
		}
		if *out == "" {
			return usagef("the output file name is empty")
		}
		config, err := readIgnition(e, *ign)
		if err != nil {
			return err
		}
		archive, err := customize.IgnitionArchive(config)
		if err != nil {
			return err
		}
		t := target{path: *out}
		if *out == "-" {
			t.path = ""
		}
		return emitBytes(e, t, archive)
	}
}

func setupPXEUnwrap(fs *pflag.FlagSet) runFunc {
	return func(e *env, args []string) error {
		if len(args) > 1 {
			return usagef("takes at most one file, got %d arguments", len(args))
		}
		var r io.Reader = e.stdin
		var f *os.File
		name := "standard input"
		if len(args) == 1 && args[0] != "-" {
			var err error
			if f, err = openFile(args[0]); err != nil {
				return err
			}
			defer f.Close()
			r, name = f, args[0]
		}
		_, config, end, err := unwrapArchives(bufio.NewReader(r))
		if errors.Is(err, errUnknownData) && f != nil {
			// An xz- or zstd-compressed initramfs with archives appended.
			config, err = findAppended(f, end)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if config == nil {
			return fmt.Errorf("%s holds no config.ign", name)
		}
		_, err = e.stdout.Write(config)
		return err
	}
}

// maxResyncs bounds how many gzip headers findAppended tries.
const maxResyncs = 4096

// findAppended finds the archives appended to an initramfs whose first
// part unwrapArchives cannot read (the live initramfs is xz- or
// zstd-compressed): it tries each gzip member header after off in turn
// and takes the config.ign of the first one from which gzip'd and plain
// archives run to the end of the file.
func findAppended(f *os.File, off int64) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	magic := []byte{0x1f, 0x8b, 8} // gzip, deflate
	buf := make([]byte, 1<<20)
	tries := 0
	for pos := off; pos < size; {
		n, err := f.ReadAt(buf, pos)
		if err != nil && err != io.EOF {
			return nil, err
		}
		i := bytes.Index(buf[:n], magic)
		if i < 0 {
			if n < len(magic) {
				break
			}
			pos += int64(n - len(magic) + 1)
			continue
		}
		start := pos + int64(i)
		if tries++; tries > maxResyncs {
			return nil, fmt.Errorf("no appended archive found after %d tries", maxResyncs)
		}
		_, config, _, err := unwrapArchives(bufio.NewReader(io.NewSectionReader(f, start, size-start)))
		if err == nil && config != nil {
			return config, nil
		}
		pos = start + 1
	}
	return nil, fmt.Errorf("data at byte %d is %w, and no gzip'd archive with config.ign follows it", off, errUnknownData)
}

func setupPXECustomize(fs *pflag.FlagSet) runFunc {
	ign := fs.StringP("ignition-file", "i", "", ignitionUsage)
	ramdisk := fs.String("network-ramdisk", "", "append the static-network ramdisk `FILE` (a gzip'd cpio) after the config")
	out := fs.StringP("output", "o", "", "write the initramfs to `OUT` (\"-\": standard output; required)")
	return func(e *env, args []string) error {
		if err := argCount(args, 1, "one initramfs"); err != nil {
			return err
		}
		if *out == "" {
			return usagef("needs -o OUT")
		}
		if *ramdisk == "-" && isStdin(*ign) {
			return usagef("only one of -i and --network-ramdisk can read standard input")
		}
		t, err := outputFor(*out, args[0])
		if err != nil {
			return err
		}
		f, err := openFile(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		var rd []byte
		if *ramdisk != "" {
			if rd, err = readInput(e, *ramdisk, maxRamdiskInput, "network ramdisk"); err != nil {
				return err
			}
		}
		config, err := readIgnition(e, *ign)
		if err != nil {
			return err
		}
		archive, err := customize.IgnitionArchive(config)
		if err != nil {
			return err
		}
		plan := customize.NewPlan(args[0], customize.Extent(0, st.Size()), customize.Patch(archive), customize.Patch(rd))
		_, err = emit(e, t, f, plan)
		return err
	}
}
