package customize

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
	"github.com/isoedge/isoedge/customize/newc"
)

// SampleVolumeID is the volume id of the built-in sample image.
const SampleVolumeID = "rhcos-99.0.sample-0"

const (
	sampleBlockSize     = 2048
	sampleKernelSize    = 1 << 20
	sampleRootfsSize    = 2 << 20
	sampleIgnitionSize  = 262144
	sampleKargsEmbedPad = 1024
)

// sampleKargs are the default kernel arguments of the sample image.
const sampleKargs = "random.trust_cpu=on rd.luks.options=discard coreos.liveiso=" + SampleVolumeID +
	" ignition.firstboot ignition.platform.id=metal"

// sampleFile is one regular file of the sample ISO.
type sampleFile struct {
	path string // ISO path without leading slash
	data []byte
}

// BuildSampleISO writes a small RHCOS-like x86_64 live ISO to path,
// atomically (temporary file in the same directory, fsync, rename). It is
// not bootable: kernel, rootfs and boot loader files are deterministic
// placeholders, but the layout, metadata and embed areas are those of a real
// RHCOS live ISO (coreos/igninfo.json, coreos/kargs.json, a 256 KiB zeroed
// images/ignition.img, boot configs with a COREOS_KARG_EMBED_AREA, a gzip'd
// newc initrd holding etc/coreos-live-initramfs). workDir is a scratch
// directory in which go-diskfs stages the files; everything BuildSampleISO
// creates there is removed before it returns.
func BuildSampleISO(path, workDir string) (err error) {
	files, err := sampleFiles(workDir)
	if err != nil {
		return err
	}

	stage, err := os.MkdirTemp(workDir, "sample-iso-")
	if err != nil {
		return fmt.Errorf("sample iso: %w", err)
	}
	// Finalize removes the staging directory itself; this covers errors.
	defer os.RemoveAll(stage)

	tmp, err := CreateTempFor(path)
	if err != nil {
		return fmt.Errorf("sample iso: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()

	// Generous upper bound: data rounded to blocks plus room for the system
	// area, descriptors, directories and path tables. Trimmed afterwards.
	size := int64(4 << 20)
	for _, f := range files {
		size += (int64(len(f.data)) + sampleBlockSize - 1) / sampleBlockSize * sampleBlockSize
	}
	if err = tmp.Truncate(size); err != nil {
		return fmt.Errorf("sample iso: %w", err)
	}

	fsys, err := iso9660.Create(file.New(tmp, false), size, 0, sampleBlockSize, stage)
	if err != nil {
		return fmt.Errorf("sample iso: create filesystem: %w", err)
	}
	for _, f := range files {
		if err = sampleWrite(fsys, f); err != nil {
			return err
		}
	}
	err = fsys.Finalize(iso9660.FinalizeOptions{RockRidge: true, VolumeIdentifier: SampleVolumeID})
	if err != nil {
		return fmt.Errorf("sample iso: finalize: %w", err)
	}

	if err = trimToVolume(tmp, size); err != nil {
		return fmt.Errorf("sample iso: %w", err)
	}
	return CommitFile(tmp, path)
}

func sampleWrite(fsys *iso9660.FileSystem, f sampleFile) error {
	if dir := path.Dir(f.path); dir != "." {
		if err := fsys.Mkdir("/" + dir); err != nil {
			return fmt.Errorf("sample iso: mkdir %s: %w", dir, err)
		}
	}
	w, err := fsys.OpenFile("/"+f.path, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("sample iso: create %s: %w", f.path, err)
	}
	if _, err := w.Write(f.data); err != nil {
		_ = w.Close()
		return fmt.Errorf("sample iso: write %s: %w", f.path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("sample iso: close %s: %w", f.path, err)
	}
	return nil
}

// sampleFiles returns the content of the sample ISO.
func sampleFiles(workDir string) ([]sampleFile, error) {
	grub, grubOff := sampleGrubCfg()
	isolinux, isolinuxOff := sampleIsolinuxCfg()

	type kargsFile struct { // fields in sorted key order
		End    string `json:"end"`
		Offset int    `json:"offset"`
		Pad    string `json:"pad"`
		Path   string `json:"path"`
	}
	kargs := struct {
		Default string      `json:"default"`
		Files   []kargsFile `json:"files"`
		Size    int         `json:"size"`
	}{
		Default: sampleKargs,
		Files: []kargsFile{
			{End: "\n", Offset: grubOff, Pad: "#", Path: "EFI/redhat/grub.cfg"},
			{End: "\n", Offset: isolinuxOff, Pad: "#", Path: "isolinux/isolinux.cfg"},
		},
		Size: len(sampleKargs) + sampleKargsEmbedPad,
	}
	var kargsJSON bytes.Buffer
	enc := json.NewEncoder(&kargsJSON)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(kargs); err != nil {
		return nil, fmt.Errorf("sample iso: %w", err)
	}

	initrdCPIO, err := sampleCPIO(
		newc.Entry{Name: "etc", Mode: newc.TypeDir | 0o755},
		newc.Entry{Name: "etc/coreos-live-initramfs", Mode: newc.TypeRegular | 0o644, Data: []byte(SampleVolumeID + "\n")},
	)
	if err != nil {
		return nil, err
	}
	var initrd bytes.Buffer
	zw, err := gzip.NewWriterLevel(&initrd, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("sample iso: %w", err)
	}
	if _, err := zw.Write(initrdCPIO); err != nil {
		return nil, fmt.Errorf("sample iso: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("sample iso: %w", err)
	}
	for initrd.Len()%4 != 0 {
		initrd.WriteByte(0)
	}

	// rootfs.img is shaped like the real one: an uncompressed newc archive
	// whose first member is root.squashfs, a real squashfs holding an
	// nmstatectl (the sample's OpenShift version needs one), padded so
	// that the archive is exactly sampleRootfsSize bytes.
	squash, err := sampleSquashfs(workDir)
	if err != nil {
		return nil, err
	}
	const rootfsOverhead = 124 + 128 + 124 // headers and names of root.squashfs, sample-padding, the trailer
	pad := sampleRootfsSize - rootfsOverhead - int64(len(squash)+3)&^3
	if pad < 0 {
		return nil, fmt.Errorf("sample iso: root.squashfs of %d bytes exceeds the sample rootfs", len(squash))
	}
	rootfs, err := sampleCPIO(
		newc.Entry{Name: "root.squashfs", Mode: newc.TypeRegular | 0o644, Data: squash},
		newc.Entry{Name: "sample-padding", Mode: newc.TypeRegular | 0o644, Data: sampleBytes(int(pad), 2)},
	)
	if err != nil {
		return nil, err
	}

	features := "{\n  \"installer-config\": true,\n  \"installer-config-directives\": {\n    \"console\": true\n  },\n  \"live-initrd-network\": true\n}\n"

	return []sampleFile{
		{"EFI/redhat/grub.cfg", []byte(grub)},
		{"coreos/features.json", []byte(features)},
		{"coreos/igninfo.json", []byte(`{"file":"images/ignition.img"}`)},
		{"coreos/kargs.json", kargsJSON.Bytes()},
		{"images/efiboot.img", append([]byte("EFI-SYSTEM placeholder (isoedge sample image)\n"), make([]byte, 16<<10)...)},
		{"images/ignition.img", make([]byte, sampleIgnitionSize)},
		{"images/pxeboot/initrd.img", initrd.Bytes()},
		{"images/pxeboot/rootfs.img", rootfs},
		{"images/pxeboot/vmlinuz", sampleBytes(sampleKernelSize, 1)},
		{"isolinux/isolinux.cfg", []byte(isolinux)},
	}, nil
}

// sampleEmbedLine is the karg embed area marker line.
func sampleEmbedLine() string {
	return strings.Repeat("#", sampleKargsEmbedPad) + " COREOS_KARG_EMBED_AREA\n"
}

// sampleGrubCfg returns the live grub.cfg and the offset of the kargs in it.
func sampleGrubCfg() (string, int) {
	head := "set timeout=5\n" +
		"menuentry 'RHEL CoreOS (Live)' --class fedora --class gnu-linux --class gnu --class os {\n" +
		"\tlinux /images/pxeboot/vmlinuz "
	return head + sampleKargs + "\n" + sampleEmbedLine() +
		"\tinitrd /images/pxeboot/initrd.img /images/ignition.img\n}\n", len(head)
}

// sampleIsolinuxCfg returns the live isolinux.cfg and the offset of the
// kargs in it.
func sampleIsolinuxCfg() (string, int) {
	head := "label linux\n" +
		"  menu label ^RHEL CoreOS (Live)\n" +
		"  kernel /images/pxeboot/vmlinuz\n" +
		"  append initrd=/images/pxeboot/initrd.img,/images/ignition.img "
	return head + sampleKargs + "\n" + sampleEmbedLine(), len(head)
}

// sampleBytes returns n deterministic pseudo-random bytes.
func sampleBytes(n int, seed byte) []byte {
	var key [32]byte
	copy(key[:], "isoedge sample image content")
	key[31] = seed
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// sampleCPIO returns the newc archive of entries.
func sampleCPIO(entries ...newc.Entry) ([]byte, error) {
	var b bytes.Buffer
	w := newc.NewWriter(&b)
	for _, e := range entries {
		if err := w.Add(e); err != nil {
			return nil, fmt.Errorf("sample iso: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("sample iso: %w", err)
	}
	return b.Bytes(), nil
}

// sampleNmstatectl is the sample rootfs's stand-in for nmstatectl.
const sampleNmstatectl = "#!/bin/sh\necho 'nmstatectl of the isoedge sample image'\n"

// sampleSquashfs returns a squashfs image holding usr/bin/nmstatectl,
// built with go-diskfs in a scratch file under workDir.
func sampleSquashfs(workDir string) (b []byte, err error) {
	f, err := os.CreateTemp(workDir, "sample-rootfs-*.squashfs")
	if err != nil {
		return nil, fmt.Errorf("sample iso: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	stage, err := os.MkdirTemp(workDir, "sample-rootfs-")
	if err != nil {
		return nil, fmt.Errorf("sample iso: %w", err)
	}
	defer os.RemoveAll(stage)
	const size = 1 << 20
	if err := f.Truncate(size); err != nil {
		return nil, fmt.Errorf("sample iso: %w", err)
	}
	err = diskfsCall("build the sample squashfs", func() error {
		fsys, err := squashfs.Create(file.New(f, false), size, 0, 0)
		if err != nil {
			return err
		}
		if err := fsys.Mkdir("usr/bin"); err != nil {
			return err
		}
		nf, err := fsys.OpenFile("usr/bin/nmstatectl", os.O_CREATE|os.O_RDWR)
		if err != nil {
			return err
		}
		if _, err := nf.Write([]byte(sampleNmstatectl)); err != nil {
			return err
		}
		return fsys.Finalize(squashfs.FinalizeOptions{})
	})
	if err != nil {
		return nil, fmt.Errorf("sample iso: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b = make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, err
	}
	// The squashfs ends at its superblock's bytes_used; the rest is the
	// scratch file's unused tail.
	if len(b) >= 48 {
		if used := int64(binary.LittleEndian.Uint64(b[40:])); used > 0 && used <= int64(len(b)) {
			b = b[:used]
		}
	}
	return b, nil
}
