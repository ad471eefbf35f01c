package customize

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Area is a byte range of the base ISO.
type Area struct {
	Off int64 `json:"off"`
	Len int64 `json:"len"`
}

// KargArea is the part of one boot config that kernel arguments may be
// written to: from the newline that ends the kernel command line up to the
// last '#' before " COREOS_KARG_EMBED_AREA". Writing " args\n" there appends
// to the command line and leaves the remaining '#'s a comment.
type KargArea struct {
	Path string `json:"path"`
	Area
}

// Well-known ISO paths.
const (
	PathVmlinuz    = "images/pxeboot/vmlinuz"
	PathKernelImg  = "images/pxeboot/kernel.img"
	PathInitrd     = "images/pxeboot/initrd.img"
	PathRootfs     = "images/pxeboot/rootfs.img"
	PathGenericIns = "generic.ins"
	PathAddrsize   = "images/initrd.addrsize"
	PathIgnition   = "images/ignition.img"
	PathCdboot     = "images/cdboot.img" // s390x: holds the ignition area after its initrd
	PathIgnInfo    = "coreos/igninfo.json"
	PathKargsJSON  = "coreos/kargs.json"
)

// defaultKargFiles are searched for embed areas when coreos/kargs.json is absent.
var defaultKargFiles = []string{"EFI/redhat/grub.cfg", "isolinux/isolinux.cfg"}

// Layout is what isoedge needs to know about a base ISO, found once at
// ingest and stored by the ISO's digest.
type Layout struct {
	Size         int64           `json:"size"`
	VolumeID     string          `json:"volume_id"`
	Files        map[string]Area `json:"files"`                // ISO path (no leading slash) → extent of every regular file
	Ignition     Area            `json:"ignition"`             // the ignition embed area
	IgnitionFile string          `json:"ignition_file"`        // the file holding it
	KargAreas    []KargArea      `json:"karg_areas,omitempty"` // in file order
	KargsDefault string          `json:"kargs_default,omitempty"`
	KargsProblem string          `json:"kargs_problem,omitempty"` // why kernel arguments cannot be appended, if they cannot
	AddrsizeHead []byte          `json:"addrsize_head,omitempty"` // first 8 bytes of images/initrd.addrsize (s390x)
}

// File returns the extent of an ISO path, or ErrNoFile.
func (l *Layout) File(p string) (Area, error) {
	a, ok := l.Files[p]
	if !ok {
		return Area{}, fmt.Errorf("%w: %s", ErrNoFile, p)
	}
	return a, nil
}

// Encode returns the layout's stored form.
func (l *Layout) Encode() ([]byte, error) { return json.Marshal(l) }

// DecodeLayout parses a stored layout.
func DecodeLayout(b []byte) (*Layout, error) {
	var l Layout
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("customize: decode layout: %w", err)
	}
	return &l, nil
}

const (
	sectorSize     = 2048
	volumeIDOffset = 32808 // primary volume descriptor (sector 16) + 40
	maxConfigRead  = 1 << 20
)

var kargMarker = regexp.MustCompile(`(\n#*)# COREOS_KARG_EMBED_AREA`)

// ParseLayout reads an ISO's directory and embed-area metadata. It reads
// only metadata and a few small files, never the large ones. An outsider
// controls every length in the image, so the directory walk is bounded: at
// most 64 MiB of directory records, a million records, 4096 files and
// directories, 16 levels and 30 seconds, and no directory sector is read
// twice (shared or looping directories are an error). An image whose embed
// areas could not be written safely is rejected (see Layout.Check), as is
// one whose areas overlap the ISO's own metadata. Errors about the image
// wrap ErrBadImage.
func ParseLayout(f *os.File) (*Layout, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return parseLayout(f, st.Size())
}

// parseLayout is ParseLayout of the size bytes of r.
func parseLayout(f io.ReaderAt, size int64) (*Layout, error) {
	l := &Layout{Size: size}
	if l.Size < volumeIDOffset+32 {
		return nil, fmt.Errorf("%w: %d bytes is too small for an ISO", ErrBadImage, l.Size)
	}
	tree, err := readISOTree(f, l.Size, defaultISOLimits)
	if err != nil {
		return nil, err
	}
	l.VolumeID = tree.VolumeID
	l.Files = map[string]Area{}
	for _, e := range tree.Entries {
		if e.Mode.IsRegular() {
			l.Files[e.Path] = e.Extent
		}
	}
	look := isoFiles{f: f, all: l.Files}
	if err := l.findIgnitionArea(look); err != nil {
		return nil, err
	}
	if err := l.findKargAreas(look); err != nil {
		return nil, err
	}
	if a, ok := l.Files[PathAddrsize]; ok && a.Len >= 8 {
		l.AddrsizeHead = make([]byte, 8)
		if _, err := f.ReadAt(l.AddrsizeHead, a.Off); err != nil {
			return nil, fmt.Errorf("customize: read %s: %w", PathAddrsize, err)
		}
	}
	if err := l.checkAreas(); err != nil {
		return nil, err
	}
	if err := l.checkAreasClearOf(tree.Meta); err != nil {
		return nil, err
	}
	return l, nil
}

