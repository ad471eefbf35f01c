package customize

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// isoEntry is one file, directory or symbolic link of an ISO 9660 image.
type isoEntry struct {
	Path   string      // slash-separated, no leading slash
	Mode   fs.FileMode // type and permissions: Rock Ridge PX, else 0755 directories and 0644 files
	Extent Area        // regular files: their data; directories: their records
	Target string      // symbolic links: the Rock Ridge target
}

// isoTree is what readISOTree found.
type isoTree struct {
	VolumeID string
	Entries  []isoEntry // a directory before everything inside it
	// Meta are the bytes the image's structure lives in: system area,
	// volume descriptors, path tables, directories. Nothing may be
	// written over them.
	Meta []Area
}

// isoLimits bound the work readISOTree does for an image. An outsider
// controls every length and location in an ISO, so without them a few
// kilobytes of directory records can claim gigabytes or, by pointing at the
// same directories again and again, hours of parsing.
type isoLimits struct {
	DirBytes int64         // directory and continuation-area bytes read, in total
	Records  int           // directory records visited
	Entries  int           // files, directories and links kept
	Depth    int           // directory nesting
	Timeout  time.Duration // wall time for the whole walk
}

var defaultISOLimits = isoLimits{DirBytes: 64 << 20, Records: 1 << 20, Entries: 4096, Depth: 16, Timeout: 30 * time.Second}

const (
	maxVolumeDescriptors = 64
	maxNameLen           = 255  // NAME_MAX, for Rock Ridge names
	maxLinkLen           = 4096 // PATH_MAX, for Rock Ridge link targets
	maxContinuations     = 32   // Rock Ridge CE hops per record, as Linux allows
	dirChunk             = 32   // sectors read at a time
)

// Directory record flags (ECMA-119 9.1.6).
const (
	recHidden     = 0x01
	recDir        = 0x02
	recAssociated = 0x04
	recMultiExt   = 0x80
)

// readISOTree reads the primary volume's directory tree of an ISO 9660
// image of the given size, with Rock Ridge names, modes and symbolic links
// when the root carries the SUSP "SP" entry. Each directory sector is read
// at most once: a directory reached twice (a loop, or directories shared
// between parents) is an error, as is a record that crosses a sector, a
// file or directory outside the image, a duplicate name, a multi-extent
// file, or exceeding lim. Errors wrap ErrBadImage.
//
// Joliet trees are not read: CoreOS live ISOs carry Rock Ridge, and
// coreos-installer itself reads the primary volume only.
func readISOTree(r io.ReaderAt, size int64, lim isoLimits) (*isoTree, error) {
	w := &isoWalker{r: r, size: size, lim: lim, deadline: time.Now().Add(lim.Timeout), seen: map[int64]bool{}, tree: &isoTree{}}
	if err := w.walk(); err != nil {
		return nil, fmt.Errorf("%w: ISO 9660: %v", ErrBadImage, err)
	}
	return w.tree, nil
}

type isoWalker struct {
	r        io.ReaderAt
	size     int64
	lim      isoLimits
	deadline time.Time
	tree     *isoTree

	dirBytes int64
	records  int
	seen     map[int64]bool // directory sectors read
	rr       bool           // Rock Ridge in use
	skip     int            // SUSP bytes to skip at the start of each system use area
	buf      []byte         // directory chunk
	ce       [sectorSize]byte
}

// dirRec is a directory record's fields isoedge uses.
type dirRec struct {
	name   string
	flags  byte
	extent int64 // byte offset of the data
	length int64
	susp   suspInfo
}

func (w *isoWalker) walk() error {
	root, err := w.volumeDescriptors()
	if err != nil {
		return err
	}
	if err := w.detectRockRidge(root); err != nil {
		return err
	}
	return w.dir("", root, 0)
}

