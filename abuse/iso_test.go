//go:build abuse

package abuse

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/internal/fixture"
)

// osImage is one OS_IMAGES entry.
type osImage struct {
	OpenshiftVersion string `json:"openshift_version"`
	CPUArchitecture  string `json:"cpu_architecture"`
	URL              string `json:"url"`
	Version          string `json:"version"`
	Type             string `json:"type,omitempty"`
	SHA256           string `json:"sha256,omitempty"`
}

// imageKey names an image in /health.
type imageKey struct{ version, arch string }

func (i osImage) key() imageKey { return imageKey{i.Version, i.CPUArchitecture} }

// image returns an x86_64 OS_IMAGES entry for OpenShift version ocp
// ("4.17") with RHCOS version "<ocp digits>.94.1".
func image(ocp, url string) osImage {
	return osImage{OpenshiftVersion: ocp, CPUArchitecture: "x86_64", URL: url, Version: strings.ReplaceAll(ocp, ".", "") + ".94.1"}
}

func osImagesJSON(t testing.TB, imgs ...osImage) string {
	t.Helper()
	b, err := json.Marshal(imgs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// baseISO is a fixture live ISO and what the tests compare served bytes with.
type baseISO struct {
	path string
	data []byte
	m    fixture.Manifest
}

// buildBase builds a small RHCOS-like ISO with internal/fixture (xorriso).
func buildBase(t testing.TB, opt fixture.Options) *baseISO {
	t.Helper()
	p, m := fixture.Build(t, t.TempDir(), opt)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return &baseISO{path: p, data: data, m: m}
}

// extent returns the byte range of an ISO file, as xorriso reports it.
func (b *baseISO) extent(t testing.TB, isoPath string) (off, n int64) {
	t.Helper()
	return fixture.ISOOffset(t, b.path, isoPath)
}

// file returns the bytes of an ISO file read at its extent.
func (b *baseISO) file(t testing.TB, isoPath string) []byte {
	t.Helper()
	off, n := b.extent(t, isoPath)
	return b.data[off : off+n]
}

// withData returns a copy of b whose bytes are data (same layout), written
// to its own file.
func (b *baseISO) withData(t testing.TB, data []byte) *baseISO {
	t.Helper()
	p := filepath.Join(t.TempDir(), "variant.iso")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return &baseISO{path: p, data: data, m: b.m}
}

// remaster extracts every file of iso with xorriso, replaces or adds the
// files in edits (ISO path → content), and masters a new ISO the way the
// fixture does (xorriso -as mkisofs -R -J, same volume id).
func remaster(t testing.TB, b *baseISO, edits map[string][]byte) *baseISO {
	t.Helper()
	tree := filepath.Join(t.TempDir(), "tree")
	out, err := exec.Command("xorriso", "-osirrox", "on", "-indev", b.path, "-extract", "/", tree).CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso -extract: %v\n%s", err, out)
	}
	// Extracted files keep the ISO's read-only modes.
	if err := filepath.Walk(tree, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chmod(p, info.Mode()|0o700)
	}); err != nil {
		t.Fatal(err)
	}
	for p, data := range edits {
		full := filepath.Join(tree, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	iso := filepath.Join(t.TempDir(), "remastered.iso")
	out, err = exec.Command("xorriso", "-as", "mkisofs", "-R", "-J", "-joliet-long", "-V", b.m.VolumeID, "-o", iso, tree).CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso -as mkisofs: %v\n%s", err, out)
	}
	data, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	return &baseISO{path: iso, data: data, m: b.m}
}

// ---------------------------------------------------------------------------
// ISO 9660 crafting

const sector = 2048

// putBoth32 writes v as ISO 9660 both-endian 32-bit (LE then BE).
func putBoth32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b[0:4], v)
	binary.BigEndian.PutUint32(b[4:8], v)
}

func putBoth16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b[0:2], v)
	binary.BigEndian.PutUint16(b[2:4], v)
}

// rootDirectory returns the root directory's extent (LBA) from the primary
// volume descriptor.
func rootDirectory(iso []byte) (lba uint32, size uint32) {
	pvd := iso[16*sector:]
	root := pvd[156:]
	return binary.LittleEndian.Uint32(root[2:]), binary.LittleEndian.Uint32(root[10:])
}

