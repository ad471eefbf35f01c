package customize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// The system area is the 32 KiB an ISO 9660 image starts with, before its
// volume descriptors. On a hybrid ISO it holds what firmware reads when the
// image is written to a disk (a USB stick): an MBR whose boot code loads
// the El Torito BIOS image (syslinux's isohdpfx takes the image's LBA, in
// 512-byte sectors, from byte 432), MBR partitions, and often a GPT whose
// backup copy sits at the end of the image. Their entries cover the whole
// image and the EFI System Partition image (images/efiboot.img).
//
// go-diskfs writes a zeroed system area, so BuildMinimal carries the full
// ISO's over to the template with every sector number moved to the
// template's own layout: a partition that starts inside the system area
// covers the image and keeps its distance from the image end (or from the
// end of the ISO 9660 volume, whichever it was nearer); a partition that
// starts where a file starts covers that file in the template. Anything
// else cannot be carried (see hybridArea).

// ErrSystemArea means the full ISO's system area holds an isohybrid MBR
// that cannot be carried over to the minimal ISO template: a partition
// that is neither the whole image nor a file of the template, or a
// malformed GPT.
var ErrSystemArea = errors.New("customize: system area cannot be carried over")

const (
	systemAreaLen     = 16 * sectorSize
	diskSector        = 512 // the unit of MBR and GPT sector numbers
	systemAreaSectors = systemAreaLen / diskSector

	mbrBootPtrOff  = 432 // isohdpfx: u64 LBA of the El Torito BIOS image, ×4
	mbrPartOff     = 446
	mbrSigOff      = 510
	mbrPartLen     = 16
	mbrPartTypeGPT = 0xee

	// coreos-assembler once wrote "coreiso+", the byte offset and the
	// length of the ignition embed area (u64 LE each) at the end of the
	// system area; old coreos-installers read it.
	coreISOMagic  = "coreiso+"
	coreISOHdrOff = systemAreaLen - 24

	// tailSlack is how far (in 512-byte sectors) a partition end or a
	// backup GPT may lie from the image end it is anchored to: room for
	// the largest backup GPT accepted and alignment gaps.
	tailSlack = 256
	// cylinderSectors is the 1 MiB alignment of isohybrid images (64
	// heads × 32 sectors).
	cylinderSectors = 64 * 32
)

// hybridImage is what the system-area mapping knows about one image.
type hybridImage struct {
	FileEnd   int64           // image size in 512-byte sectors
	VolumeEnd int64           // ISO 9660 volume size in 512-byte sectors
	Files     map[string]Area // regular files by ISO path
}

// hybridOut is the template's system area and what goes with it.
type hybridOut struct {
	Area      []byte // systemAreaLen bytes for the start of the template
	Size      int64  // template file size in bytes
	Backup    []byte // backup GPT (entries, then header), or nil
	BackupOff int64  // where Backup goes
}

// hybridArea returns the template's system area for the full ISO's
// system area fullArea. When the MBR boot code points at a file of the
// full ISO (an isohybrid MBR), everything must carry over, or the error
// wraps ErrSystemArea: a template that boots on BIOS only as a CD would be
// the defect this exists to fix. Without such boot code, a system area
// that does not carry over (an Apple partition map and HFS+ partitions,
// which the template lacks) is left out, as go-diskfs wrote it. Either
// way a "coreiso+" header pointing into a file is moved with it.
func hybridArea(fullArea []byte, full, tpl hybridImage) (*hybridOut, error) {
	if len(fullArea) != systemAreaLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrSystemArea, len(fullArea))
	}
	m := newSectorMap(full, tpl)
	out := &hybridOut{Area: make([]byte, systemAreaLen), Size: tpl.VolumeEnd * diskSector}
	isohybrid, err := m.carryPartitions(fullArea, out)
	if err != nil {
		if isohybrid {
			return nil, err
		}
		out = &hybridOut{Area: make([]byte, systemAreaLen), Size: tpl.VolumeEnd * diskSector}
		m.gptEnd = 0
	}
	m.carryCoreISOHeader(fullArea, out)
	return out, nil
}