// volumeDescriptors reads the descriptor set up to its terminator and
// returns the primary volume's root directory record.
func (w *isoWalker) volumeDescriptors() (dirRec, error) {
	var pvd []byte
	var vd [sectorSize]byte
	end := int64(-1)
	for i := int64(16); i < 16+maxVolumeDescriptors; i++ {
		if err := w.read(vd[:], i*sectorSize); err != nil {
			return dirRec{}, fmt.Errorf("volume descriptor %d: %v", i-16, err)
		}
		if string(vd[1:6]) != "CD001" {
			return dirRec{}, fmt.Errorf("no volume descriptor in sector %d", i)
		}
		if vd[0] == 1 && pvd == nil {
			pvd = bytes.Clone(vd[:])
		}
		if vd[0] == 255 {
			end = (i + 1) * sectorSize
			break
		}
	}
	switch {
	case pvd == nil:
		return dirRec{}, fmt.Errorf("no primary volume descriptor")
	case end < 0:
		return dirRec{}, fmt.Errorf("no volume descriptor set terminator in %d sectors", maxVolumeDescriptors)
	case binary.LittleEndian.Uint16(pvd[128:]) != sectorSize:
		return dirRec{}, fmt.Errorf("logical block size %d, want %d", binary.LittleEndian.Uint16(pvd[128:]), sectorSize)
	}
	w.tree.VolumeID = strings.TrimRight(string(pvd[40:72]), " \x00")
	w.tree.Meta = append(w.tree.Meta, Area{Off: 0, Len: end})
	// Path tables are never read, only kept clear of embed areas.
	ptLen := int64(binary.LittleEndian.Uint32(pvd[132:]))
	for _, loc := range []uint32{binary.LittleEndian.Uint32(pvd[140:]), binary.LittleEndian.Uint32(pvd[144:]),
		binary.BigEndian.Uint32(pvd[148:]), binary.BigEndian.Uint32(pvd[152:])} {
		if off := int64(loc) * sectorSize; loc != 0 && off < w.size {
			w.tree.Meta = append(w.tree.Meta, Area{Off: off, Len: min(ptLen, w.size-off)})
		}
	}
	root, err := w.record(pvd[156:190], false)
	if err != nil {
		return dirRec{}, fmt.Errorf("root directory record: %v", err)
	}
	if root.flags&recDir == 0 {
		return dirRec{}, fmt.Errorf("root directory record is not a directory")
	}
	return root, nil
}

// detectRockRidge looks for the SUSP "SP" entry at the start of the system
// use area of the root's "." record (SUSP 1.12, 5.3).
func (w *isoWalker) detectRockRidge(root dirRec) error {
	if root.length < 34 || root.extent+34 > w.size {
		return fmt.Errorf("root directory of %d bytes at %d outside the image", root.length, root.extent)
	}
	var first [255]byte
	n := min(int64(len(first)), root.length, w.size-root.extent)
	if err := w.read(first[:n], root.extent); err != nil {
		return err
	}
	l := int64(first[0])
	if l < 34 || l > n || first[32] != 1 || first[33] != 0 {
		return fmt.Errorf("root directory does not start with its \".\" record")
	}
	sua := first[34:l]
	if len(sua) >= 7 && string(sua[:2]) == "SP" && sua[2] >= 7 && sua[4] == 0xBE && sua[5] == 0xEF {
		w.rr, w.skip = true, int(sua[6])
	}
	return nil
}

// dir reads the directory d at path p (depth levels below the root): its
// entries first, then each subdirectory's.
func (w *isoWalker) dir(p string, d dirRec, depth int) error {
	if depth > w.lim.Depth {
		return fmt.Errorf("%s: directories nested deeper than %d", p, w.lim.Depth)
	}
	if time.Now().After(w.deadline) {
		return fmt.Errorf("reading the directory tree took longer than %v", w.lim.Timeout)
	}
	if err := w.claim(p, d); err != nil {
		return err
	}
	names := map[string]bool{}
	var subdirs []int // indexes into Entries
	var subRecs []dirRec
	for first := int64(0); first < d.length; first += dirChunk * sectorSize {
		n := min(d.length-first, dirChunk*sectorSize)
		if int64(cap(w.buf)) < n {
			w.buf = make([]byte, dirChunk*sectorSize)
		}
		chunk := w.buf[:n]
		if err := w.read(chunk, d.extent+first); err != nil {
			return fmt.Errorf("%s: %v", p, err)
		}
		for sec := int64(0); sec < n; sec += sectorSize {
			recs, err := w.sector(p, chunk[sec:min(sec+sectorSize, n)], d)
			if err != nil {
				return err
			}
			for _, rec := range recs {
				if names[rec.name] {
					return fmt.Errorf("%s: %q listed twice", p, rec.name)
				}
				names[rec.name] = true
				e, err := w.entry(path.Join(p, rec.name), rec)
				if err != nil {
					return err
				}
				if len(w.tree.Entries) >= w.lim.Entries {
					return fmt.Errorf("more than %d files and directories", w.lim.Entries)
				}
				if e.Mode.IsDir() {
					subdirs = append(subdirs, len(w.tree.Entries))
					subRecs = append(subRecs, rec)
				}
				w.tree.Entries = append(w.tree.Entries, e)
			}
		}
	}
	for i, idx := range subdirs {
		if err := w.dir(w.tree.Entries[idx].Path, subRecs[i], depth+1); err != nil {
			return err
		}
	}
	return nil
}

