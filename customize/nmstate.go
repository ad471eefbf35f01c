package customize

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

// PathNmstatectl is where the nmstatectl archive puts the binary.
const PathNmstatectl = "usr/bin/nmstatectl"

// ErrNoNmstatectl means the rootfs holds no regular file named nmstatectl.
var ErrNoNmstatectl = errors.New("customize: no nmstatectl in the rootfs")

// ErrNoDumpErofs is returned for an erofs rootfs when dump.erofs is not
// on PATH.
var ErrNoDumpErofs = errors.New("customize: erofs rootfs needs dump.erofs (erofs-utils)")

const (
	maxNmstatectl    = 512 << 20 // far beyond the ~20 MB binary
	maxRootfsMembers = 64        // cpio members looked at before giving up
	maxWalkDirs      = 20000     // directories listed by the fallback walk
	maxWalkDepth     = 32
	squashCacheBytes = 16 << 20 // go-diskfs block cache (its default is 128 MB)
	dumpErofs        = "dump.erofs"
	fsckErofs        = "fsck.erofs"
)

// NmstateNeeded reports whether an OpenShift version gets nmstatectl in
// its minimal ISO and PXE initrd: versions ≥ 4.18.0-ec.0, compared like
// semantic versions (a pre-release sorts before its release, so
// "4.18.0-ec.0" < "4.18" = "4.18.0" < "4.19.3"). The version is
// major.minor[.patch][-pre][+build] with an optional leading "v"; anything
// else is false. As upstream, an RHCOS-style "417.94.…" compares ≥ 4.18.
func NmstateNeeded(openshiftVersion string) bool {
	v, ok := parseVersion(openshiftVersion)
	if !ok {
		return false
	}
	return compareVersions(v, version{nums: [3]uint64{4, 18, 0}, pre: []string{"ec", "0"}}) >= 0
}

type version struct {
	nums [3]uint64
	pre  []string // dot-separated pre-release identifiers; nil for a release
}

var versionRE = regexp.MustCompile(`^v?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$`)

func parseVersion(s string) (version, bool) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return version{}, false
	}
	var v version
	for i, part := range m[1:4] {
		if part == "" {
			continue
		}
		n, err := strconv.ParseUint(part, 10, 64)
		if err != nil {
			return version{}, false
		}
		v.nums[i] = n
	}
	if m[4] != "" {
		v.pre = strings.Split(m[4], ".")
	}
	return v, true
}

