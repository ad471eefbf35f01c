//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"path"
	"sort"
	"strings"
)

// cpioEntry is one member of a newc archive.
type cpioEntry struct {
	Name  string // relative path, no leading slash
	Mode  uint32 // full st_mode: type bits and permissions
	Data  []byte // file content or symlink target
	Major uint32 // rdev major, for device nodes
	Minor uint32 // rdev minor, for device nodes
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChr  = 0o020000
	modeLink = 0o120000
)

// newcArchive writes a newc ("070701") cpio archive of entries, in order,
// with a TRAILER!!! member. Every entry gets its own inode number.
func newcArchive(entries []cpioEntry) []byte {
	var b bytes.Buffer
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	write := func(ino int, e cpioEntry) {
		nlink := 1
		if e.Mode&0o170000 == modeDir {
			nlink = 2
		}
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.Mode, 0, 0, nlink, 0, len(e.Data), 0, 0, e.Major, e.Minor, len(e.Name)+1, 0)
		b.WriteString(e.Name)
		b.WriteByte(0)
		pad()
		b.Write(e.Data)
		pad()
	}
	for i, e := range entries {
		write(i+1, e)
	}
	write(0, cpioEntry{Name: "TRAILER!!!"})
	return b.Bytes()
}

// withParents returns entries preceded by a directory entry (0755) for
// every parent directory not already listed, parents before children. The
// kernel's initramfs unpacker skips a file whose directory does not exist.
func withParents(entries []cpioEntry) []cpioEntry {
	have := map[string]bool{}
	for _, e := range entries {
		if e.Mode&0o170000 == modeDir {
			have[e.Name] = true
		}
	}
	var dirs []string
	for _, e := range entries {
		for d := path.Dir(e.Name); d != "." && d != "/" && !have[d]; d = path.Dir(d) {
			have[d] = true
			dirs = append(dirs, d)
		}
	}
	sort.Slice(dirs, func(i, j int) bool {
		if ci, cj := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/"); ci != cj {
			return ci < cj
		}
		return dirs[i] < dirs[j]
	})
	out := make([]cpioEntry, 0, len(dirs)+len(entries))
	for _, d := range dirs {
		out = append(out, cpioEntry{Name: d, Mode: modeDir | 0o755})
	}
	return append(out, entries...)
}

// gzipBytes compresses b as one gzip member.
func gzipBytes(b []byte) ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