// dirRecord builds an ISO 9660 directory record.
func dirRecord(name []byte, lba, size uint32, dir bool) []byte {
	n := 33 + len(name)
	if n%2 == 1 {
		n++
	}
	r := make([]byte, n)
	r[0] = byte(n)
	putBoth32(r[2:], lba)
	putBoth32(r[10:], size)
	copy(r[18:25], []byte{124, 1, 1, 0, 0, 0, 0}) // 2024-01-01 00:00:00 UTC
	if dir {
		r[25] = 2
	}
	putBoth16(r[28:], 1)
	r[32] = byte(len(name))
	copy(r[33:], name)
	return r
}

// dagISO crafts an ISO 9660 image of a few sectors whose directories form
// a DAG: the root and each of the next depth-1 levels hold fanout
// directory records that all point at the next level's single extent.
// Walking it as a tree visits fanout^depth directories.
func dagISO(volumeID string, fanout, depth int) []byte {
	const first = 20 // LBA of the root directory's extent
	total := first + depth + 1
	img := make([]byte, total*sector)

	// Path tables with the root only: lookups of deeper paths fall back to
	// walking the directory records.
	ptL := img[18*sector:]
	ptL[0] = 1
	binary.LittleEndian.PutUint32(ptL[2:], first)
	binary.LittleEndian.PutUint16(ptL[6:], 1)
	ptM := img[19*sector:]
	ptM[0] = 1
	binary.BigEndian.PutUint32(ptM[2:], first)
	binary.BigEndian.PutUint16(ptM[6:], 1)

	for level := 0; level <= depth; level++ {
		lba := uint32(first + level)
		parent := lba
		if level > 0 {
			parent = lba - 1
		}
		var ext bytes.Buffer
		ext.Write(dirRecord([]byte{0}, lba, sector, true))
		ext.Write(dirRecord([]byte{1}, parent, sector, true))
		if level < depth {
			for i := 0; i < fanout; i++ {
				ext.Write(dirRecord([]byte(fmt.Sprintf("D%02d", i)), lba+1, sector, true))
			}
		}
		if ext.Len() > sector {
			panic("dagISO: fan-out does not fit one sector")
		}
		copy(img[int(lba)*sector:], ext.Bytes())
	}

	pvd := img[16*sector:]
	pvd[0] = 1
	copy(pvd[1:6], "CD001")
	pvd[6] = 1
	copy(pvd[8:40], padRight("LINUX", 32))
	copy(pvd[40:72], padRight(volumeID, 32))
	putBoth32(pvd[80:], uint32(total))
	putBoth16(pvd[120:], 1)
	putBoth16(pvd[124:], 1)
	putBoth16(pvd[128:], sector)
	putBoth32(pvd[132:], 10)
	binary.LittleEndian.PutUint32(pvd[140:], 18)
	binary.BigEndian.PutUint32(pvd[148:], 19)
	copy(pvd[156:190], dirRecord([]byte{0}, first, sector, true))
	for _, f := range [][2]int{{190, 128}, {318, 128}, {446, 128}, {574, 128}, {702, 37}, {739, 37}, {776, 37}} {
		copy(pvd[f[0]:f[0]+f[1]], bytes.Repeat([]byte{' '}, f[1]))
	}
	for _, off := range []int{813, 830, 847, 864} {
		copy(pvd[off:off+16], "0000000000000000")
	}
	pvd[881] = 1

	term := img[17*sector:]
	term[0] = 255
	copy(term[1:6], "CD001")
	term[6] = 1
	return img
}

func padRight(s string, n int) []byte {
	b := bytes.Repeat([]byte{' '}, n)
	copy(b, s)
	return b
}

// ---------------------------------------------------------------------------
// Credentials

// makeJWT returns a JWT-shaped token (not signed by anyone) with claims as
// its payload; sig is its third segment before encoding.
func makeJWT(claims, sig string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(claims)) + "." + enc.EncodeToString([]byte(sig))
}

// infraEnvID returns a distinct lowercase UUID for n.
func infraEnvID(n int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n)
}
