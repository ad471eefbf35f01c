package customize

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// MinimalOptions configure a minimal ISO template.
type MinimalOptions struct {
	// RootfsURL is the coreos.live.rootfs_url value. Required; it must not
	// contain '$', '\\', whitespace or quotes.
	RootfsURL string
	// Arch is x86_64, aarch64 (or arm64) or ppc64le. s390x has no minimal
	// ISO (ErrNoMinimal).
	Arch string
	// Nmstate is an optional (gzip'd cpio) archive added as
	// images/nmstate.img (mode 0755) and appended to the initrd lists.
	Nmstate []byte
	// WorkDir is a scratch directory (DATA_TEMP_DIR); everything created
	// inside it is removed before BuildMinimal returns. Empty means
	// os.TempDir().
	WorkDir string
}

// ErrNoMinimal is returned for architectures without a minimal ISO.
var ErrNoMinimal = errors.New("customize: no minimal ISO for this architecture")

// Paths used by the minimal ISO template.
const (
	PathNmstateImg   = "images/nmstate.img"
	minimalCustomLen = 1 << 20 // size of images/assisted_installer_custom.img

	minimalBootCat   = "isolinux/boot.cat"
	minimalIsolinux  = "isolinux/isolinux.bin"
	minimalIsoCfg    = "isolinux/isolinux.cfg"
	minimalEfiboot   = "images/efiboot.img"
	minimalCatalog   = "boot.catalog"
	minimalSizeSlack = 8 << 20
)

// minimalGrubPaths are searched, in order, for the grub.cfg to edit.
var minimalGrubPaths = []string{"EFI/redhat/grub.cfg", "EFI/fedora/grub.cfg", "boot/grub/grub.cfg", "EFI/centos/grub.cfg"}

// MinimalRootfsURL returns "<base>/boot-artifacts/rootfs?arch=<arch>&version=<version>"
// for the IMAGE_SERVICE_BASE_URL base: its scheme, host and path are kept;
// user info, query and fragment of base are dropped; query keys are sorted.
// An empty base gives a relative URL, as assisted-image-service does.
func MinimalRootfsURL(baseURL, arch, version string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return "", fmt.Errorf("customize: image service base URL: %w", err)
	}
	out := url.URL{
		Scheme: u.Scheme,
		Host:   u.Host,
		Path:   strings.TrimSuffix(u.Path, "/") + "/boot-artifacts/rootfs",
	}
	if u.RawPath != "" {
		out.RawPath = strings.TrimSuffix(u.RawPath, "/") + "/boot-artifacts/rootfs"
	}
	q := url.Values{}
	q.Set("arch", arch)
	q.Set("version", version)
	out.RawQuery = q.Encode()
	return out.String(), nil
}

// minimalArch normalises an architecture name.
func minimalArch(a string) (string, error) {
	switch a {
	case "x86_64", "amd64":
		return "x86_64", nil
	case "aarch64", "arm64":
		return "aarch64", nil
	case "ppc64le":
		return "ppc64le", nil
	case "s390x":
		return "", ErrNoMinimal
	}
	return "", fmt.Errorf("%w: %q", ErrNoMinimal, a)
}

func checkRootfsURL(u string) error {
	if u == "" {
		return errors.New("customize: minimal ISO: rootfs URL is required")
	}
	if i := strings.IndexFunc(u, func(r rune) bool {
		return r == '$' || r == '\\' || r == '"' || r == '\'' || r == '`' || r <= ' ' || r == 0x7f
	}); i >= 0 {
		return fmt.Errorf("customize: minimal ISO: rootfs URL contains invalid character %q", u[i])
	}
	return nil
}