func compareVersions(a, b version) int {
	for i := range a.nums {
		if a.nums[i] != b.nums[i] {
			if a.nums[i] < b.nums[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case a.pre == nil && b.pre == nil:
		return 0
	case a.pre == nil:
		return 1
	case b.pre == nil:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		if c := comparePreIdent(a.pre[i], b.pre[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(a.pre) < len(b.pre):
		return -1
	case len(a.pre) > len(b.pre):
		return 1
	}
	return 0
}

// comparePreIdent orders pre-release identifiers: numeric ones numerically
// and before alphanumeric ones, alphanumeric ones lexically.
func comparePreIdent(a, b string) int {
	an, aErr := strconv.ParseUint(a, 10, 64)
	bn, bErr := strconv.ParseUint(b, 10, 64)
	switch {
	case aErr == nil && bErr == nil:
		switch {
		case an < bn:
			return -1
		case an > bn:
			return 1
		}
		return 0
	case aErr == nil:
		return -1
	case bErr == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// ExtractNmstatectl finds nmstatectl in the image's live rootfs and returns
// it as a gzip'd newc cpio archive holding usr/bin/nmstatectl (mode 0755)
// and its parent directories, 4-byte padded, to be appended to an initrd.
//
// images/pxeboot/rootfs.img is an uncompressed newc cpio whose members
// include root.squashfs or root.erofs. The member is located by reading the
// cpio headers in place; the rootfs is never copied. A squashfs is read
// directly from the ISO. An erofs is copied (that member only) into a
// temporary file in workDir and read with dump.erofs from erofs-utils;
// without it the error is ErrNoDumpErofs. Everything created in workDir is
// removed before returning.
func ExtractNmstatectl(iso *os.File, l *Layout, workDir string) ([]byte, error) {
	rootfs, err := l.File(PathRootfs)
	if err != nil {
		return nil, err
	}
	name, member, err := findRootMember(iso, rootfs)
	if err != nil {
		return nil, err
	}
	var tree rootTree
	switch path.Ext(name) {
	case ".squashfs":
		t, err := openSquashTree(iso, member)
		if err != nil {
			return nil, err
		}
		tree = t
	case ".erofs":
		t, err := openErofsTree(iso, member, workDir)
		if err != nil {
			return nil, err
		}
		defer t.close()
		tree = t
	}
	p, err := findNmstatectl(tree)
	if err != nil {
		return nil, err
	}
	data, err := tree.read(p)
	if err != nil {
		return nil, fmt.Errorf("customize: read %s from %s: %w", p, name, err)
	}
	return Archive(ArchiveFile{Name: PathNmstatectl, Mode: 0o755, Data: data})
}

// findRootMember walks the newc headers of the rootfs cpio (an extent of
// iso) and returns the name and extent of its root.squashfs or root.erofs.
func findRootMember(iso io.ReaderAt, rootfs Area) (string, Area, error) {
	off, end := rootfs.Off, rootfs.Off+rootfs.Len
	var hdr [110]byte
	for range maxRootfsMembers {
		// Concatenated archives may be separated by NUL padding.
		for off+4 <= end {
			var w [4]byte
			if _, err := iso.ReadAt(w[:], off); err != nil {
				return "", Area{}, fmt.Errorf("customize: read %s: %w", PathRootfs, err)
			}
			if w != [4]byte{} {
				break
			}
			off += 4
		}
		if off+int64(len(hdr)) > end {
			break
		}
		if _, err := iso.ReadAt(hdr[:], off); err != nil {
			return "", Area{}, fmt.Errorf("customize: read %s: %w", PathRootfs, err)
		}
		if m := string(hdr[:6]); m != "070701" && m != "070702" {
			return "", Area{}, fmt.Errorf("%w: %s is not an uncompressed newc cpio archive at byte %d", ErrBadImage, PathRootfs, off-rootfs.Off)
		}
		field := func(i int) (int64, error) {
			return strconv.ParseInt(string(hdr[6+8*i:14+8*i]), 16, 64)
		}
		size, err1 := field(6)
		nameSize, err2 := field(11)
		if err1 != nil || err2 != nil || nameSize < 1 || nameSize > 4096 {
			return "", Area{}, fmt.Errorf("%w: %s: bad cpio header at byte %d", ErrBadImage, PathRootfs, off-rootfs.Off)
		}
		nameBuf := make([]byte, nameSize)
		if _, err := iso.ReadAt(nameBuf, off+110); err != nil {
			return "", Area{}, fmt.Errorf("customize: read %s: %w", PathRootfs, err)
		}
		name := strings.TrimPrefix(string(bytes.TrimRight(nameBuf, "\x00")), "./")
		data := align4(off + 110 + nameSize - rootfs.Off)
		if data+size > rootfs.Len {
			return "", Area{}, fmt.Errorf("%w: %s: cpio member %q extends past the archive", ErrBadImage, PathRootfs, name)
		}
		if name == "root.squashfs" || name == "root.erofs" {
			return name, Area{Off: rootfs.Off + data, Len: size}, nil
		}
		// TRAILER!!! ends one archive; another may follow.
		off = rootfs.Off + align4(data+size)
	}
	return "", Area{}, fmt.Errorf("%w: %s holds no root.squashfs or root.erofs", ErrBadImage, PathRootfs)
}

func align4(n int64) int64 { return (n + 3) &^ 3 }

// rootTree is a read-only view of a root filesystem image.
type rootTree interface {
	// list returns the entries of a directory ("." is the root).
	list(dir string) ([]treeEntry, error)
	// read returns the content of a regular file.
	read(p string) ([]byte, error)
}

type treeEntry struct {
	name    string
	dir     bool
	regular bool
}

// findNmstatectl returns the path of a regular file named nmstatectl:
// usr/bin/nmstatectl, else ostree/deploy/*/deploy/*/usr/bin/nmstatectl
// (RHCOS), else the first found by a bounded depth-first walk in name order.
func findNmstatectl(t rootTree) (string, error) {
	isFile := func(p string) bool {
		ents, err := t.list(path.Dir(p))
		if err != nil {
			return false
		}
		for _, e := range ents {
			if e.name == path.Base(p) {
				return e.regular
			}
		}
		return false
	}
	if isFile(PathNmstatectl) {
		return PathNmstatectl, nil
	}
	if stateroots, err := t.list("ostree/deploy"); err == nil {
		for _, s := range stateroots {
			if !s.dir {
				continue
			}
			deploys, err := t.list(path.Join("ostree/deploy", s.name, "deploy"))
			if err != nil {
				continue
			}
			for _, d := range deploys {
				p := path.Join("ostree/deploy", s.name, "deploy", d.name, PathNmstatectl)
				if d.dir && isFile(p) {
					return p, nil
				}
			}
		}
	}
	listed := 0
	var walk func(dir string, depth int) (string, error)
	walk = func(dir string, depth int) (string, error) {
		if depth > maxWalkDepth {
			return "", nil
		}
		if listed++; listed > maxWalkDirs {
			return "", fmt.Errorf("%w: gave up after %d directories", ErrNoNmstatectl, maxWalkDirs)
		}
		ents, err := t.list(dir)
		if err != nil {
			return "", fmt.Errorf("customize: list %s in the rootfs: %w", dir, err)
		}
		slices.SortFunc(ents, func(a, b treeEntry) int { return strings.Compare(a.name, b.name) })
		for _, e := range ents {
			if e.name == "nmstatectl" && e.regular {
				return path.Join(dir, e.name), nil
			}
		}
		for _, e := range ents {
			if !e.dir {
				continue
			}
			if p, err := walk(path.Join(dir, e.name), depth+1); p != "" || err != nil {
				return p, err
			}
		}
		return "", nil
	}
	p, err := walk(".", 0)
	if err == nil && p == "" {
		err = ErrNoNmstatectl
	}
	return p, err
}

// squashTree reads a squashfs member of the ISO in place with go-diskfs.
type squashTree struct{ fs *squashfs.FileSystem }

func openSquashTree(iso *os.File, member Area) (*squashTree, error) {
	var fsys *squashfs.FileSystem
	err := diskfsCall("root.squashfs", func() (err error) {
		fsys, err = squashfs.Read(file.New(iso, true), member.Len, member.Off, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: read root.squashfs: %v", ErrBadImage, err)
	}
	fsys.SetCacheSize(squashCacheBytes)
	return &squashTree{fs: fsys}, nil
}

func (s *squashTree) list(dir string) ([]treeEntry, error) {
	var out []treeEntry
	err := diskfsCall("root.squashfs directory "+dir, func() error {
		ents, err := s.fs.ReadDir(dir)
		if err != nil {
			return err
		}
		out = make([]treeEntry, 0, len(ents))
		for _, e := range ents {
			out = append(out, treeEntry{name: e.Name(), dir: e.IsDir(), regular: e.Type().IsRegular()})
		}
		return nil
	})
	return out, err
}

func (s *squashTree) read(p string) ([]byte, error) {
	var b []byte
	err := diskfsCall("root.squashfs file "+p, func() error {
		f, err := s.fs.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err = io.ReadAll(io.LimitReader(f, maxNmstatectl+1))
		if err == nil && len(b) > maxNmstatectl {
			err = fmt.Errorf("larger than %d bytes", maxNmstatectl)
		}
		return err
	})
	return b, err
}

// erofsTree reads an erofs image copied out of the ISO with erofs-utils:
// `dump.erofs --path=DIR --ls` lists, `dump.erofs --cat --path=FILE` reads.
// erofs-utils older than the --cat option (Debian 12 ships 1.5) fall back
// to extracting the whole image with `fsck.erofs --extract` into the
// scratch directory, which costs the image's unpacked size.
type erofsTree struct {
	dir, img string
	dump     string
	cat      bool // dump.erofs has --cat
}

func openErofsTree(iso *os.File, member Area, workDir string) (_ *erofsTree, err error) {
	dump, err := exec.LookPath(dumpErofs)
	if err != nil {
		return nil, ErrNoDumpErofs
	}
	if workDir == "" {
		workDir = os.TempDir()
	}
	dir, err := os.MkdirTemp(workDir, "nmstate-erofs-*")
	if err != nil {
		return nil, err
	}
	t := &erofsTree{dir: dir, img: filepath.Join(dir, "root.erofs"), dump: dump}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	out, err := os.OpenFile(t.img, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	// A section reader leaves the caller's file position alone.
	n, err := io.CopyBuffer(out, io.NewSectionReader(iso, member.Off, member.Len), make([]byte, 1<<20))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != member.Len {
		err = fmt.Errorf("copied %d of %d bytes", n, member.Len)
	}
	if err != nil {
		return nil, fmt.Errorf("customize: copy root.erofs: %w", err)
	}
	help, _ := exec.Command(dump, "--help").CombinedOutput()
	t.cat = bytes.Contains(help, []byte("--cat"))
	return t, nil
}

func (t *erofsTree) close() { os.RemoveAll(t.dir) }

func (t *erofsTree) run(args ...string) ([]byte, error) {
	cmd := exec.Command(t.dump, append(args, t.img)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	if err != nil || strings.Contains(msg, "<E>") {
		if msg == "" && err != nil {
			msg = err.Error()
		}
		return nil, fmt.Errorf("dump.erofs %s: %s", strings.Join(args, " "), msg)
	}
	return stdout.Bytes(), nil
}

// erofsLsRow is one row of `dump.erofs --ls`: NID, file type, name.
var erofsLsRow = regexp.MustCompile(`^\s*([0-9]+)\s+([0-9]+)\s+(.+)$`)

// erofs directory entry file types (EROFS_FT_*).
const (
	erofsRegular = 1
	erofsDir     = 2
)

func (t *erofsTree) list(dir string) ([]treeEntry, error) {
	out, err := t.run("--path=/"+strings.TrimPrefix(path.Clean("/"+dir), "/"), "--ls")
	if err != nil {
		return nil, err
	}
	var ents []treeEntry
	rows := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !rows {
			f := strings.Fields(line)
			rows = len(f) == 3 && f[0] == "NID" && f[1] == "TYPE"
			continue
		}
		m := erofsLsRow.FindStringSubmatch(line)
		if m == nil || m[3] == "." || m[3] == ".." {
			continue
		}
		typ, _ := strconv.Atoi(m[2])
		ents = append(ents, treeEntry{name: m[3], dir: typ == erofsDir, regular: typ == erofsRegular})
	}
	if !rows {
		return nil, fmt.Errorf("dump.erofs --ls %s: %w", dir, fs.ErrNotExist)
	}
	return ents, sc.Err()
}

func (t *erofsTree) read(p string) ([]byte, error) {
	if t.cat {
		b, err := t.run("--cat", "--path=/"+p)
		if err == nil && len(b) > maxNmstatectl {
			err = fmt.Errorf("larger than %d bytes", maxNmstatectl)
		}
		return b, err
	}
	fsck, err := exec.LookPath(fsckErofs)
	if err != nil {
		return nil, fmt.Errorf("%w: this dump.erofs has no --cat and fsck.erofs is missing", ErrNoDumpErofs)
	}
	dest := filepath.Join(t.dir, "tree")
	cmd := exec.Command(fsck, "--extract="+dest, "--no-preserve", t.img)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("fsck.erofs --extract: %v: %s", err, bytes.TrimSpace(out))
	}
	f, err := os.Open(filepath.Join(dest, filepath.FromSlash(p)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxNmstatectl+1))
	if err == nil && len(b) > maxNmstatectl {
		err = fmt.Errorf("larger than %d bytes", maxNmstatectl)
	}
	return b, err
}
