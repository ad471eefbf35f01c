package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/isoedge/isoedge/customize"
	"github.com/spf13/pflag"
)

// olderCommands are the first spellings, which take the ISO for both
// the ISO and the PXE initrd.
func olderCommands() []*command {
	return []*command{
		{
			name: "inspect", synopsis: "[--json] ISO",
			summary: "print the embed areas, what they hold and the boot files of an ISO",
			about: `Prints the volume id, a guess of the architecture, the ignition area (file,
ISO offset, length, free space) and what is embedded in it, the kernel-argument
areas with the default, current and appended kernel arguments and the room
left, the ramdisk area of minimal ISOs and the images/pxeboot files. --json
prints the layout the service stores with the same facts added.`,
			setup: setupInspect,
		},
		{
			name: "customize", synopsis: "ISO -o OUT --ignition FILE [--karg KARG]... [--network-ramdisk FILE] [-f]",
			summary: "write ISO as the service serves it: ignition embedded, kernel arguments appended", older: true,
			about: `The output is the service's full ISO for this config: the config embedded
in the ignition area, the kernel arguments appended to the defaults in every
boot config and, for minimal ISOs, the ramdisk in its area. An ISO that is
already customized is refused unless -f is given; with -f the output holds
the new config and the defaults plus the new --karg values only.`,
			setup: setupCustomize,
		},
		{
			name: "customize-initrd", synopsis: "ISO -o OUT --ignition FILE [--network-ramdisk FILE]",
			summary: "write the PXE initrd of ISO: its initrd, the ignition archive, the ramdisk", older: true,
			about: `Like 'pxe customize' on the ISO's images/pxeboot/initrd.img.`,
			setup: setupCustomizeInitrd,
		},
	}
}

// commands lists every command, groups included.
func commands() []*command {
	var out []*command
	out = append(out, isoCommands()...)
	out = append(out, pxeCommands()...)
	return append(out, olderCommands()...)
}

func setupCustomize(fs *pflag.FlagSet) runFunc {
	out := fs.StringP("output", "o", "", "write the image to `OUT` (\"-\": standard output; required)")
	ign := fs.StringP("ignition", "i", "", "the Ignition config `FILE` to embed (\"-\": standard input; required)")
	kargs := fs.StringArray("karg", nil, "append kernel argument `KARG` (repeatable)")
	ramdisk := fs.String("network-ramdisk", "", "write the static-network ramdisk `FILE` (a gzip'd cpio) into a minimal ISO's ramdisk area")
	force := fs.BoolP("force", "f", false, "replace an existing customization")
	return func(e *env, args []string) error {
		if err := legacyArgs(args, *out, *ign); err != nil {
			return err
		}
		for _, k := range *kargs {
			if err := customize.CheckKernelArgument(k); err != nil {
				return usagef("bad --karg: %v", err)
			}
		}
		if *ramdisk == "-" && *ign == "-" {
			return usagef("only one of --ignition and --network-ramdisk can read standard input")
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
		ramdiskUsed := false
		if a, ok := l.Files[customize.PathCustomRamdisk]; ok {
			free, err := freeTail(f, a)
			if err != nil {
				return err
			}
			ramdiskUsed = free < a.Len
		}
		customized := st.embedded() || ks.customized() || ramdiskUsed
		if customized && !*force {
			return fmt.Errorf("%s is already customized (%s); use -f to replace that, or 'isoedge iso reset' first", args[0], customizedWhat(st, ks, ramdiskUsed))
		}
		config, err := readIgnition(e, *ign)
		if err != nil {
			return err
		}
		archive, err := customize.IgnitionArchive(config)
		if err != nil {
			return err
		}
		var rd []byte
		if *ramdisk != "" {
			if _, ok := l.Files[customize.PathCustomRamdisk]; !ok {
				return fmt.Errorf("--network-ramdisk: %s has no %s (only minimal ISOs have a ramdisk area)", args[0], customize.PathCustomRamdisk)
			}
			if rd, err = readInput(e, *ramdisk, maxRamdiskInput, "network ramdisk"); err != nil {
				return err
			}
		}
		var plan customize.Plan
		if !customized {
			// A pristine image: exactly the service's plan.
			plan, err = customize.ISO(l, args[0], customize.Overlay{Ignition: archive, Kargs: *kargs, Ramdisk: rd})
		} else {
			c := isoChange{ignition: archive, ramdisk: rd, clearRamdisk: true}
			if ks.Problem == "" {
				all := strings.TrimSpace(ks.Default + " " + strings.Join(*kargs, " "))
				c.kargs = &all
			} else if len(*kargs) > 0 {
				return fmt.Errorf("%s: %w", args[0], ks.check())
			}
			plan, err = isoPlan(l, args[0], ks, c)
		}
		if err != nil {
			return err
		}
		return emitReport(e, t, f, plan)
	}
}

func customizedWhat(st ignitionState, ks kargState, ramdisk bool) string {
	var what []string
	if st.embedded() {
		what = append(what, st.describe())
	}
	if ks.customized() {
		what = append(what, fmt.Sprintf("kernel arguments %q after the defaults", ks.Appended))
	}
	if ramdisk {
		what = append(what, "a network ramdisk")
	}
	return strings.Join(what, ", ")
}

// legacyArgs checks the arguments the older commands share.
func legacyArgs(args []string, out, ign string) error {
	switch {
	case len(args) != 1:
		return usagef("takes one ISO, got %d arguments", len(args))
	case out == "":
		return usagef("needs -o OUT")
	case ign == "":
		return usagef("needs --ignition FILE")
	}
	return nil
}

// emitReport writes plan and says how on standard output, unless the
// plan went there.
func emitReport(e *env, t target, src *os.File, plan customize.Plan) error {
	st, err := emit(e, t, src, plan)
	if err != nil || t.path == "" {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s: %d bytes (%d copied in the kernel, %d from memory)\n", t.path, plan.Size, st.zeroCopy, st.patched)
	return nil
}

func setupCustomizeInitrd(fs *pflag.FlagSet) runFunc {
	out := fs.StringP("output", "o", "", "write the initrd to `OUT` (\"-\": standard output; required)")
	ign := fs.StringP("ignition", "i", "", "the Ignition config `FILE` to append (\"-\": standard input; required)")
	ramdisk := fs.String("network-ramdisk", "", "append the static-network ramdisk `FILE` (a gzip'd cpio) after the config")
	return func(e *env, args []string) error {
		if err := legacyArgs(args, *out, *ign); err != nil {
			return err
		}
		if *ramdisk == "-" && *ign == "-" {
			return usagef("only one of --ignition and --network-ramdisk can read standard input")
		}
		t, err := outputFor(*out, args[0])
		if err != nil {
			return err
		}
		f, l, err := openISO(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		config, err := readIgnition(e, *ign)
		if err != nil {
			return err
		}
		archive, err := customize.IgnitionArchive(config)
		if err != nil {
			return err
		}
		var rd []byte
		if *ramdisk != "" {
			if rd, err = readInput(e, *ramdisk, maxRamdiskInput, "network ramdisk"); err != nil {
				return err
			}
		}
		plan, err := customize.PXEInitrd(l, args[0], archive, rd)
		if err != nil {
			return err
		}
		return emitReport(e, t, f, plan)
	}
}
