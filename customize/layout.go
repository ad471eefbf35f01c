package customize

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
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
// only metadata and a few small files, never the large ones.
func ParseLayout(f *os.File) (l *Layout, err error) {
	// go-diskfs trusts on-disk lengths; a corrupt image must be an error,
	// not a crash of the service.
	defer func() {
		if r := recover(); r != nil {
			l, err = nil, fmt.Errorf("%w: unreadable ISO 9660 metadata: %v", ErrBadImage, r)
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	l = &Layout{Size: st.Size()}
	if l.Size < volumeIDOffset+32 {
		return nil, fmt.Errorf("%w: %d bytes is too small for an ISO", ErrBadImage, l.Size)
	}
	var vid [32]byte
	if _, err := f.ReadAt(vid[:], volumeIDOffset); err != nil {
		return nil, fmt.Errorf("customize: read volume id: %w", err)
	}
	l.VolumeID = strings.TrimRight(string(vid[:]), " \x00")

	if err := checkVolumeDescriptor(f, l.Size); err != nil {
		return nil, err
	}
	fsys, err := iso9660.Read(file.New(f, true), l.Size, 0, sectorSize)
	if err != nil {
		return nil, fmt.Errorf("%w: read ISO 9660: %v", ErrBadImage, err)
	}
	all := map[string]Area{}
	if err := walkExtents(fsys, ".", 0, all); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadImage, err)
	}
	for _, a := range all {
		if a.Off < 0 || a.Len < 0 || a.Off+a.Len > l.Size {
			return nil, fmt.Errorf("%w: a file extends past the end of the image", ErrBadImage)
		}
	}
	l.Files = all
	look := isoFiles{f: f, all: all}
	if err := l.findIgnitionArea(look); err != nil {
		return nil, err
	}
	l.findKargAreas(look)
	if a, ok := l.Files[PathAddrsize]; ok && a.Len >= 8 {
		l.AddrsizeHead = make([]byte, 8)
		if _, err := f.ReadAt(l.AddrsizeHead, a.Off); err != nil {
			return nil, fmt.Errorf("customize: read %s: %w", PathAddrsize, err)
		}
	}
	return l, nil
}

// checkVolumeDescriptor bounds the primary volume descriptor's sizes by
// the file before go-diskfs allocates buffers of those sizes: a corrupt
// length field must cost an error, not gigabytes of memory.
func checkVolumeDescriptor(f *os.File, size int64) error {
	var pvd [sectorSize]byte
	if _, err := f.ReadAt(pvd[:], 16*sectorSize); err != nil {
		return fmt.Errorf("%w: read primary volume descriptor: %v", ErrBadImage, err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return fmt.Errorf("%w: no ISO 9660 primary volume descriptor", ErrBadImage)
	}
	pathTable := int64(binary.LittleEndian.Uint32(pvd[132:]))
	root := pvd[156:]
	rootLBA := int64(binary.LittleEndian.Uint32(root[2:]))
	rootLen := int64(binary.LittleEndian.Uint32(root[10:]))
	const maxMeta = 16 << 20 // far beyond any live ISO's directory or path table
	switch {
	case pathTable > maxMeta || pathTable > size:
		return fmt.Errorf("%w: path table size %d", ErrBadImage, pathTable)
	case rootLen > maxMeta || rootLBA*sectorSize+rootLen > size:
		return fmt.Errorf("%w: root directory %d+%d outside the image", ErrBadImage, rootLBA*sectorSize, rootLen)
	}
	return nil
}

const (
	maxTreeDepth   = 16
	maxTreeEntries = 4096
)

// walkExtents records the byte extent of every regular file under dir.
// ISO 9660 files are contiguous, so a location and a size describe each one.
func walkExtents(fsys *iso9660.FileSystem, dir string, depth int, out map[string]Area) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("directory tree deeper than %d", maxTreeDepth)
	}
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read directory %s: %v", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			continue
		}
		p := path.Join(dir, name)
		if e.IsDir() {
			if err := walkExtents(fsys, p, depth+1, out); err != nil {
				return err
			}
			continue
		}
		if len(out) >= maxTreeEntries {
			return fmt.Errorf("more than %d files", maxTreeEntries)
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*iso9660.StatT)
		if !ok {
			return fmt.Errorf("%s: no ISO 9660 metadata", p)
		}
		out[p] = Area{Off: (int64(st.Location) + int64(st.ExtAttrSize)) * sectorSize, Len: info.Size()}
	}
	return nil
}

// isoFiles reads small files of an ISO through their recorded extents.
type isoFiles struct {
	f   *os.File
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

func (l *Layout) findIgnitionArea(look isoFiles) error {
	info := ignInfo{File: PathIgnition}
	if b, _, err := look.read(PathIgnInfo); err == nil {
		if err := json.Unmarshal(b, &info); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadImage, PathIgnInfo, err)
		}
	}
	info.File = strings.TrimPrefix(path.Clean("/"+info.File), "/")
	a, ok := look.all[info.File]
	if !ok {
		// An ISO without an ignition area can still serve boot artifacts.
		l.IgnitionFile = info.File
		return nil
	}
	length := info.Length
	if length == 0 {
		length = a.Len - info.Offset
	}
	if info.Offset < 0 || length <= 0 || info.Offset > a.Len || length > a.Len-info.Offset {
		return fmt.Errorf("%w: %s: area %d+%d outside %s (%d bytes)", ErrBadImage, PathIgnInfo, info.Offset, length, info.File, a.Len)
	}
	l.IgnitionFile = info.File
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

func (l *Layout) findKargAreas(look isoFiles) {
	files := defaultKargFiles
	if b, _, err := look.read(PathKargsJSON); err == nil {
		var kj kargsJSON
		if err := json.Unmarshal(b, &kj); err != nil {
			l.KargsProblem = fmt.Sprintf("%s is not valid JSON: %v", PathKargsJSON, err)
			return
		}
		l.KargsDefault = kj.Default
		files = files[:0:0]
		for _, e := range kj.Files {
			files = append(files, strings.TrimPrefix(path.Clean("/"+e.Path), "/"))
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
			return
		}
		m := kargMarker.FindSubmatchIndex(b)
		if m == nil {
			l.KargsProblem = fmt.Sprintf("no COREOS_KARG_EMBED_AREA found in %s", p)
			l.KargAreas = nil
			return
		}
		l.KargAreas = append(l.KargAreas, KargArea{Path: p, Area: Area{Off: a.Off + int64(m[2]), Len: int64(m[3] - m[2])}})
	}
	if len(l.KargAreas) == 0 && l.KargsProblem == "" {
		l.KargsProblem = "no COREOS_KARG_EMBED_AREA found"
	}
}

// ValidVolumeIDPrefixes are the volume id prefixes of CoreOS live ISOs.
var ValidVolumeIDPrefixes = []string{"rhcos-", "fedora-coreos-", "scos-"}

// Check applies the ingest checks of a downloaded base image: a CoreOS
// volume id, and a rootfs and kernel at least as large as given (a
// truncated download fails these even when its ISO directory is intact).
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
	return nil
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
