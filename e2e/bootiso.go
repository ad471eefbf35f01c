//go:build e2e

// Package e2e boots what isoedge serves in qemu and checks, from inside the
// booted guest, that the ignition, kernel arguments and network ramdisk
// arrive. See README.md.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Fixture facts shared by the builder and the tests.
const (
	// BootVolumeID is the volume id of the bootable fixture ISO.
	BootVolumeID = "rhcos-419.96.202501010000-0"
	// BootKargs is the default live kernel command line of the fixture.
	BootKargs = "console=ttyS0 panic=-1 coreos.liveiso=" + BootVolumeID +
		" ignition.firstboot ignition.platform.id=metal"

	// GrubFromMarker starts the serial line on which the EFI GRUB says
	// where it was loaded from ($cmdpath): "(hd0,msdos2)/EFI/BOOT" when
	// the firmware took it from the ESP partition of a disk.
	GrubFromMarker = "isoedge-e2e: grub from "

	ignitionAreaSize = 262144
	kargsPad         = 1024
	markerLine       = " COREOS_KARG_EMBED_AREA\n"
	grubCfgPath      = "EFI/redhat/grub.cfg"
	isolinuxCfgPath  = "isolinux/isolinux.cfg"
)

// Host files the builder takes from Debian packages.
var (
	busyboxPath  = "/bin/busybox"                               // busybox-static
	isolinuxBin  = "/usr/lib/ISOLINUX/isolinux.bin"             // isolinux
	isohdpfxBin  = "/usr/lib/ISOLINUX/isohdpfx.bin"             // isolinux
	ldlinuxC32   = "/usr/lib/syslinux/modules/bios/ldlinux.c32" // syslinux-common
	kernelGlob   = "/boot/vmlinuz-*"                            // linux-image-amd64
	requiredBins = []string{"xorriso", "grub-mkstandalone", "mkfs.vfat", "mmd", "mcopy", "mksquashfs", "qemu-system-x86_64"}
)

// initScript is /init of the fixture initrd. It reports on the serial
// console what the booted system received and powers off.
const initScript = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Only emergencies from the kernel from here on: nothing interleaves.
echo 1 > /proc/sys/kernel/printk
exec >/dev/console 2>&1 </dev/console
echo
echo "ISOEDGE-CMDLINE: $(cat /proc/cmdline)"
if [ -f /config.ign ]; then
	echo "ISOEDGE-IGN-SHA256: $(sha256sum /config.ign | cut -d' ' -f1)"
	echo "ISOEDGE-IGN-BEGIN"
	base64 /config.ign
	echo "ISOEDGE-IGN-END"
else
	echo "ISOEDGE-IGN-SHA256: MISSING"
fi
if [ -d /etc/assisted ]; then
	find /etc/assisted -type f | sort | while read -r f; do
		echo "ISOEDGE-FILE: $f"
	done
fi
if [ -f /usr/bin/nmstatectl ]; then
	echo "ISOEDGE-NMSTATECTL-SHA256: $(sha256sum /usr/bin/nmstatectl | cut -d' ' -f1)"
else
	echo "ISOEDGE-NMSTATECTL-SHA256: MISSING"