// claim charges a directory's bytes to the budget and marks its sectors
// read, failing if any was read before.
func (w *isoWalker) claim(p string, d dirRec) error {
	where := where(p)
	switch {
	case d.length == 0:
		return fmt.Errorf("%s: empty directory extent", where)
	case d.extent < 0 || d.extent > w.size || d.length > w.size-d.extent:
		return fmt.Errorf("%s: directory of %d bytes at %d outside the image", where, d.length, d.extent)
	case d.length > w.lim.DirBytes-w.dirBytes:
		return fmt.Errorf("%s: more than %d bytes of directories", where, w.lim.DirBytes)
	}
	w.dirBytes += d.length
	for s := d.extent / sectorSize; s < (d.extent+d.length+sectorSize-1)/sectorSize; s++ {
		if w.seen[s] {
			return fmt.Errorf("%s: directory sector %d read twice (a directory loop or shared directories)", where, s)
		}
		w.seen[s] = true
	}
	w.tree.Meta = append(w.tree.Meta, Area{Off: d.extent, Len: d.length})
	return nil
}

// sector parses the records of one directory sector (or the last, partial
// one) of directory self, skipping "." and "..", associated files and
// relocated directories. A "." record must describe self: readers that
// take a directory's size from it (go-diskfs, for one) would otherwise be
// told another size than the one checked here.
func (w *isoWalker) sector(p string, b []byte, self dirRec) ([]dirRec, error) {
	var out []dirRec
	for pos := 0; pos < len(b); {
		l := int(b[pos])
		if l == 0 {
			break // the rest of the sector is padding
		}
		if w.records++; w.records > w.lim.Records {
			return nil, fmt.Errorf("more than %d directory records", w.lim.Records)
		}
		if w.records%4096 == 0 && time.Now().After(w.deadline) {
			return nil, fmt.Errorf("reading the directory tree took longer than %v", w.lim.Timeout)
		}
		if l < 34 {
			return nil, fmt.Errorf("%s: directory record of %d bytes at byte %d", p, l, pos)
		}
		if pos+l > len(b) {
			return nil, fmt.Errorf("%s: directory record at byte %d crosses its sector", p, pos)
		}
		raw := b[pos : pos+l]
		pos += l
		if raw[32] == 1 && raw[33] == 0 {
			dot := dirRec{
				extent: (int64(binary.LittleEndian.Uint32(raw[2:])) + int64(raw[1])) * sectorSize,
				length: int64(binary.LittleEndian.Uint32(raw[10:])),
			}
			if dot.extent != self.extent || dot.length != self.length {
				return nil, fmt.Errorf("%s: its \".\" record says %d bytes at %d, its parent %d bytes at %d", where(p), dot.length, dot.extent, self.length, self.extent)
			}
			continue
		}
		if raw[32] == 1 && raw[33] == 1 {
			continue // ".."
		}
		rec, err := w.record(raw, true)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		if rec.flags&recAssociated != 0 || rec.susp.relocated {
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}

// record parses one directory record; a named one (not the root's) with
// its Rock Ridge entries and a checked name.
func (w *isoWalker) record(b []byte, named bool) (dirRec, error) {
	if len(b) < 34 || int(b[0]) != len(b) {
		return dirRec{}, fmt.Errorf("directory record of %d bytes", len(b))
	}
	nameLen := int(b[32])
	if nameLen == 0 || 33+nameLen > len(b) {
		return dirRec{}, fmt.Errorf("directory record name of %d bytes in a %d-byte record", nameLen, len(b))
	}
	rec := dirRec{
		flags:  b[25],
		extent: (int64(binary.LittleEndian.Uint32(b[2:])) + int64(b[1])) * sectorSize,
		length: int64(binary.LittleEndian.Uint32(b[10:])),
	}
	if !named {
		return rec, nil
	}
	isoName := string(b[33 : 33+nameLen])
	if w.rr {
		suaStart := 33 + nameLen + (1 - nameLen%2) + w.skip
		if suaStart < len(b) {
			if err := w.parseSUSP(b[suaStart:], &rec.susp); err != nil {
				return dirRec{}, fmt.Errorf("%q: %v", isoName, err)
			}
		}
	}
	rec.name = isoName
	if rec.susp.hasName {
		rec.name = string(rec.susp.name)
	} else if rec.flags&recDir == 0 {
		// "NAME.EXT;1" → "NAME.EXT", "NAME.;1" → "NAME"
		if i := strings.LastIndexByte(rec.name, ';'); i >= 0 {
			rec.name = rec.name[:i]
		}
		rec.name = strings.TrimSuffix(rec.name, ".")
	}
	if rec.name == "" || rec.name == "." || rec.name == ".." || strings.ContainsAny(rec.name, "/\x00") {
		return dirRec{}, fmt.Errorf("invalid file name %q", rec.name)
	}
	return rec, nil
}

// entry turns a record into an entry at path p.
func (w *isoWalker) entry(p string, rec dirRec) (isoEntry, error) {
	switch {
	case rec.susp.childLink:
		return isoEntry{}, fmt.Errorf("%s: relocated directories (Rock Ridge CL) are not supported", p)
	case rec.flags&recMultiExt != 0:
		return isoEntry{}, fmt.Errorf("%s: files of several extents (4 GiB or more) are not supported", p)
	}
	e := isoEntry{Path: p, Extent: Area{Off: rec.extent, Len: rec.length}}
	mode, hasMode := rec.susp.mode, rec.susp.hasMode
	switch {
	case rec.flags&recDir != 0:
		if hasMode && mode&0o170000 != 0o040000 {
			return isoEntry{}, fmt.Errorf("%s: directory record with Rock Ridge mode %o", p, mode)
		}
		e.Mode = fs.ModeDir | 0o755
		if hasMode {
			e.Mode = unixMode(mode)
		}
		return e, nil
	case rec.susp.isLink || hasMode && mode&0o170000 == 0o120000:
		if !rec.susp.isLink || len(rec.susp.target) == 0 {
			return isoEntry{}, fmt.Errorf("%s: symbolic link without a target", p)
		}
		e.Mode, e.Target, e.Extent = fs.ModeSymlink|0o777, string(rec.susp.target), Area{}
		return e, nil
	case hasMode && mode&0o170000 == 0o040000:
		return isoEntry{}, fmt.Errorf("%s: file record with a directory's Rock Ridge mode", p)
	}
	e.Mode = 0o644
	if hasMode {
		e.Mode = unixMode(mode)
	}
	if e.Extent.Off > w.size || e.Extent.Len > w.size-e.Extent.Off {
		return isoEntry{}, fmt.Errorf("%s: %d bytes at %d extend past the end of the image", p, e.Extent.Len, e.Extent.Off)
	}
	return e, nil
}

// unixMode converts a POSIX st_mode.
func unixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	switch m & 0o170000 {
	case 0o040000:
		mode |= fs.ModeDir
	case 0o120000:
		mode |= fs.ModeSymlink
	case 0o100000:
	case 0o020000:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case 0o060000:
		mode |= fs.ModeDevice
	case 0o010000:
		mode |= fs.ModeNamedPipe
	case 0o140000:
		mode |= fs.ModeSocket
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}

// read reads len(b) bytes at off, which must lie inside the image.
func (w *isoWalker) read(b []byte, off int64) error {
	if off < 0 || off > w.size || int64(len(b)) > w.size-off {
		return fmt.Errorf("%d bytes at %d outside the image", len(b), off)
	}
	n, err := w.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// where names a directory in errors.
func where(p string) string {
	if p == "" {
		return "root directory"
	}
	return p
}
