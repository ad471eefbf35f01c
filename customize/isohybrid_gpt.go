package customize

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// GPT (UEFI 2.10, 5.3): a header in sector 1 and its entry array, both
// inside the system area on hybrid ISOs, and a backup copy (entries, then
// header in the sector they point back from) at the end of the image.
const (
	gptSignature     = "EFI PART"
	gptMinHeaderLen  = 92
	gptMaxEntries    = 1024
	gptMinEntryLen   = 128
	gptMaxEntryLen   = 1024
	gptMaxSectorNum  = 1 << 40
	gptHeaderCRCOff  = 16
	gptMyLBAOff      = 24
	gptAltLBAOff     = 32
	gptFirstOff      = 40
	gptLastOff       = 48
	gptEntriesLBAOff = 72
	gptEntriesCRCOff = 88
)

// gpt is the primary GPT of a system area.
type gpt struct {
	header                  []byte // as long as its header-size field says
	entries                 []byte
	entryLen                int
	backupLBA               int64
	firstUsable, lastUsable int64
	entriesLBA              int64
}

// parseGPT reads and checks the primary GPT of the system area area of an
// image of fileEnd sectors: both CRCs, the entry array inside the system
// area, the backup header inside the image, every used entry a sector
// range.
func parseGPT(area []byte, fileEnd int64) (*gpt, error) {
	h := area[diskSector : 2*diskSector]
	hlen := binary.LittleEndian.Uint32(h[12:])
	if hlen < gptMinHeaderLen || hlen > diskSector {
		return nil, fmt.Errorf("%w: GPT header of %d bytes", ErrSystemArea, hlen)
	}
	g := &gpt{header: bytes.Clone(h[:hlen])}
	if crcOf(g.header, gptHeaderCRCOff) != binary.LittleEndian.Uint32(g.header[gptHeaderCRCOff:]) {
		return nil, fmt.Errorf("%w: GPT header CRC mismatch", ErrSystemArea)
	}
	u64 := func(off int) (int64, error) {
		v := binary.LittleEndian.Uint64(g.header[off:])
		if v >= gptMaxSectorNum {
			return 0, fmt.Errorf("%w: GPT header field at %d: sector %d", ErrSystemArea, off, v)
		}
		return int64(v), nil
	}
	var my int64
	var err error
	for _, f := range []struct {
		dst *int64
		off int
	}{{&my, gptMyLBAOff}, {&g.backupLBA, gptAltLBAOff}, {&g.firstUsable, gptFirstOff}, {&g.lastUsable, gptLastOff}, {&g.entriesLBA, gptEntriesLBAOff}} {
		if *f.dst, err = u64(f.off); err != nil {
			return nil, err
		}
	}
	n := int64(binary.LittleEndian.Uint32(g.header[80:]))
	elen := int64(binary.LittleEndian.Uint32(g.header[84:]))
	g.entryLen = int(elen)
	size := n * elen
	switch {
	case my != 1:
		return nil, fmt.Errorf("%w: primary GPT header says it is in sector %d", ErrSystemArea, my)
	case n < 1 || n > gptMaxEntries || elen < gptMinEntryLen || elen > gptMaxEntryLen || elen%8 != 0:
		return nil, fmt.Errorf("%w: GPT of %d entries of %d bytes", ErrSystemArea, n, elen)
	case g.entriesLBA < 2 || g.entriesLBA*diskSector+size > systemAreaLen:
		return nil, fmt.Errorf("%w: GPT entries at sector %d reach past the system area", ErrSystemArea, g.entriesLBA)
	case g.firstUsable*diskSector < g.entriesLBA*diskSector+size || g.firstUsable > g.lastUsable:
		return nil, fmt.Errorf("%w: GPT usable sectors %d to %d", ErrSystemArea, g.firstUsable, g.lastUsable)
	case g.backupLBA >= fileEnd || g.backupEntries() <= g.firstUsable:
		return nil, fmt.Errorf("%w: backup GPT header in sector %d of an image of %d", ErrSystemArea, g.backupLBA, fileEnd)
	}
	g.entries = bytes.Clone(area[g.entriesLBA*diskSector : g.entriesLBA*diskSector+size])
	if crc32.ChecksumIEEE(g.entries) != binary.LittleEndian.Uint32(g.header[gptEntriesCRCOff:]) {
		return nil, fmt.Errorf("%w: GPT entries CRC mismatch", ErrSystemArea)
	}
	for i, r := range g.ranges() {
		if r[0] > r[1]-1 || r[1] > gptMaxSectorNum {
			return nil, fmt.Errorf("%w: GPT entry %d: sectors %d to %d", ErrSystemArea, i+1, r[0], r[1]-1)
		}
	}
	return g, nil
}