// BuildMinimal writes the minimal ISO template of the full ISO full to
// outPath, atomically (temporary file in outPath's directory, fsync,
// rename). The template is the full ISO without images/pxeboot/rootfs.img,
// with a zeroed 1 MiB images/assisted_installer_custom.img (and optionally
// images/nmstate.img) added to the initrd lists of grub.cfg and
// isolinux.cfg, coreos.liveiso= replaced by a quoted coreos.live.rootfs_url=
// and coreos/kargs.json updated to match. It is mastered with go-diskfs
// (Rock Ridge, level-1 short names, the full ISO's volume id, El Torito
// entries as the full ISO's boot files allow) and gets the full ISO's
// system area with every sector number moved to its own layout (the
// isohybrid MBR boot pointer, MBR and GPT partitions, a backup GPT after
// the volume; see hybridArea), so that written to a disk it boots like the
// full ISO. An isohybrid MBR that cannot be carried over is an error
// wrapping ErrSystemArea.
func BuildMinimal(full *os.File, outPath string, opt MinimalOptions) (err error) {
	arch, err := minimalArch(opt.Arch)
	if err != nil {
		return err
	}
	if err := checkRootfsURL(opt.RootfsURL); err != nil {
		return err
	}
	workDir := opt.WorkDir
	if workDir == "" {
		workDir = os.TempDir()
	}
	st, err := full.Stat()
	if err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	var vid [32]byte
	if _, err := full.ReadAt(vid[:], volumeIDOffset); err != nil {
		return fmt.Errorf("%w: read volume id: %v", ErrBadImage, err)
	}
	volumeID := strings.TrimRight(string(vid[:]), " \x00")

	// The extracted tree is the go-diskfs workspace: Finalize reads it
	// from there (and removes it); the deferred RemoveAll covers errors.
	tree, err := os.MkdirTemp(workDir, "minimal-")
	if err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	defer os.RemoveAll(tree)

	fullFiles, err := minimalExtract(full, st.Size(), tree)
	if err != nil {
		return err
	}
	if err := minimalCustomize(tree, arch, opt); err != nil {
		return err
	}
	et, err := minimalElTorito(tree)
	if err != nil {
		return err
	}

	var size int64 = minimalSizeSlack
	if err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		size += sectorSize // directory record space, generously
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			size += (info.Size() + sectorSize - 1) / sectorSize * sectorSize
		}
		return nil
	}); err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}

	tmp, err := CreateTempFor(outPath)
	if err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Truncate(size); err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	// The tree (names, links, boot files) came from the base image.
	err = diskfsCall("minimal ISO", func() error {
		fsys, err := iso9660.Create(file.New(tmp, false), size, 0, sectorSize, tree)
		if err != nil {
			return fmt.Errorf("create filesystem: %w", err)
		}
		if err := fsys.Finalize(iso9660.FinalizeOptions{RockRidge: true, VolumeIdentifier: volumeID, ElTorito: et}); err != nil {
			return fmt.Errorf("finalize: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	if err = trimToVolume(tmp, size); err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	if err = copyVolumeID(full, tmp); err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	if err = writeHybrid(full, st.Size(), fullFiles, tmp); err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	return CommitFile(tmp, outPath)
}

// minimalExtract copies every directory, regular file and symbolic link
// of the ISO except images/pxeboot/rootfs.img into dir and returns the
// extents of the ISO's regular files. The tree is read with the same
// bounds as ParseLayout.
func minimalExtract(full *os.File, size int64, dir string) (map[string]Area, error) {
	tree, err := readISOTree(full, size, defaultISOLimits)
	if err != nil {
		return nil, err
	}
	files := map[string]Area{}
	for _, e := range tree.Entries {
		if e.Mode.IsRegular() {
			files[e.Path] = e.Extent
		}
		target := filepath.Join(dir, filepath.FromSlash(e.Path))
		perm := e.Mode.Perm()
		switch {
		case e.Mode.IsDir():
			// We must be able to write into it.
			if err := os.Mkdir(target, perm|0o700); err != nil {
				return nil, fmt.Errorf("customize: minimal ISO: %w", err)
			}
		case e.Mode&fs.ModeSymlink != 0:
			if err := os.Symlink(e.Target, target); err != nil {
				return nil, fmt.Errorf("customize: minimal ISO: %w", err)
			}
		case e.Path == PathRootfs:
			// dropped from the minimal ISO; not worth copying
		case e.Mode.IsRegular():
			if perm == 0 {
				perm = 0o644
			}
			if err := minimalCopy(target, io.NewSectionReader(full, e.Extent.Off, e.Extent.Len), perm|0o200); err != nil {
				return nil, err
			}
		}
		// Device nodes, pipes and sockets have no place on a boot medium.
	}
	return files, nil
}

func minimalCopy(dst string, r io.Reader, perm fs.FileMode) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close()
		return fmt.Errorf("customize: minimal ISO: extract %s: %w", filepath.Base(dst), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	return nil
}

// minimalCustomize applies the minimal-ISO changes to the extracted tree.
func minimalCustomize(tree, arch string, opt MinimalOptions) error {
	local := func(p string) string { return filepath.Join(tree, filepath.FromSlash(p)) }
	if err := os.Remove(local(PathRootfs)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	if err := os.MkdirAll(local("images"), 0o755); err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	if err := minimalWriteFile(local(PathCustomRamdisk), nil, minimalCustomLen, 0o644); err != nil {
		return err
	}
	initrds := []string{"/" + PathCustomRamdisk}
	if opt.Nmstate != nil {
		if err := minimalWriteFile(local(PathNmstateImg), opt.Nmstate, int64(len(opt.Nmstate)), 0o755); err != nil {
			return err
		}
		initrds = append(initrds, "/"+PathNmstateImg)
	}

	rootfsArg := `coreos.live.rootfs_url="` + opt.RootfsURL + `"`
	edits := map[string][]textEdit{} // ISO path → edits made, for kargs.json offsets

	grubPath := ""
	for _, p := range minimalGrubPaths {
		if fi, err := os.Stat(local(p)); err == nil && fi.Mode().IsRegular() {
			grubPath = p
			break
		}
	}
	if grubPath == "" {
		return fmt.Errorf("customize: minimal ISO: no grub.cfg found, possible paths are %v", minimalGrubPaths)
	}
	if err := minimalEditFile(local(grubPath), func(b []byte) ([]textEdit, error) {
		return grubEdits(b, rootfsArg, initrds)
	}, func(e []textEdit) { edits[grubPath] = e }); err != nil {
		return fmt.Errorf("customize: minimal ISO: %s: %w", grubPath, err)
	}
	if arch != "ppc64le" {
		if fi, err := os.Stat(local(minimalIsoCfg)); err == nil && fi.Mode().IsRegular() {
			if err := minimalEditFile(local(minimalIsoCfg), func(b []byte) ([]textEdit, error) {
				return isolinuxEdits(b, rootfsArg, initrds)
			}, func(e []textEdit) { edits[minimalIsoCfg] = e }); err != nil {
				return fmt.Errorf("customize: minimal ISO: %s: %w", minimalIsoCfg, err)
			}
		}
	}

	kj := local(PathKargsJSON)
	b, err := os.ReadFile(kj)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	out, err := updateKargsJSON(b, rootfsArg, edits)
	if err != nil {
		return fmt.Errorf("customize: minimal ISO: %s: %w", PathKargsJSON, err)
	}
	return minimalReplace(kj, out)
}

// minimalWriteFile creates p with data, extended with zeros to size.
func minimalWriteFile(p string, data []byte, size int64, perm fs.FileMode) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Truncate(size)
	}
	if err == nil {
		err = f.Chmod(perm) // not subject to the umask
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("customize: minimal ISO: %w", err)
	}
	return nil
}

// minimalEditFile applies the edits computed by plan to the file at p and
// reports them to done.
func minimalEditFile(p string, plan func([]byte) ([]textEdit, error), done func([]textEdit)) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	edits, err := plan(b)
	if err != nil {
		return err
	}
	if err := minimalReplace(p, applyEdits(b, edits)); err != nil {
		return err
	}
	done(edits)
	return nil
}

// minimalReplace rewrites the content of an existing file, keeping its mode.
func minimalReplace(p string, b []byte) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	return os.WriteFile(p, b, fi.Mode().Perm())
}

