package cli

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/isoedge/isoedge/customize"
	"github.com/spf13/pflag"
)

// inspectReport is everything inspect prints. The JSON form is the stored
// layout (the same keys as customize.Layout) plus what is embedded now.
type inspectReport struct {
	*customize.Layout
	Architecture       string        `json:"architecture"`
	ArchitectureReason string        `json:"architecture_reason"`
	IgnitionEmbedded   ignitionState `json:"ignition_embedded"`
	Kargs              kargState     `json:"kargs"`
	Ramdisk            *ramdiskArea  `json:"ramdisk,omitempty"`
	PXEBootFiles       []pxeFile     `json:"pxeboot_files"`
}

type ramdiskArea struct {
	Path string `json:"path"`
	customize.Area
	Free int64 `json:"free_bytes"`
}

type pxeFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

func setupInspect(fs *pflag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print the stored layout and the embedded state as JSON")
	return func(e *env, args []string) error {
		return withISO(args, func(name string, f *os.File, l *customize.Layout) error {
			r, err := inspect(f, l)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if *asJSON {
				b, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(append(b, '\n'))
				return err
			}
			return r.writeText(e.stdout)
		})
	}
}

func inspect(f *os.File, l *customize.Layout) (*inspectReport, error) {
	r := &inspectReport{Layout: l, PXEBootFiles: []pxeFile{}}
	r.Architecture, r.ArchitectureReason = guessArch(f, l)
	var err error
	if r.IgnitionEmbedded, err = readIgnitionState(f, l); err != nil {
		return nil, err
	}
	if r.Kargs, err = readKargState(f, l); err != nil {
		return nil, err
	}
	if a, ok := l.Files[customize.PathCustomRamdisk]; ok {
		free, err := freeTail(f, a)
		if err != nil {
			return nil, err
		}
		r.Ramdisk = &ramdiskArea{Path: customize.PathCustomRamdisk, Area: a, Free: free}
	}
	for _, p := range pxeFiles(l) {
		r.PXEBootFiles = append(r.PXEBootFiles, pxeFile{Path: p, Size: l.Files[p].Len})
	}
	return r, nil
}

func (r *inspectReport) writeText(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	list := func(label string, lines []string) {
		for i, s := range lines {
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(w, "%s\t%s\n", label, s)
		}
	}
	fmt.Fprintf(w, "volume id:\t%s\n", r.VolumeID)
	fmt.Fprintf(w, "size:\t%d bytes\n", r.Size)
	fmt.Fprintf(w, "architecture:\t%s (guess: %s)\n", r.Architecture, r.ArchitectureReason)

	ig := r.IgnitionEmbedded
	if r.Ignition.Len > 0 {
		fmt.Fprintf(w, "ignition area:\t%s, ISO offset %d, length %d, free %d\n", r.IgnitionFile, r.Ignition.Off, r.Ignition.Len, ig.Free)
		switch {
		case !ig.embedded():
			fmt.Fprintf(w, "embedded ignition:\tnone\n")
		case ig.Config != nil:
			fmt.Fprintf(w, "embedded ignition:\tconfig.ign, %d bytes (archive of %d bytes: %s)\n", ig.Size, ig.Used, strings.Join(ig.Members, " "))
		default:
			fmt.Fprintf(w, "embedded ignition:\tunreadable: %d bytes (%s)\n", ig.Used, ig.Problem)
		}
	} else {
		fmt.Fprintf(w, "ignition area:\tnone (%s not found)\n", r.IgnitionFile)
	}

	if len(r.KargAreas) == 0 {
		fmt.Fprintf(w, "karg areas:\tnone (%s)\n", r.KargsProblem)
	}
	var areas []string
	for _, k := range r.KargAreas {
		areas = append(areas, fmt.Sprintf("%s, ISO offset %d, length %d", k.Path, k.Off, k.Len))
	}
	list("karg areas:", areas)
	ks := r.Kargs
	if ks.Problem != "" {
		fmt.Fprintf(w, "kargs problem:\t%s\n", ks.Problem)
	}
	if ks.Default != "" || r.KargsDefault != "" {
		fmt.Fprintf(w, "default kargs:\t%s\n", r.KargsDefault)
	}
	if ks.Problem == "" {
		fmt.Fprintf(w, "current kargs:\t%s\n", ks.Current)
		appended := ks.Appended
		if appended == "" {
			appended = "none"
		}
		fmt.Fprintf(w, "appended kargs:\t%s\n", appended)
		var regions []string
		for _, k := range ks.Regions {
			regions = append(regions, fmt.Sprintf("%s, ISO offset %d, length %d, free %d", k.Path, k.Off, k.Len, k.Free))
		}
		list("karg regions:", regions)
	}

	if r.Ramdisk != nil {
		fmt.Fprintf(w, "ramdisk area:\t%s, ISO offset %d, length %d, free %d\n", r.Ramdisk.Path, r.Ramdisk.Off, r.Ramdisk.Len, r.Ramdisk.Free)
	}
	if len(r.PXEBootFiles) == 0 {
		fmt.Fprintf(w, "pxeboot files:\tnone\n")
	}
	var pxe []string
	for _, p := range r.PXEBootFiles {
		pxe = append(pxe, fmt.Sprintf("%s\t%d bytes", p.Path, p.Size))
	}
	list("pxeboot files:", pxe)
	return w.Flush()
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