// carryPartitions fills out with the MBR (and GPT) of fullArea. It reports
// whether the MBR boot code points at a file.
func (m *sectorMap) carryPartitions(fullArea []byte, out *hybridOut) (isohybrid bool, err error) {
	hasMBR := binary.LittleEndian.Uint16(fullArea[mbrSigOff:]) == 0xaa55
	hasGPT := string(fullArea[diskSector:diskSector+8]) == gptSignature
	if !hasMBR && !hasGPT {
		return false, nil
	}
	area := out.Area
	if hasMBR {
		// Boot code and disk signature as they are, the boot pointer
		// moved with the file it points at.
		copy(area[:mbrPartOff], fullArea[:mbrPartOff])
		binary.LittleEndian.PutUint16(area[mbrSigOff:], 0xaa55)
		if ptr := binary.LittleEndian.Uint64(fullArea[mbrBootPtrOff:]); ptr >= systemAreaSectors && ptr < 1<<40 {
			if _, ok := m.byStart[int64(ptr)]; ok {
				isohybrid = true
				binary.LittleEndian.PutUint64(area[mbrBootPtrOff:], uint64(m.tpl.Files[m.byStart[int64(ptr)]].Off/diskSector))
			}
		}
	}
	var g *gpt
	if hasGPT {
		if g, err = parseGPT(fullArea, m.full.FileEnd); err != nil {
			return isohybrid, err
		}
	}
	m.grow(fullArea, hasMBR, g)
	if hasMBR {
		if err := m.carryMBR(fullArea, area, hasGPT); err != nil {
			return isohybrid, err
		}
	}
	if g != nil {
		if out.Backup, out.BackupOff, err = m.carryGPT(g, area); err != nil {
			return isohybrid, err
		}
	}
	out.Size = m.tpl.FileEnd * diskSector
	return isohybrid, nil
}

// carryMBR writes the four partition entries of fullArea, moved, to area.
func (m *sectorMap) carryMBR(fullArea, area []byte, hasGPT bool) error {
	geom := mbrGeometry(fullArea)
	for i := range 4 {
		off := mbrPartOff + i*mbrPartLen
		src, dst := fullArea[off:off+mbrPartLen], area[off:off+mbrPartLen]
		start := int64(binary.LittleEndian.Uint32(src[8:]))
		count := int64(binary.LittleEndian.Uint32(src[12:]))
		if count == 0 {
			if !allZero(src) {
				return fmt.Errorf("%w: MBR partition %d has no sectors but other fields set", ErrSystemArea, i+1)
			}
			continue
		}
		if src[4] == mbrPartTypeGPT && !hasGPT {
			return fmt.Errorf("%w: MBR partition %d is a GPT protective partition but there is no GPT", ErrSystemArea, i+1)
		}
		s, e, err := m.span(start, start+count)
		if err != nil {
			return fmt.Errorf("MBR partition %d (type %#02x): %w", i+1, src[4], err)
		}
		if e-s > 0xffffffff || s > 0xffffffff {
			return fmt.Errorf("%w: MBR partition %d: %d sectors at %d do not fit", ErrSystemArea, i+1, e-s, s)
		}
		copy(dst, src)
		binary.LittleEndian.PutUint32(dst[8:], uint32(s))
		binary.LittleEndian.PutUint32(dst[12:], uint32(e-s))
		moveCHS(dst[1:4], geom, start, s)
		moveCHS(dst[5:8], geom, start+count-1, e-1)
	}
	return nil
}

// carryCoreISOHeader moves a "coreiso+" header that points into a file of
// the full ISO to the same place in the template's copy of that file.
func (m *sectorMap) carryCoreISOHeader(fullArea []byte, out *hybridOut) {
	h := fullArea[coreISOHdrOff:]
	if string(h[:8]) != coreISOMagic || m.gptEnd > coreISOHdrOff || !allZero(out.Area[coreISOHdrOff:]) {
		return
	}
	off := int64(binary.LittleEndian.Uint64(h[8:]))
	n := int64(binary.LittleEndian.Uint64(h[16:]))
	for _, p := range m.paths { // files of the same length in both images
		fa, ta := m.full.Files[p], m.tpl.Files[p]
		if off < fa.Off || n < 0 || off-fa.Off > fa.Len || n > fa.Len-(off-fa.Off) {
			continue
		}
		copy(out.Area[coreISOHdrOff:], coreISOMagic)
		binary.LittleEndian.PutUint64(out.Area[coreISOHdrOff+8:], uint64(ta.Off+off-fa.Off))
		binary.LittleEndian.PutUint64(out.Area[coreISOHdrOff+16:], uint64(n))
		return
	}
}

// sectorMap moves 512-byte sector numbers of the full ISO to the template.
type sectorMap struct {
	full, tpl hybridImage
	paths     []string         // files present with the same size in both images, sorted
	byStart   map[int64]string // full ISO start sector → first such path starting there
	gptEnd    int              // end of the template's primary GPT entries in the system area
}