// isoFiles reads small files of an ISO through their recorded extents.
type isoFiles struct {
	f   io.ReaderAt
	all map[string]Area
}

func (i isoFiles) read(p string) ([]byte, Area, error) {
	a, ok := i.all[p]
	if !ok {
		return nil, Area{}, fmt.Errorf("%s: %w", p, os.ErrNotExist)
	}
	if a.Len > maxConfigRead {
		return nil, Area{}, fmt.Errorf("%s is %d bytes, larger than expected", p, a.Len)
	}
	b := make([]byte, a.Len)
	if _, err := i.f.ReadAt(b, a.Off); err != nil {
		return nil, Area{}, err
	}
	return b, a, nil
}

// ignInfo is coreos/igninfo.json.
type ignInfo struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
}

// ignitionFiles are the files an ignition embed area may live in: the
// ignition image, or on s390x the boot image whose initrd it extends.
var ignitionFiles = []string{PathIgnition, PathCdboot}

func (l *Layout) findIgnitionArea(look isoFiles) error {
	info := ignInfo{File: PathIgnition}
	if b, _, err := look.read(PathIgnInfo); err == nil {
		if err := json.Unmarshal(b, &info); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadImage, PathIgnInfo, err)
		}
	}
	info.File = strings.TrimPrefix(path.Clean("/"+info.File), "/")
	if !slices.Contains(ignitionFiles, info.File) {
		// Writing ignition into any other file (a kernel, a boot config)
		// would corrupt what boots.
		return fmt.Errorf("%w: %s names %q; the ignition area must be in %s", ErrBadImage, PathIgnInfo, info.File, strings.Join(ignitionFiles, " or "))
	}
	l.IgnitionFile = info.File
	a, ok := look.all[info.File]
	if !ok {
		// An ISO without an ignition area can still serve boot artifacts.
		return nil
	}
	length := info.Length
	if length == 0 {
		length = a.Len - info.Offset
	}
	if info.Offset < 0 || length <= 0 || info.Offset > a.Len || length > a.Len-info.Offset {
		return fmt.Errorf("%w: %s: area %d+%d outside %s (%d bytes)", ErrBadImage, PathIgnInfo, info.Offset, length, info.File, a.Len)
	}
	l.Ignition = Area{Off: a.Off + info.Offset, Len: length}
	return nil
}

// kargsJSON is coreos/kargs.json.
type kargsJSON struct {
	Default string `json:"default"`
	Files   []struct {
		Path string `json:"path"`
	} `json:"files"`
	Size int64 `json:"size"`
}

// findKargAreas locates the kernel-argument area of every boot config. A
// config without one leaves KargsProblem set (the image serves without
// kernel arguments); a config listed twice is an error.
func (l *Layout) findKargAreas(look isoFiles) error {
	files := defaultKargFiles
	if b, _, err := look.read(PathKargsJSON); err == nil {
		var kj kargsJSON
		if err := json.Unmarshal(b, &kj); err != nil {
			l.KargsProblem = fmt.Sprintf("%s is not valid JSON: %v", PathKargsJSON, err)
			return nil
		}
		l.KargsDefault = kj.Default
		files = files[:0:0]
		for _, e := range kj.Files {
			p := strings.TrimPrefix(path.Clean("/"+e.Path), "/")
			if slices.Contains(files, p) {
				// Two patches at one offset: every request with kernel
				// arguments would fail.
				return fmt.Errorf("%w: %s lists %s twice", ErrBadImage, PathKargsJSON, p)
			}
			files = append(files, p)
		}
	}
	for _, p := range files {
		b, a, err := look.read(p)
		if errors.Is(err, os.ErrNotExist) && l.KargsDefault == "" {
			continue // fallback list: only the configs this image has
		}
		if err != nil {
			l.KargsProblem = fmt.Sprintf("%s: %v", p, err)
			l.KargAreas = nil
			return nil
		}
		m := kargMarker.FindSubmatchIndex(b)
		if m == nil {
			l.KargsProblem = fmt.Sprintf("no COREOS_KARG_EMBED_AREA found in %s", p)
			l.KargAreas = nil
			return nil
		}
		l.KargAreas = append(l.KargAreas, KargArea{Path: p, Area: Area{Off: a.Off + int64(m[2]), Len: int64(m[3] - m[2])}})
	}
	if len(l.KargAreas) == 0 && l.KargsProblem == "" {
		l.KargsProblem = "no COREOS_KARG_EMBED_AREA found"
	}
	return nil
}

// embedArea is a byte range isoedge writes into, and the file holding it.
type embedArea struct {
	what, file string
	Area
}

