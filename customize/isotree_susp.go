package customize

import (
	"encoding/binary"
	"fmt"
)

// suspInfo is what isoedge reads from a record's Rock Ridge entries
// (RRIP 1.12 over SUSP 1.12).
type suspInfo struct {
	name      []byte // NM, concatenated
	hasName   bool
	mode      uint32 // PX st_mode
	hasMode   bool
	target    []byte // SL, assembled
	isLink    bool
	linkOpen  bool // the last SL entry continues in the next
	relocated bool // RE: a relocated directory's original place, skipped
	childLink bool // CL: a placeholder for a relocated directory
}

// parseSUSP reads the system use entries of sua and of the continuation
// areas it chains to. Continuation areas must lie within one sector of the
// image, at most maxContinuations per record, and count against the
// directory byte budget.
func (w *isoWalker) parseSUSP(sua []byte, info *suspInfo) error {
	for hops := 0; ; hops++ {
		ce, err := w.suspArea(sua, info)
		if err != nil || ce == nil {
			return err
		}
		if hops >= maxContinuations {
			return fmt.Errorf("more than %d Rock Ridge continuation areas", maxContinuations)
		}
		block, off, n := int64(ce[0]), int64(ce[1]), int64(ce[2])
		switch {
		case off+n > sectorSize:
			return fmt.Errorf("Rock Ridge continuation area of %d bytes at offset %d crosses its sector", n, off)
		case block*sectorSize+off+n > w.size:
			return fmt.Errorf("Rock Ridge continuation area in sector %d outside the image", block)
		case n > w.lim.DirBytes-w.dirBytes:
			return fmt.Errorf("more than %d bytes of directories", w.lim.DirBytes)
		}
		w.dirBytes += n
		if err := w.read(w.ce[:n], block*sectorSize+off); err != nil {
			return err
		}
		sua = w.ce[:n]
	}
}

// suspArea reads the entries of one area; it returns the continuation
// (block, offset, length) if the area has a CE entry.
func (w *isoWalker) suspArea(b []byte, info *suspInfo) (*[3]uint32, error) {
	var ce *[3]uint32
	for len(b) >= 4 {
		l := int(b[2])
		if l < 4 {
			break // padding, or an entry no reader could step over
		}
		if l > len(b) {
			return nil, fmt.Errorf("Rock Ridge entry %q of %d bytes in %d", b[:2], l, len(b))
		}
		e := b[:l]
		b = b[l:]
		switch string(e[:2]) {
		case "ST":
			return ce, nil
		case "CE":
			if l < 28 {
				return nil, fmt.Errorf("Rock Ridge CE entry of %d bytes", l)
			}
			ce = &[3]uint32{binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint32(e[12:]), binary.LittleEndian.Uint32(e[20:])}
		case "NM":
			if l < 5 {
				return nil, fmt.Errorf("Rock Ridge NM entry of %d bytes", l)
			}
			if e[4]&0x06 != 0 { // CURRENT, PARENT
				continue
			}
			info.name = append(info.name, e[5:]...)
			info.hasName = true
			if len(info.name) > maxNameLen {
				return nil, fmt.Errorf("Rock Ridge name longer than %d bytes", maxNameLen)
			}
		case "PX":
			if l < 12 {
				return nil, fmt.Errorf("Rock Ridge PX entry of %d bytes", l)
			}
			info.mode, info.hasMode = binary.LittleEndian.Uint32(e[4:]), true
		case "SL":
			if l < 5 {
				return nil, fmt.Errorf("Rock Ridge SL entry of %d bytes", l)
			}
			if err := info.addLink(e[4], e[5:]); err != nil {
				return nil, err
			}
		case "RE":
			info.relocated = true
		case "CL":
			info.childLink = true
		}
	}
	return ce, nil
}

// addLink appends the components of one SL entry to the link target
// (RRIP 4.1.3). Components are joined with '/', except after the root and
// where a component continues in the next component record.
func (info *suspInfo) addLink(flags byte, comps []byte) error {
	if info.isLink && !info.linkOpen {
		return fmt.Errorf("Rock Ridge SL entries for two symbolic links")
	}
	info.isLink = true
	for len(comps) >= 2 {
		cflags, n := comps[0], int(comps[1])
		if 2+n > len(comps) {
			return fmt.Errorf("Rock Ridge SL component of %d bytes in %d", n, len(comps)-2)
		}
		text := comps[2 : 2+n]
		comps = comps[2+n:]
		root := false
		switch cflags &^ 1 {
		case 0:
			info.target = append(info.target, text...)
		case 2:
			info.target = append(info.target, '.')
		case 4:
			info.target = append(info.target, ".."...)
		case 8:
			root = true
			info.target = append(info.target, '/')
		default:
			return fmt.Errorf("Rock Ridge SL component flags %#x", cflags)
		}
		more := len(comps) >= 2 || flags&1 != 0
		if more && !root && cflags&1 == 0 {
			info.target = append(info.target, '/')
		}
		if len(info.target) > maxLinkLen {
			return fmt.Errorf("Rock Ridge link target longer than %d bytes", maxLinkLen)
		}
	}
	info.linkOpen = flags&1 != 0
	return nil
}
