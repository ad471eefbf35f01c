package customize

import (
	"encoding/binary"
	"fmt"
)

// craftISO builds ISO 9660 images sector by sector, for directory trees
// no mastering tool writes: loops, shared directories, huge lengths,
// endless Rock Ridge continuations.
type craftISO struct {
	b []byte
}

// newCraftISO returns an image of n sectors with a primary volume
// descriptor (root directory at sector rootLBA, rootLen bytes) and the set
// terminator in sectors 16 and 17.
func newCraftISO(n int, rootLBA, rootLen uint32) *craftISO {
	c := &craftISO{b: make([]byte, n*sectorSize)}
	pvd := c.b[16*sectorSize:]
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	pvd[6] = 1
	copy(pvd[40:72], fmt.Sprintf("%-32s", "rhcos-crafted"))
	binary.LittleEndian.PutUint32(pvd[80:], uint32(n))
	binary.LittleEndian.PutUint16(pvd[128:], sectorSize)
	copy(pvd[156:], craftRecord("\x00", rootLBA, rootLen, recDir, nil))
	term := c.b[17*sectorSize:]
	term[0] = 255
	copy(term[1:], "CD001")
	return c
}

// craftRecord returns a directory record; name "\x00" is ".", "\x01" "..".
func craftRecord(name string, lba, length uint32, flags byte, sua []byte) []byte {
	n := 33 + len(name)
	if len(name)%2 == 0 {
		n++
	}
	r := make([]byte, n, n+len(sua)+1)
	binary.LittleEndian.PutUint32(r[2:], lba)
	binary.BigEndian.PutUint32(r[6:], lba)
	binary.LittleEndian.PutUint32(r[10:], length)
	binary.BigEndian.PutUint32(r[14:], length)
	r[25] = flags
	r[28], r[31] = 1, 1 // volume sequence number
	r[32] = byte(len(name))
	copy(r[33:], name)
	r = append(r, sua...)
	if len(r)%2 != 0 {
		r = append(r, 0)
	}
	r[0] = byte(len(r))
	return r
}

// dir writes a directory at sector lba: ".", "..", then recs, packed
// into as many sectors as they need (records never cross a sector). It
// returns the directory's length in bytes.
func (c *craftISO) dir(lba uint32, selfSUA []byte, recs ...[]byte) uint32 {
	all := append([][]byte{craftRecord("\x00", lba, 0, recDir, selfSUA), craftRecord("\x01", lba, 0, recDir, nil)}, recs...)
	off := int(lba) * sectorSize
	pos := 0
	for _, r := range all {
		if pos%sectorSize+len(r) > sectorSize {
			pos += sectorSize - pos%sectorSize
		}
		copy(c.b[off+pos:], r)
		pos += len(r)
	}
	length := uint32((pos + sectorSize - 1) / sectorSize * sectorSize)
	// "." records its own length.
	binary.LittleEndian.PutUint32(c.b[off+10:], length)
	return length
}

// susp returns one SUSP entry.
func susp(sig string, data ...byte) []byte {
	return append([]byte{sig[0], sig[1], byte(4 + len(data)), 1}, data...)
}

// suspSP is the "SP" entry that turns Rock Ridge on.
func suspSP() []byte { return susp("SP", 0xBE, 0xEF, 0) }

// suspNM is a Rock Ridge name.
func suspNM(name string) []byte { return susp("NM", append([]byte{0}, name...)...) }

// suspPX is a Rock Ridge mode.
func suspPX(mode uint32) []byte {
	d := make([]byte, 32)
	binary.LittleEndian.PutUint32(d, mode)
	binary.BigEndian.PutUint32(d[4:], mode)
	return susp("PX", d...)
}

// suspCE points at a continuation area.
func suspCE(block, off, length uint32) []byte {
	d := make([]byte, 24)
	for i, v := range []uint32{block, off, length} {
		binary.LittleEndian.PutUint32(d[8*i:], v)
		binary.BigEndian.PutUint32(d[8*i+4:], v)
	}
	return susp("CE", d...)
}

// craftDAG is the image of issue 9: a few kilobytes of directories, each
// level holding fanout records that all point at the next level's single
// directory, depth levels deep. A walker that follows records without
// remembering what it read visits fanout^depth directories.
func craftDAG(fanout, depth int) []byte {
	c := newCraftISO(18+depth+2, 18, 0)
	for level := depth; level >= 0; level-- {
		lba := uint32(18 + level)
		var recs [][]byte
		if level < depth {
			for i := range fanout {
				recs = append(recs, craftRecord(fmt.Sprintf("D%02d", i), lba+1, sectorSize, recDir, nil))
			}
		} else {
			recs = append(recs, craftRecord("FILE.;1", uint32(18+depth+1), 5, 0, nil))
		}
		length := c.dir(lba, nil, recs...)
		if level == 0 {
			binary.LittleEndian.PutUint32(c.b[16*sectorSize+156+10:], length)
		}
	}
	return c.b
}

// craftHugeDir is the image of issue 9: one subdirectory record claiming
// 0xFFFFF800 bytes.
func craftHugeDir() []byte {
	c := newCraftISO(21, 18, sectorSize)
	c.dir(18, nil, craftRecord("BIG", 19, 0xFFFFF800, recDir, nil))
	c.dir(19, nil)
	return c.b
}

// craftHugeDot is the same attack on the root directory's own "."
// record, which some readers take the directory's size from.
func craftHugeDot() []byte {
	c := newCraftISO(20, 18, sectorSize)
	c.dir(18, nil)
	binary.LittleEndian.PutUint32(c.b[18*sectorSize+10:], 0xFFFFF800)
	binary.BigEndian.PutUint32(c.b[18*sectorSize+14:], 0xFFFFF800)
	return c.b
}

// craftCELoop has a Rock Ridge continuation area that continues in
// itself.
func craftCELoop() []byte {
	c := newCraftISO(21, 18, sectorSize)
	c.dir(18, suspSP(), craftRecord("A.;1", 20, 0, 0, append(suspNM("a"), suspCE(19, 0, 28)...)))
	copy(c.b[19*sectorSize:], suspCE(19, 0, 28))
	return c.b
}

// craftLoop has a subdirectory record pointing back at the root.
func craftLoop() []byte {
	c := newCraftISO(20, 18, sectorSize)
	c.dir(18, nil, craftRecord("SELF", 18, sectorSize, recDir, nil))
	return c.b
}

// craftShortRecord has a directory record of 11 bytes, too short for its
// fixed fields (once a crash of the walker, found by mutating a fixture).
func craftShortRecord() []byte {
	c := newCraftISO(20, 18, sectorSize)
	c.dir(18, nil)
	c.b[18*sectorSize+68] = 11
	return c.b
}