// El Torito load sizes count 512-byte sectors.
const (
	biosLoadSize    = 4
	maxEFILoadSize  = 0xffff
	sectorsPerBlock = sectorSize / 512
)

// minimalElTorito chooses the boot entries from the boot files present.
func minimalElTorito(tree string) (*iso9660.ElTorito, error) {
	stat := func(p string) (fs.FileInfo, bool) {
		fi, err := os.Lstat(filepath.Join(tree, filepath.FromSlash(p)))
		return fi, err == nil && fi.Mode().IsRegular()
	}
	_, haveCat := stat(minimalBootCat)
	_, haveBIOS := stat(minimalIsolinux)
	efi, haveEFI := stat(minimalEfiboot)
	efiEntry := func() *iso9660.ElToritoEntry {
		e := &iso9660.ElToritoEntry{Platform: iso9660.EFI, Emulation: iso9660.NoEmulation, BootFile: minimalEfiboot}
		e.SetLoadSize(efiLoadSize(efi.Size()))
		return e
	}
	switch {
	case haveCat && haveBIOS && haveEFI:
		// The full ISO's catalog describes the full ISO's sectors; go-diskfs
		// writes the new one at the same path. Without removing the old
		// file the directory would hold two entries named boot.cat.
		if err := os.Remove(filepath.Join(tree, filepath.FromSlash(minimalBootCat))); err != nil {
			return nil, fmt.Errorf("customize: minimal ISO: %w", err)
		}
		bios := &iso9660.ElToritoEntry{Platform: iso9660.BIOS, Emulation: iso9660.NoEmulation, BootFile: minimalIsolinux, BootTable: true}
		bios.SetLoadSize(biosLoadSize)
		return &iso9660.ElTorito{BootCatalog: minimalBootCat, Entries: []*iso9660.ElToritoEntry{bios, efiEntry()}}, nil
	case haveEFI:
		// A new catalog is written, hidden; a stale copy from the full ISO
		// would point at the full ISO's sectors. Unlike the original, a full
		// ISO without a root boot.catalog is no error: nothing reads it.
		if err := os.Remove(filepath.Join(tree, minimalCatalog)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("customize: minimal ISO: %w", err)
		}
		return &iso9660.ElTorito{BootCatalog: minimalCatalog, HideBootCatalog: true, Entries: []*iso9660.ElToritoEntry{efiEntry()}}, nil
	}
	return nil, nil
}

// efiLoadSize is the El Torito load size of an EFI image of n bytes: its
// 2048-byte blocks counted in 512-byte sectors, clamped to 65535.
func efiLoadSize(n int64) uint16 {
	s := (n + sectorSize - 1) / sectorSize * sectorsPerBlock
	if s > maxEFILoadSize {
		return maxEFILoadSize
	}
	return uint16(s)
}

// copyVolumeID gives the template the full ISO's volume identifier field
// byte for byte: go-diskfs pads it with NULs where ISO 9660 (and the
// original image) pads with spaces, and the live system finds its
// medium by that label.
func copyVolumeID(full, out *os.File) error {
	var vid [32]byte
	if _, err := full.ReadAt(vid[:], volumeIDOffset); err != nil {
		return err
	}
	_, err := out.WriteAt(vid[:], volumeIDOffset)
	return err
}