fi
echo "ISOEDGE-DONE"
sync
poweroff -f
# poweroff -f does not return; if it did, panic=-1 and -no-reboot end qemu.
exit 1
`

// BootISO is a built bootable fixture.
type BootISO struct {
	// Path is the ISO.
	Path string
	// Kernel, Initrd and Rootfs are copies of the files put at
	// images/pxeboot/{vmlinuz,initrd.img,rootfs.img}.
	Kernel, Initrd, Rootfs string
	// KargsDefault is the kernel command line of both boot configs.
	KargsDefault string
	// Nmstatectl is the content of usr/bin/nmstatectl inside the rootfs's
	// root.squashfs.
	Nmstatectl []byte
}

// nmstatectlScript stands in for nmstatectl in the fixture's root.squashfs.
const nmstatectlScript = "#!/bin/sh\necho 'isoedge e2e stand-in for nmstatectl'\n"

// buildRootfs returns images/pxeboot/rootfs.img shaped like a real one: an
// uncompressed newc cpio whose first member is root.squashfs (zstd, made by
// mksquashfs) holding usr/bin/nmstatectl, so that "hsqs" is at byte 124.
func buildRootfs(work string) ([]byte, error) {
	tree := filepath.Join(work, "squashfs-root")
	bin := filepath.Join(tree, "usr", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(bin, "nmstatectl"), []byte(nmstatectlScript), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tree, "usr", "isoedge-e2e"), []byte(BootVolumeID+"\n"), 0o644); err != nil {
		return nil, err
	}
	sq := filepath.Join(work, "root.squashfs")
	if err := run(work, "mksquashfs", tree, sq, "-comp", "zstd", "-noappend", "-all-root", "-no-progress", "-quiet"); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(sq)
	if err != nil {
		return nil, err
	}
	return newcArchive([]cpioEntry{
		{Name: "root.squashfs", Mode: modeFile | 0o644, Data: b},
		{Name: "etc/coreos-live-rootfs", Mode: modeFile | 0o644, Data: []byte(BootVolumeID + "\n")},
	})
}

// embedAreaLine is the marker line following the kernel command line.
func embedAreaLine() string { return strings.Repeat("#", kargsPad) + markerLine }

// isolinuxCfg returns isolinux.cfg and the byte offset of the kargs in it.
func isolinuxCfg(kargs string) (string, int64) {
	head := "serial 0 115200\n" +
		"default linux\n" +
		"prompt 0\n" +
		"timeout 0\n" +
		"label linux\n" +
		"  menu label ^RHEL CoreOS (Live)\n" +
		"  kernel /images/pxeboot/vmlinuz\n" +
		"  append initrd=/images/pxeboot/initrd.img,/images/ignition.img "
	return head + kargs + "\n" + embedAreaLine(), int64(len(head))
}

// grubCfg returns EFI/redhat/grub.cfg and the byte offset of the kargs in it.
func grubCfg(kargs string) (string, int64) {
	head := "serial --unit=0 --speed=115200\n" +
		"terminal_input serial console\n" +
		"terminal_output serial console\n" +
		"set timeout=0\n" +
		"set default=0\n" +
		"menuentry 'RHEL CoreOS (Live)' --class fedora --class gnu-linux --class gnu --class os {\n" +
		"\tlinux /images/pxeboot/vmlinuz "
	tail := "\n" + embedAreaLine() +
		"\tinitrd /images/pxeboot/initrd.img /images/ignition.img\n" +
		"}\n"
	return head + kargs + tail, int64(len(head))
}

// stubGrubCfg is embedded in BOOTX64.EFI: find the ISO and hand over to its
// grub.cfg, like the stub config of a real RHCOS efiboot.img.
func stubGrubCfg() string {
	return "serial --unit=0 --speed=115200\n" +
		"terminal_input serial console\n" +
		"terminal_output serial console\n" +
		"search --no-floppy --set=root --label '" + BootVolumeID + "'\n" +
		"if [ ! -f ($root)/" + grubCfgPath + " ]; then\n" +
		"\tsearch --no-floppy --set=root --file /coreos/igninfo.json\n" +
		"fi\n" +
		"set prefix=($root)/EFI/redhat\n" +
		"echo \"isoedge-e2e: booting from $root\"\n" +
		"echo \"" + GrubFromMarker + "$cmdpath\"\n" +
		"configfile ($root)/" + grubCfgPath + "\n"
}

// kargsJSON mirrors coreos/kargs.json; field order gives sorted keys.
type kargsJSON struct {
	Default string          `json:"default"`
	Files   []kargsJSONFile `json:"files"`
	Size    int64           `json:"size"`
}

type kargsJSONFile struct {
	End    string `json:"end"`
	Offset int64  `json:"offset"`
	Pad    string `json:"pad"`
	Path   string `json:"path"`
}

// CheckHostTools reports the first missing tool or host file the builder
// and the boots need, naming the Debian package that provides it.
func CheckHostTools() error {
	for _, b := range requiredBins {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s not found (install the Debian packages listed in e2e/README.md): %w", b, err)
		}
	}
	for _, f := range []string{busyboxPath, isolinuxBin, isohdpfxBin, ldlinuxC32} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("host file missing (install the Debian packages listed in e2e/README.md): %w", err)
		}
	}
	if _, err := hostKernel(); err != nil {
		return err
	}
	_, _, err := OVMF()
	return err
}

// hostKernel returns the newest /boot/vmlinuz-*.
func hostKernel() (string, error) {
	m, _ := filepath.Glob(kernelGlob)
	if len(m) == 0 {
		return "", errors.New("no /boot/vmlinuz-* (install linux-image-amd64)")
	}
	sort.Strings(m)
	return m[len(m)-1], nil
}

// OVMF returns the OVMF code and variable-store templates of Debian's ovmf
// package (bookworm ships the 4 MiB flash layout).
func OVMF() (code, vars string, err error) {
	pairs := [][2]string{
		{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
		{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
	}
	for _, p := range pairs {
		_, e1 := os.Stat(p[0])
		_, e2 := os.Stat(p[1])
		if e1 == nil && e2 == nil {
			return p[0], p[1], nil
		}
	}
	return "", "", errors.New("no OVMF_CODE*.fd/OVMF_VARS*.fd in /usr/share/OVMF (install ovmf)")
}

// BuildInitrd returns the fixture's images/pxeboot/initrd.img: a gzip'd
// newc cpio with busybox-static as /bin/busybox, /init and /dev/console,
// every parent directory listed, NUL-padded to a multiple of 4 bytes.
func BuildInitrd() ([]byte, error) {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox (install busybox-static): %w", err)
	}
	raw, err := newcArchive([]cpioEntry{
		{Name: "proc", Mode: modeDir | 0o555},
		{Name: "sys", Mode: modeDir | 0o555},
		{Name: "tmp", Mode: modeDir | 0o1777},
		{Name: "etc", Mode: modeDir | 0o755},
		{Name: "dev", Mode: modeDir | 0o755},
		{Name: "dev/console", Mode: modeChr | 0o600, Major: 5, Minor: 1},
		{Name: "bin/busybox", Mode: modeFile | 0o755, Data: bb},
		{Name: "bin/sh", Mode: modeLink | 0o777, Data: []byte("busybox")},
		{Name: "etc/isoedge-e2e", Mode: modeFile | 0o644, Data: []byte(BootVolumeID + "\n")},
		{Name: "init", Mode: modeFile | 0o755, Data: []byte(initScript)},
	})
	if err != nil {
		return nil, err
	}
	gz, err := gzipBytes(raw)
	if err != nil {
		return nil, err
	}
	for len(gz)%4 != 0 {
		gz = append(gz, 0)
	}
	return gz, nil
}

// BuildBootISO builds the bootable RHCOS-like live ISO in dir and returns
// it. work is a scratch directory.
func BuildBootISO(dir, work string) (*BootISO, error) {
	if err := CheckHostTools(); err != nil {
		return nil, err
	}
	kernel, err := hostKernel()
	if err != nil {
		return nil, err
	}
	stage := filepath.Join(work, "iso-root")
	put := func(p string, data []byte, perm os.FileMode) error {
		full := filepath.Join(stage, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		return os.WriteFile(full, data, perm)
	}
	copyIn := func(p, src string) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		return put(p, b, 0o644)
	}

	initrd, err := BuildInitrd()
	if err != nil {
		return nil, err
	}
	if err := copyIn("images/pxeboot/vmlinuz", kernel); err != nil {
		return nil, err
	}
	if err := put("images/pxeboot/initrd.img", initrd, 0o644); err != nil {
		return nil, err
	}
	// Never read by the guest: isoedge checks it and may take nmstatectl
	// from it; the tests fetch it from the rootfs URL the guest was given.
	rootfs, err := buildRootfs(work)
	if err != nil {
		return nil, err
	}
	if err := put("images/pxeboot/rootfs.img", rootfs, 0o644); err != nil {
		return nil, err
	}
	if err := put("images/ignition.img", make([]byte, ignitionAreaSize), 0o644); err != nil {
		return nil, err
	}

	kj := kargsJSON{Default: BootKargs, Size: int64(len(BootKargs)) + kargsPad}
	gcfg, goff := grubCfg(BootKargs)
	icfg, ioff := isolinuxCfg(BootKargs)
	for _, c := range []struct {
		path, text string
		off        int64
	}{{grubCfgPath, gcfg, goff}, {isolinuxCfgPath, icfg, ioff}} {
		if c.text[c.off:c.off+int64(len(BootKargs))] != BootKargs {
			return nil, fmt.Errorf("internal error: kargs offset of %s", c.path)
		}
		if err := put(c.path, []byte(c.text), 0o644); err != nil {
			return nil, err
		}
		kj.Files = append(kj.Files, kargsJSONFile{End: "\n", Offset: c.off, Pad: "#", Path: c.path})
	}
	var kb bytes.Buffer
	enc := json.NewEncoder(&kb)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(kj); err != nil {
		return nil, err
	}
	if err := put("coreos/kargs.json", kb.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := put("coreos/igninfo.json", []byte(`{"file":"images/ignition.img"}`), 0o644); err != nil {
		return nil, err
	}
	if err := put("coreos/features.json", []byte(`{"installer-config":true,"live-initrd-network":true}`+"\n"), 0o644); err != nil {
		return nil, err
	}

	if err := copyIn("isolinux/isolinux.bin", isolinuxBin); err != nil {
		return nil, err
	}
	if err := copyIn("isolinux/ldlinux.c32", ldlinuxC32); err != nil {
		return nil, err
	}
	efiboot, err := buildEFIBoot(work)
	if err != nil {
		return nil, err
	}
	if err := copyIn("images/efiboot.img", efiboot); err != nil {
		return nil, err
	}

	iso := filepath.Join(dir, BootVolumeID+"-live.x86_64.iso")
	if err := run(work, "xorriso", "-as", "mkisofs", "-R", "-J", "-joliet-long",
		"-V", BootVolumeID, "-o", iso,
		"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
		"-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
		"-eltorito-alt-boot", "-e", "images/efiboot.img", "-no-emul-boot",
		"-isohybrid-mbr", isohdpfxBin, "-isohybrid-gpt-basdat",
		stage); err != nil {
		return nil, err
	}
	out := &BootISO{Path: iso, KargsDefault: BootKargs, Nmstatectl: []byte(nmstatectlScript)}
	for _, c := range []struct {
		dst *string
		src string
	}{{&out.Kernel, "images/pxeboot/vmlinuz"}, {&out.Initrd, "images/pxeboot/initrd.img"}, {&out.Rootfs, "images/pxeboot/rootfs.img"}} {
		b, err := os.ReadFile(filepath.Join(stage, filepath.FromSlash(c.src)))
		if err != nil {
			return nil, err
		}
		*c.dst = filepath.Join(dir, filepath.Base(c.src))
		if err := os.WriteFile(*c.dst, b, 0o644); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// buildEFIBoot makes images/efiboot.img: a FAT image holding
// EFI/BOOT/BOOTX64.EFI, a standalone GRUB whose embedded config finds the
// ISO and loads its EFI/redhat/grub.cfg.
func buildEFIBoot(work string) (string, error) {
	stub := filepath.Join(work, "stub-grub.cfg")
	if err := os.WriteFile(stub, []byte(stubGrubCfg()), 0o644); err != nil {
		return "", err
	}
	efi := filepath.Join(work, "BOOTX64.EFI")
	mods := "part_gpt part_msdos iso9660 fat search search_label search_fs_file configfile normal linux echo test serial terminal gzio all_video"
	if err := run(work, "grub-mkstandalone", "-O", "x86_64-efi", "-o", efi,
		"--modules="+mods, "--install-modules="+mods, "--locales=", "--fonts=", "--themes=",
		"boot/grub/grub.cfg="+stub); err != nil {
		return "", err
	}
	st, err := os.Stat(efi)
	if err != nil {
		return "", err
	}
	// FAT overhead plus slack, in KiB, rounded up to 1 MiB.
	kib := (st.Size()/1024 + 512 + 1023) / 1024 * 1024
	img := filepath.Join(work, "efiboot.img")
	if err := run(work, "mkfs.vfat", "-n", "EFI-SYSTEM", "-C", img, fmt.Sprint(kib)); err != nil {
		return "", err
	}
	if err := run(work, "mmd", "-i", img, "::/EFI", "::/EFI/BOOT"); err != nil {
		return "", err
	}
	if err := run(work, "mcopy", "-i", img, efi, "::/EFI/BOOT/BOOTX64.EFI"); err != nil {
		return "", err
	}
	return img, nil
}

// run runs a command in dir and returns its output in the error.
func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
