package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/isoedge/isoedge/customize"
	"github.com/spf13/pflag"
)

const (
	outputUsage   = "write the image to `OUT` (\"-\": standard output) instead of changing ISO in place"
	ignitionUsage = "the Ignition config `FILE` (standard input when absent or \"-\")"
)

// isoCommands are the "iso" verbs.
func isoCommands() []*command {
	return []*command{
		{name: "iso", group: true},
		{name: "iso ignition", group: true},
		{
			name: "iso ignition embed", synopsis: "[-f] [-i FILE] [-o OUT] ISO",
			summary: "embed an Ignition config in a live ISO",
			about: `The config must be JSON with ignition.version. It is stored as the
service stores it: a gzip'd cpio archive holding config.ign at the start of
the ignition area, the rest of the area zeroed. An image that already has
something in its ignition area is refused unless -f is given.`,
			setup: setupIgnitionEmbed,
		},
		{
			name: "iso ignition show", synopsis: "ISO",
			summary: "print the embedded Ignition config",
			about:   `Prints config.ign byte for byte; fails (exit 1) when none is embedded.`,
			setup:   setupIgnitionShow,
		},
		{
			name: "iso ignition remove", synopsis: "[-o OUT] ISO",
			summary: "zero the ignition area",
			setup:   setupIgnitionRemove,
		},
		{name: "iso kargs", group: true},
		{
			name: "iso kargs modify", synopsis: "[-a KARG]... [-d KARG]... [-r KEY=OLD=NEW]... [-o OUT] ISO",
			summary: "edit the live kernel arguments",
			about: `The kernel arguments are the defaults (coreos/kargs.json) followed by
what is appended in the embed area. The edit applies to the whole list, in
coreos-installer's order: every argument equal to a --delete one is removed,
the --append ones are added, then every KEY=OLD of a --replace becomes
KEY=NEW. The result is written in every boot config.`,
			setup: setupKargsModify,
		},
		{
			name: "iso kargs show", synopsis: "[--default] ISO",
			summary: "print the live kernel arguments",
			setup:   setupKargsShow,
		},
		{
			name: "iso kargs reset", synopsis: "[-o OUT] ISO",
			summary: "set the kernel arguments back to the defaults",
			setup:   setupKargsReset,
		},
		{name: "iso extract", group: true},
		{
			name: "iso extract pxe", synopsis: "[-o DIR] ISO",
			summary: "copy the kernel, initramfs and rootfs out of an ISO",
			about: `Every file of images/pxeboot is written to DIR as <ISO name without
extension>-<file name> (e.g. rhcos-live-vmlinuz, rhcos-live-initrd.img,
rhcos-live-rootfs.img), and its path printed. Existing files are not
overwritten.`,
			setup: setupExtractPXE,
		},
		{
			name: "iso extract minimal-iso", synopsis: "--rootfs-url URL ISO OUT",
			summary: "write the minimal ISO template the service serves",
			about: `The template is the ISO without images/pxeboot/rootfs.img, booting with
coreos.live.rootfs_url=URL and carrying an empty 1 MiB ramdisk area for the
static network configuration. OUT "-" is standard output. A customized ISO
is refused: reset it first.`,
			setup: setupExtractMinimal,
		},
		{
			name: "iso reset", synopsis: "[-o OUT] ISO",
			summary: "restore the pristine image: ignition (and ramdisk) area zeroed, default kernel arguments",
			setup:   setupISOReset,
		},
	}
}

// openForChange opens an ISO and reads what it holds.
func openForChange(p string) (*os.File, *customize.Layout, ignitionState, kargState, error) {
	f, l, err := openISO(p)
	if err != nil {
		return nil, nil, ignitionState{}, kargState{}, err
	}
	ign, err := readIgnitionState(f, l)
	if err == nil {
		var ks kargState
		if ks, err = readKargState(f, l); err == nil {
			return f, l, ign, ks, nil
		}
	}
	f.Close()
	return nil, nil, ignitionState{}, kargState{}, fmt.Errorf("%s: %w", p, err)
}

