package customize

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// PathCustomRamdisk is the ramdisk area of minimal ISOs.
const PathCustomRamdisk = "images/assisted_installer_custom.img"

// Overlay is the per-InfraEnv content written into a base image.
type Overlay struct {
	Ignition []byte   // an IgnitionArchive; nil leaves the area as it is
	Kargs    []string // kernel arguments appended to every boot config
	Ramdisk  []byte   // static-network ramdisk (minimal ISOs)
	// RamdiskFile, when its Len is not zero, is the ramdisk as a File
	// segment instead of Ramdisk.
	RamdiskFile Segment
}

// patch places segments at an offset of the base image.
type patch struct {
	off  int64
	len  int64
	segs []Segment
	what string
}

// ISO returns the plan of a customized ISO: the base image with the
// ignition archive at the start of its embed area (the rest of the area
// zeroed, so no earlier config shows through), the ramdisk at the start of
// its area, and the kernel arguments appended in every boot config.
// The output is exactly as long as the base image.
func ISO(l *Layout, base string, o Overlay) (Plan, error) {
	var patches []patch
	if o.Ignition != nil {
		a := l.Ignition
		if a.Len == 0 {
			return Plan{}, fmt.Errorf("%w: image has no ignition area (%s)", ErrNoEmbedArea, l.IgnitionFile)
		}
		if int64(len(o.Ignition)) > a.Len {
			return Plan{}, fmt.Errorf("%w: ignition archive is %d bytes, the area in %s holds %d", ErrTooLarge, len(o.Ignition), l.IgnitionFile, a.Len)
		}
		patches = append(patches, patch{off: a.Off, len: a.Len, what: "ignition",
			segs: []Segment{Patch(o.Ignition), Zeros(a.Len - int64(len(o.Ignition)))}})
	}
	if o.Ramdisk != nil || o.RamdiskFile.Len > 0 {
		seg := Patch(o.Ramdisk)
		if o.RamdiskFile.Len > 0 {
			seg = o.RamdiskFile
		}
		a, ok := l.Files[PathCustomRamdisk]
		if !ok {
			return Plan{}, fmt.Errorf("%w: image has no ramdisk area (%s)", ErrNoEmbedArea, PathCustomRamdisk)
		}
		if seg.Len > a.Len {
			return Plan{}, fmt.Errorf("%w: ramdisk is %d bytes, %s holds %d", ErrTooLarge, seg.Len, PathCustomRamdisk, a.Len)
		}
		patches = append(patches, patch{off: a.Off, len: seg.Len, what: "ramdisk", segs: []Segment{seg}})
	}
	if len(o.Kargs) > 0 {
		for _, k := range o.Kargs {
			if err := CheckKernelArgument(k); err != nil {
				return Plan{}, err
			}
		}
		if len(l.KargAreas) == 0 {
			return Plan{}, fmt.Errorf("%w: cannot append kernel arguments: %s", ErrNoEmbedArea, l.KargsProblem)
		}
		payload := []byte(" " + strings.Join(o.Kargs, " ") + "\n")
		for _, k := range l.KargAreas {
			if int64(len(payload)) > k.Len {
				return Plan{}, fmt.Errorf("%w: kernel arguments are %d bytes, the area in %s holds %d", ErrTooLarge, len(payload), k.Path, k.Len)
			}
			patches = append(patches, patch{off: k.Off, len: int64(len(payload)), what: "kargs in " + k.Path, segs: []Segment{Patch(payload)}})
		}
	}
	return overlay(l.Size, base, patches)
}

// overlay returns the plan of a base file of the given size with patches
// written over it in place.
func overlay(size int64, base string, patches []patch) (Plan, error) {
	slices.SortFunc(patches, func(a, b patch) int { return cmp.Compare(a.off, b.off) })
	segs := make([]Segment, 0, 2*len(patches)+1)
	pos := int64(0)
	for _, p := range patches {
		if p.off < pos {
			return Plan{}, fmt.Errorf("customize: %s overlaps another embed area", p.what)
		}
		if p.off < 0 || p.len < 0 || p.off > size || p.len > size-p.off {
			return Plan{}, fmt.Errorf("customize: %s extends past the end of the image", p.what)
		}
		segs = append(segs, Extent(pos, p.off-pos))
		segs = append(segs, p.segs...)
		pos = p.off + p.len
	}
	segs = append(segs, Extent(pos, size-pos))
	plan := NewPlan(base, segs...)
	return plan, plan.Validate()
}

// PXEInitrd returns the plan of a PXE initrd: the image's initrd followed
// by the ignition archive and the ramdisk. The kernel unpacks concatenated
// archives in order, and the ignition archive is 4-byte padded so any
// archive may follow it.
func PXEInitrd(l *Layout, base string, ignition, ramdisk []byte, extra ...[]byte) (Plan, error) {
	return PXEInitrdFrom(l, base, ignition, Patch(ramdisk), extra...)
}

// PXEInitrdFrom is PXEInitrd with the ramdisk as a segment (a File
// segment for a ramdisk held outside memory).
func PXEInitrdFrom(l *Layout, base string, ignition []byte, ramdisk Segment, extra ...[]byte) (Plan, error) {
	return PXEInitrdSegments(l, base, Patch(ignition), ramdisk, extra...)
}

// PXEInitrdSegments is PXEInitrd with the ignition archive and the ramdisk
// as segments (File segments for content held outside memory).
func PXEInitrdSegments(l *Layout, base string, ignition, ramdisk Segment, extra ...[]byte) (Plan, error) {
	a, err := l.File(PathInitrd)
	if err != nil {
		return Plan{}, err
	}
	segs := []Segment{Extent(a.Off, a.Len), ignition, ramdisk}
	for _, e := range extra {
		segs = append(segs, Patch(e))
	}
	return NewPlan(base, segs...), nil
}

// Artifact returns the plan of one file of the image, served as it is.
func Artifact(l *Layout, base, isoPath string) (Plan, error) {
	a, err := l.File(isoPath)
	if err != nil {
		return Plan{}, err
	}
	return NewPlan(base, Extent(a.Off, a.Len)), nil
}