// entrySectors is the size of the entry array in sectors.
func (g *gpt) entrySectors() int64 {
	return roundUp(int64(len(g.entries)), diskSector) / diskSector
}

// backupEntries is where the backup entry array starts: right before the
// backup header.
func (g *gpt) backupEntries() int64 { return g.backupLBA - g.entrySectors() }

// ranges returns [first, last+1) of every used entry, in entry order
// (unused entries, with a zero type GUID, are left out).
func (g *gpt) ranges() [][2]int64 {
	var out [][2]int64
	for off := 0; off+g.entryLen <= len(g.entries); off += g.entryLen {
		e := g.entries[off:]
		if allZero(e[:16]) {
			continue
		}
		first, last := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
		if first >= gptMaxSectorNum || last >= gptMaxSectorNum {
			out = append(out, [2]int64{1, 0}) // reported as malformed by parseGPT
			continue
		}
		out = append(out, [2]int64{int64(first), int64(last) + 1})
	}
	return out
}

// carryGPT writes g, moved, into area (header and entries) and returns
// the backup GPT and its byte offset in the template.
func (m *sectorMap) carryGPT(g *gpt, area []byte) ([]byte, int64, error) {
	entries := bytes.Clone(g.entries)
	for off := 0; off+g.entryLen <= len(entries); off += g.entryLen {
		e := entries[off:]
		if allZero(e[:16]) {
			continue
		}
		first, last := int64(binary.LittleEndian.Uint64(e[32:])), int64(binary.LittleEndian.Uint64(e[40:]))
		s, end, err := m.span(first, last+1)
		if err != nil {
			return nil, 0, fmt.Errorf("GPT entry %d: %w", off/g.entryLen+1, err)
		}
		binary.LittleEndian.PutUint64(e[32:], uint64(s))
		binary.LittleEndian.PutUint64(e[40:], uint64(end-1))
	}
	backup, ok1 := m.fromEnd(g.backupLBA)
	lastUsable, ok2 := m.fromEnd(g.lastUsable)
	backupEntries := backup - g.entrySectors()
	switch {
	case !ok1 || !ok2:
		return nil, 0, fmt.Errorf("%w: GPT backup header (sector %d) or last usable sector (%d) not at the image end (%d)", ErrSystemArea, g.backupLBA, g.lastUsable, m.full.FileEnd)
	case backupEntries < m.tpl.VolumeEnd || backup >= m.tpl.FileEnd:
		return nil, 0, fmt.Errorf("%w: backup GPT at sectors %d to %d does not fit between the template's volume (%d) and its end (%d)", ErrSystemArea, backupEntries, backup, m.tpl.VolumeEnd, m.tpl.FileEnd)
	case lastUsable < g.firstUsable || lastUsable >= backup:
		return nil, 0, fmt.Errorf("%w: GPT last usable sector %d", ErrSystemArea, lastUsable)
	}

	primary := bytes.Clone(g.header)
	binary.LittleEndian.PutUint64(primary[gptAltLBAOff:], uint64(backup))
	binary.LittleEndian.PutUint64(primary[gptLastOff:], uint64(lastUsable))
	binary.LittleEndian.PutUint32(primary[gptEntriesCRCOff:], crc32.ChecksumIEEE(entries))
	secondary := bytes.Clone(primary)
	binary.LittleEndian.PutUint64(secondary[gptMyLBAOff:], uint64(backup))
	binary.LittleEndian.PutUint64(secondary[gptAltLBAOff:], 1)
	binary.LittleEndian.PutUint64(secondary[gptEntriesLBAOff:], uint64(backupEntries))
	for _, h := range [][]byte{primary, secondary} {
		binary.LittleEndian.PutUint32(h[gptHeaderCRCOff:], crcOf(h, gptHeaderCRCOff))
	}
	copy(area[diskSector:], primary)
	copy(area[g.entriesLBA*diskSector:], entries)
	m.gptEnd = int(g.entriesLBA*diskSector) + len(entries)

	out := make([]byte, (g.entrySectors()+1)*diskSector)
	copy(out, entries)
	copy(out[g.entrySectors()*diskSector:], secondary)
	return out, backupEntries * diskSector, nil
}

// crcOf is the CRC32 of b with the 4 bytes at off taken as zero.
func crcOf(b []byte, off int) uint32 {
	c := bytes.Clone(b)
	clear(c[off : off+4])
	return crc32.ChecksumIEEE(c)
}