// embedAreas lists the areas requests write into: the ignition area, the
// kernel-argument areas and the minimal ISO's ramdisk file.
func (l *Layout) embedAreas() []embedArea {
	var out []embedArea
	if l.Ignition != (Area{}) {
		out = append(out, embedArea{"ignition area", l.IgnitionFile, l.Ignition})
	}
	for _, k := range l.KargAreas {
		out = append(out, embedArea{"kernel argument area", k.Path, k.Area})
	}
	if a, ok := l.Files[PathCustomRamdisk]; ok {
		out = append(out, embedArea{"ramdisk area", PathCustomRamdisk, a})
	}
	return out
}

// checkAreas rejects a layout whose embed areas cannot be written
// correctly: an ignition area in a file other than an ignition file, an
// area outside its file or the image, a boot config with two areas, areas
// that overlap each other or another file.
func (l *Layout) checkAreas() error {
	areas := l.embedAreas()
	for i, a := range areas {
		f, ok := l.Files[a.file]
		switch {
		case a.what == "ignition area" && !slices.Contains(ignitionFiles, a.file):
			return fmt.Errorf("%w: ignition area in %s; it must be in %s", ErrBadImage, a.file, strings.Join(ignitionFiles, " or "))
		case !ok:
			return fmt.Errorf("%w: %s in %s, a file the image lacks", ErrBadImage, a.what, a.file)
		case a.Off < f.Off || a.Len < 0 || a.Off-f.Off > f.Len || a.Len > f.Len-(a.Off-f.Off):
			return fmt.Errorf("%w: %s %d+%d outside %s (%d+%d)", ErrBadImage, a.what, a.Off, a.Len, a.file, f.Off, f.Len)
		case f.Off+f.Len > l.Size:
			return fmt.Errorf("%w: %s extends past the end of the image", ErrBadImage, a.file)
		}
		for _, b := range areas[:i] {
			if a.file == b.file && a.what == b.what {
				return fmt.Errorf("%w: two %ss in %s", ErrBadImage, a.what, a.file)
			}
			if overlap(a.Area, b.Area) {
				return fmt.Errorf("%w: %s in %s overlaps the %s in %s", ErrBadImage, a.what, a.file, b.what, b.file)
			}
		}
		for p, other := range l.Files {
			if p != a.file && overlap(a.Area, other) {
				return fmt.Errorf("%w: %s in %s overlaps %s", ErrBadImage, a.what, a.file, p)
			}
		}
	}
	return nil
}

// checkAreasClearOf rejects embed areas that overlap the image's
// metadata: volume descriptors, path tables, directories.
func (l *Layout) checkAreasClearOf(meta []Area) error {
	for _, a := range l.embedAreas() {
		for _, m := range meta {
			if overlap(a.Area, m) {
				return fmt.Errorf("%w: %s in %s overlaps the ISO 9660 metadata at %d+%d", ErrBadImage, a.what, a.file, m.Off, m.Len)
			}
		}
	}
	return nil
}

// overlap reports whether two byte ranges share a byte; empty ranges
// share none.
func overlap(a, b Area) bool {
	return a.Len > 0 && b.Len > 0 && a.Off < b.Off+b.Len && b.Off < a.Off+a.Len
}

// ValidVolumeIDPrefixes are the volume id prefixes of CoreOS live ISOs.
var ValidVolumeIDPrefixes = []string{"rhcos-", "fedora-coreos-", "scos-"}

// Check applies the ingest checks of a downloaded base image: a CoreOS
// volume id, a rootfs and kernel at least as large as given (a truncated
// download fails these even when its ISO directory is intact), and embed
// areas that can be written correctly (as ParseLayout checks them, for a
// layout decoded from storage).
func (l *Layout) Check(minRootfs, minKernel int64) error {
	ok := false
	for _, p := range ValidVolumeIDPrefixes {
		ok = ok || strings.HasPrefix(l.VolumeID, p)
	}
	if !ok {
		return fmt.Errorf("%w: ISO volume identifier (%s) is invalid", ErrBadImage, l.VolumeID)
	}
	rootfs, ok := l.Files[PathRootfs]
	if !ok || rootfs.Len < minRootfs {
		return fmt.Errorf("%w: %s missing or smaller than %d bytes", ErrBadImage, PathRootfs, minRootfs)
	}
	kernel, err := l.Kernel()
	if err != nil || kernel.Len < minKernel {
		return fmt.Errorf("%w: kernel missing or smaller than %d bytes", ErrBadImage, minKernel)
	}
	return l.checkAreas()
}

// Kernel returns the extent of the kernel: images/pxeboot/vmlinuz, or
// images/pxeboot/kernel.img on older s390x images.
func (l *Layout) Kernel() (Area, error) {
	if a, ok := l.Files[PathVmlinuz]; ok {
		return a, nil
	}
	return l.File(PathKernelImg)
}

// Addrsize returns the 16-byte s390x initrd.addrsize for an initrd of n bytes.
func (l *Layout) Addrsize(n int64) ([]byte, error) {
	if len(l.AddrsizeHead) != 8 {
		return nil, fmt.Errorf("%w: %s", ErrNoFile, PathAddrsize)
	}
	out := bytes.Clone(l.AddrsizeHead)
	return binary.BigEndian.AppendUint64(out, uint64(n)), nil
}