func newSectorMap(full, tpl hybridImage) *sectorMap {
	// A volume said to be larger than the image ends where the image does.
	full.VolumeEnd = min(full.VolumeEnd, full.FileEnd)
	m := &sectorMap{full: full, tpl: tpl, byStart: map[int64]string{}}
	m.tpl.FileEnd = tpl.VolumeEnd
	for p, fa := range full.Files {
		if ta, ok := tpl.Files[p]; ok && ta.Len == fa.Len && fa.Len > 0 && fa.Off%diskSector == 0 && ta.Off%diskSector == 0 {
			m.paths = append(m.paths, p)
		}
	}
	slices.Sort(m.paths)
	for _, p := range m.paths {
		s := full.Files[p].Off / diskSector
		if _, dup := m.byStart[s]; !dup {
			m.byStart[s] = p
		}
	}
	return m
}

// grow sets the template's size: everything that sits at the end of the
// full image (a backup GPT, partitions ending short of the image end) gets
// as much room after the template's volume as it had before the full
// image's end, and a full image that is a whole number of 1 MiB cylinders
// (as isohybrid and xorriso make them) gives a template that is one too.
func (m *sectorMap) grow(fullArea []byte, hasMBR bool, g *gpt) {
	var need int64
	atEnd := func(x int64) {
		// Room for what lies before the image end or past the volume end.
		switch toFile, d, ok := m.anchor(x); {
		case ok && toFile:
			need = max(need, -d)
		case ok:
			need = max(need, d)
		}
	}
	if hasMBR {
		for i := range 4 {
			e := fullArea[mbrPartOff+i*mbrPartLen:][:mbrPartLen]
			start := int64(binary.LittleEndian.Uint32(e[8:]))
			if count := int64(binary.LittleEndian.Uint32(e[12:])); count > 0 && start < systemAreaSectors {
				atEnd(start + count)
			}
		}
	}
	if g != nil {
		// The backup GPT and the last usable sector keep their distance
		// from the image end.
		for _, x := range []int64{g.backupEntries(), g.lastUsable + 1} {
			if d := m.full.FileEnd - x; d >= 0 && d <= tailSlack {
				need = max(need, d)
			}
		}
		for _, r := range g.ranges() {
			if r[0] < systemAreaSectors {
				atEnd(r[1])
			}
		}
	}
	align := int64(sectorSize / diskSector)
	if m.full.FileEnd%cylinderSectors == 0 {
		align = cylinderSectors
	}
	m.tpl.FileEnd = roundUp(m.tpl.VolumeEnd+need, align)
}

// anchor tells which end of the full ISO the sector number x is anchored
// to, the image end or the volume end (the nearer, the image end on a
// tie), and x's distance from it; not ok if x is near neither.
func (m *sectorMap) anchor(x int64) (toFile bool, d int64, ok bool) {
	dF, dV := x-m.full.FileEnd, x-m.full.VolumeEnd
	switch {
	case abs64(dF) <= abs64(dV) && abs64(dF) <= tailSlack:
		return true, dF, true
	case abs64(dV) <= tailSlack:
		return false, dV, true
	}
	return false, 0, false
}

// tail moves a sector number anchored to an end of the full ISO to the
// same distance from that end of the template.
func (m *sectorMap) tail(x int64) (int64, bool) {
	toFile, d, ok := m.anchor(x)
	switch {
	case !ok:
		return 0, false
	case toFile:
		return m.tpl.FileEnd + d, true
	}
	return m.tpl.VolumeEnd + d, true
}

// fromEnd moves a sector number that lies at most tailSlack sectors
// before the end of the full image to the same distance from the end of
// the template.
func (m *sectorMap) fromEnd(x int64) (int64, bool) {
	if d := m.full.FileEnd - x; d >= 0 && d <= tailSlack {
		return m.tpl.FileEnd - d, true
	}
	return 0, false
}

// span moves the sector range [start, end) of the full ISO.
func (m *sectorMap) span(start, end int64) (int64, int64, error) {
	if start < 0 || end <= start || end > m.full.FileEnd+tailSlack {
		return 0, 0, fmt.Errorf("%w: sectors %d to %d lie outside the image of %d sectors", ErrSystemArea, start, end, m.full.FileEnd)
	}
	if start < systemAreaSectors {
		e, ok := m.tail(end)
		if !ok || e <= start || e > m.tpl.FileEnd {
			return 0, 0, fmt.Errorf("%w: sectors %d to %d are neither the whole image nor a file", ErrSystemArea, start, end)
		}
		return start, e, nil
	}
	p, ok := m.byStart[start]
	if !ok {
		return 0, 0, fmt.Errorf("%w: sector %d is the start of no file the template has", ErrSystemArea, start)
	}
	fa, ta := m.full.Files[p], m.tpl.Files[p]
	if n := (end - start) * diskSector; n > roundUp(fa.Len, sectorSize) {
		return 0, 0, fmt.Errorf("%w: %d sectors at %d reach past %s", ErrSystemArea, end-start, start, p)
	}
	s := ta.Off / diskSector
	return s, s + end - start, nil
}