func setupIgnitionEmbed(fs *pflag.FlagSet) runFunc {
	force := fs.BoolP("force", "f", false, "replace whatever the ignition area holds")
	ign := fs.StringP("ignition-file", "i", "", ignitionUsage)
	out := fs.StringP("output", "o", "", outputUsage)
	return func(e *env, args []string) error {
		if err := argCount(args, 1, "one ISO"); err != nil {
			return err
		}
		t, err := outputFor(*out, args[0])
		if err != nil {
			return err
		}
		f, l, st, ks, err := openForChange(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if l.Ignition.Len == 0 {
			return fmt.Errorf("%s: %w: the image has no ignition area (%s)", args[0], customize.ErrNoEmbedArea, l.IgnitionFile)
		}
		if st.embedded() && !*force {
			return fmt.Errorf("%s already has %s; use -f to replace it", args[0], st.describe())
		}
		config, err := readIgnition(e, *ign)
		if err != nil {
			return err
		}
		archive, err := customize.IgnitionArchive(config)
		if err != nil {
			return err
		}
		plan, err := isoPlan(l, args[0], ks, isoChange{ignition: archive})
		if err != nil {
			return err
		}
		_, err = emit(e, t, f, plan)
		return err
	}
}

// describe says what the ignition area holds.
func (s ignitionState) describe() string {
	switch {
	case !s.embedded():
		return "no embedded Ignition config"
	case s.Config != nil:
		return fmt.Sprintf("an embedded Ignition config (%d bytes)", len(s.Config))
	default:
		return fmt.Sprintf("%d bytes in its ignition area that are not an Ignition config (%s)", s.Used, s.Problem)
	}
}

func setupIgnitionShow(fs *pflag.FlagSet) runFunc {
	return func(e *env, args []string) error {
		return withISO(args, func(name string, f *os.File, l *customize.Layout) error {
			st, err := readIgnitionState(f, l)
			if err != nil {
				return err
			}
			switch {
			case l.Ignition.Len == 0:
				return fmt.Errorf("%s: the image has no ignition area", name)
			case !st.embedded():
				return fmt.Errorf("%s has no embedded Ignition config", name)
			case st.Config == nil:
				return fmt.Errorf("%s: the ignition area holds %d bytes that are not an Ignition config: %s", name, st.Used, st.Problem)
			}
			_, err = e.stdout.Write(st.Config)
			return err
		})
	}
}

func setupIgnitionRemove(fs *pflag.FlagSet) runFunc {
	out := fs.StringP("output", "o", "", outputUsage)
	return func(e *env, args []string) error {
		return changeISO(e, args, *out, func(l *customize.Layout, st ignitionState, ks kargState) (isoChange, error) {
			if l.Ignition.Len == 0 {
				return isoChange{}, fmt.Errorf("%w: the image has no ignition area (%s)", customize.ErrNoEmbedArea, l.IgnitionFile)
			}
			return isoChange{ignition: []byte{}}, nil
		})
	}
}

// changeISO runs a command that rewrites one ISO (args) as change says.
func changeISO(e *env, args []string, out string, change func(*customize.Layout, ignitionState, kargState) (isoChange, error)) error {
	if err := argCount(args, 1, "one ISO"); err != nil {
		return err
	}
	t, err := outputFor(out, args[0])
	if err != nil {
		return err
	}
	f, l, st, ks, err := openForChange(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := change(l, st, ks)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	plan, err := isoPlan(l, args[0], ks, c)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	_, err = emit(e, t, f, plan)
	return err
}

func setupKargsModify(fs *pflag.FlagSet) runFunc {
	add := fs.StringArrayP("append", "a", nil, "append kernel argument `KARG` (repeatable)")
	del := fs.StringArrayP("delete", "d", nil, "delete every kernel argument equal to `KARG` (repeatable)")
	repl := fs.StringArrayP("replace", "r", nil, "replace KEY=OLD by KEY=NEW, given as `KEY=OLD=NEW` (repeatable)")
	out := fs.StringP("output", "o", "", outputUsage)
	return func(e *env, args []string) error {
		edit, err := parseKargEdit(*del, *add, *repl)
		if err != nil {
			return err
		}
		if len(*add)+len(*del)+len(*repl) == 0 {
			return usagef("nothing to do: give -a, -d or -r")
		}
		return changeISO(e, args, *out, func(l *customize.Layout, st ignitionState, ks kargState) (isoChange, error) {
			if err := ks.check(); err != nil {
				return isoChange{}, err
			}
			kargs, notes := edit.apply(ks.Current)
			for _, n := range notes {
				fmt.Fprintln(e.stderr, "isoedge: warning:", n)
			}
			return isoChange{kargs: &kargs}, nil
		})
	}
}

func setupKargsShow(fs *pflag.FlagSet) runFunc {
	def := fs.BoolP("default", "d", false, "print the default kernel arguments instead")
	return func(e *env, args []string) error {
		return withISO(args, func(name string, f *os.File, l *customize.Layout) error {
			ks, err := readKargState(f, l)
			if err != nil {
				return err
			}
			if err := ks.check(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			kargs := ks.Current
			if *def {
				kargs = ks.Default
			}
			_, err = fmt.Fprintln(e.stdout, kargs)
			return err
		})
	}
}

func setupKargsReset(fs *pflag.FlagSet) runFunc {
	out := fs.StringP("output", "o", "", outputUsage)
	return func(e *env, args []string) error {
		return changeISO(e, args, *out, func(l *customize.Layout, st ignitionState, ks kargState) (isoChange, error) {
			if err := ks.check(); err != nil {
				return isoChange{}, err
			}
			return isoChange{kargs: &ks.Default}, nil
		})
	}
}

func setupISOReset(fs *pflag.FlagSet) runFunc {
	out := fs.StringP("output", "o", "", outputUsage)
	return func(e *env, args []string) error {
		return changeISO(e, args, *out, func(l *customize.Layout, st ignitionState, ks kargState) (isoChange, error) {
			c := isoChange{clearRamdisk: true}
			if l.Ignition.Len > 0 {
				c.ignition = []byte{}
			}
			if len(l.KargAreas) > 0 {
				// An image whose appended arguments cannot be told from
				// the defaults cannot be reset.
				if err := ks.check(); err != nil {
					return c, err
				}
				c.kargs = &ks.Default
			}
			return c, nil
		})
	}
}

// errCustomized refuses to derive a template from a customized image.
var errCustomized = errors.New("the image is customized; run 'isoedge iso reset' on it (or a copy) first")