// chsGeometry converts sector numbers to the CHS fields of MBR entries.
type chsGeometry struct{ heads, sectors int64 }

// chs returns the CHS address of lba, capped at cylinder 1023.
func (g chsGeometry) chs(lba int64) [3]byte {
	c, h, s := lba/(g.heads*g.sectors), lba/g.sectors%g.heads, lba%g.sectors+1
	if c > 1023 {
		c, h, s = 1023, g.heads-1, g.sectors
	}
	return [3]byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}

// mbrGeometry returns the geometry some CHS field of a used MBR entry
// agrees with, or nil if none does (all fields then hold markers such as
// isohybrid's 0xfe 0xff 0xff for "use the LBA").
func mbrGeometry(area []byte) *chsGeometry {
	for _, g := range []chsGeometry{{64, 32}, {255, 63}} {
		for i := range 4 {
			e := area[mbrPartOff+i*mbrPartLen:][:mbrPartLen]
			start := int64(binary.LittleEndian.Uint32(e[8:]))
			count := int64(binary.LittleEndian.Uint32(e[12:]))
			first, last := g.chs(start), g.chs(start+count-1)
			if count > 0 && (bytes.Equal(first[:], e[1:4]) || bytes.Equal(last[:], e[5:8])) {
				return &g
			}
		}
	}
	return nil
}

// moveCHS rewrites a CHS field that held the address of old under geom to
// the address of lba; other fields (markers) stay as they are.
func moveCHS(field []byte, geom *chsGeometry, old, lba int64) {
	if geom == nil {
		return
	}
	if was := geom.chs(old); bytes.Equal(was[:], field) {
		now := geom.chs(lba)
		copy(field, now[:])
	}
}

// readSystemAreaImage reads the system area of an ISO of size bytes and
// its volume size.
func readSystemAreaImage(r io.ReaderAt, size int64) ([]byte, int64, error) {
	if size < (16+1)*sectorSize {
		return nil, 0, fmt.Errorf("%w: %d bytes", ErrBadImage, size)
	}
	area := make([]byte, systemAreaLen)
	if _, err := r.ReadAt(area, 0); err != nil {
		return nil, 0, fmt.Errorf("customize: read system area: %w", err)
	}
	var vd [sectorSize]byte
	for i := int64(16); i < 16+maxVolumeDescriptors && (i+1)*sectorSize <= size; i++ {
		if _, err := r.ReadAt(vd[:], i*sectorSize); err != nil {
			return nil, 0, fmt.Errorf("customize: read volume descriptor: %w", err)
		}
		if string(vd[1:6]) != "CD001" || vd[0] == 255 {
			break
		}
		if vd[0] == 1 {
			return area, int64(binary.LittleEndian.Uint32(vd[80:])) * (sectorSize / diskSector), nil
		}
	}
	return nil, 0, fmt.Errorf("%w: no primary volume descriptor", ErrBadImage)
}

// writeHybrid gives the template tpl, an ISO go-diskfs wrote and
// trimToVolume trimmed, the system area of the full ISO: see hybridArea.
func writeHybrid(full io.ReaderAt, fullSize int64, fullFiles map[string]Area, tpl *os.File) error {
	fullArea, fullVol, err := readSystemAreaImage(full, fullSize)
	if err != nil {
		return err
	}
	if allZero(fullArea) {
		return nil
	}
	st, err := tpl.Stat()
	if err != nil {
		return err
	}
	_, tplVol, err := readSystemAreaImage(tpl, st.Size())
	if err != nil {
		return err
	}
	tree, err := readISOTree(tpl, st.Size(), defaultISOLimits)
	if err != nil {
		return err
	}
	tplFiles := map[string]Area{}
	for _, e := range tree.Entries {
		if e.Mode.IsRegular() {
			tplFiles[e.Path] = e.Extent
		}
	}
	out, err := hybridArea(fullArea,
		hybridImage{FileEnd: fullSize / diskSector, VolumeEnd: fullVol, Files: fullFiles},
		hybridImage{VolumeEnd: tplVol, Files: tplFiles})
	if err != nil {
		return err
	}
	if out.Size < st.Size() {
		return fmt.Errorf("customize: system area: template of %d bytes would shrink to %d", st.Size(), out.Size)
	}
	if err := tpl.Truncate(out.Size); err != nil {
		return err
	}
	if _, err := tpl.WriteAt(out.Area, 0); err != nil {
		return err
	}
	if out.Backup != nil {
		if _, err := tpl.WriteAt(out.Backup, out.BackupOff); err != nil {
			return err
		}
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func roundUp(n, unit int64) int64 { return (n + unit - 1) / unit * unit }
