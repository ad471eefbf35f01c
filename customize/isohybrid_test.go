package customize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/isoedge/isoedge/internal/fixture"
)

// Host files of Debian's isolinux package: a real isolinux.bin (xorriso
// refuses an isohybrid MBR for a boot image without the isohybrid
// signature) and syslinux's isohybrid MBR boot code.
const (
	hostIsolinuxBin = "/usr/lib/ISOLINUX/isolinux.bin"
	hostIsohdpfxBin = "/usr/lib/ISOLINUX/isohdpfx.bin"
)

// hybridStyle is how the full ISO was made a hybrid.
type hybridStyle int

const (
	// xorriso -isohybrid-mbr isohdpfx.bin -isohybrid-gpt-basdat (the e2e
	// fixture; RHCOS images built by osbuild's xorrisofs stage)
	styleXorriso hybridStyle = iota
	// syslinux isohybrid --uefi after xorriso (coreos-assembler's RHCOS
	// live ISOs), with the "coreiso+" header older builds wrote
	styleIsohybridUEFI
	// syslinux isohybrid without --uefi (older RHCOS): MBR only
	styleIsohybridBIOS
)

// hybridFull returns an x86_64 fixture remastered as a hybrid ISO of the
// given style, with the host's isolinux.bin, and its manifest.
func hybridFull(t testing.TB, style hybridStyle, extra ...string) (string, fixture.Manifest) {
	t.Helper()
	for _, f := range []string{hostIsolinuxBin, hostIsohdpfxBin} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("host file missing (apt-get install isolinux): %v", err)
		}
	}
	plain, m := fixture.Build(t, t.TempDir(), fixture.Options{Arch: "x86_64"})
	tree := filepath.Join(t.TempDir(), "tree")
	minimalRun(t, "xorriso", "-osirrox", "on", "-indev", plain, "-extract", "/", tree)
	if err := filepath.WalkDir(tree, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chmod(p, map[bool]os.FileMode{true: 0o755, false: 0o644}[d.IsDir()])
	}); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(hostIsolinuxBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, minimalIsolinux), bin, 0o644); err != nil {
		t.Fatal(err)
	}
	m.Files[minimalIsolinux] = bin
	iso := filepath.Join(t.TempDir(), "hybrid-full.iso")
	args := []string{"-as", "mkisofs", "-R", "-J", "-joliet-long", "-V", m.VolumeID, "-o", iso,
		"-b", minimalIsolinux, "-c", minimalBootCat, "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
		"-eltorito-alt-boot", "-e", minimalEfiboot, "-no-emul-boot"}
	if style == styleXorriso {
		args = append(args, "-isohybrid-mbr", hostIsohdpfxBin, "-isohybrid-gpt-basdat")
	}
	args = append(append(args, extra...), tree)
	minimalRun(t, "xorriso", args...)
	if style != styleXorriso {
		isohybridLike(t, iso, style == styleIsohybridUEFI)
	}
	return iso, m
}

// isohybridLike does to iso what syslinux's `isohybrid [--uefi]` does
// (utils/isohybrid.c: MBR from isohdpfx.bin, the BIOS image's LBA ×4 at
// 432, the image padded to 1 MiB cylinders; with --uefi a type 0 whole
// image partition, a 0xef partition for the EFI image's catalog extent and
// a GPT with 128 entries whose backup header is in the second-to-last
// sector), and with --uefi also writes a "coreiso+" header for
// images/ignition.img as coreos-assembler did.
func isohybridLike(t testing.TB, iso string, uefi bool) {
	t.Helper()
	et := minimalRun(t, "xorriso", "-indev", iso, "-report_el_torito", "plain")
	img := regexp.MustCompile(`(?m)^El Torito boot img :\s+\d+\s+(BIOS|UEFI)\s+y\s+none\s+\S+\s+\S+\s+(\d+)\s+(\d+)$`).FindAllStringSubmatch(et, -1)
	if len(img) != 2 || img[0][1] != "BIOS" || img[1][1] != "UEFI" {
		t.Fatalf("El Torito entries:\n%s", et)
	}
	num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	biosLBA, efiCount, efiLBA := num(img[0][3]), num(img[1][2]), num(img[1][3])

	b, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	isoSize := int64(binary.LittleEndian.Uint32(b[16*2048+80:])) * 2048
	size := int64(len(b))
	const cyl = 64 * 32 * 512
	padding := int64(0)
	if size%cyl != 0 {
		padding = cyl - size%cyl
	}
	const gptSize = 512 + 128*128
	if uefi && size-isoSize < gptSize && padding < gptSize {
		padding += 1 << 20
	}
	c := (size + padding) / cyl
	b = append(b, make([]byte, padding)...)

	mbr, err := os.ReadFile(hostIsohdpfxBin)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, mbr[:432])
	le32 := binary.LittleEndian.PutUint32
	le64 := binary.LittleEndian.PutUint64
	le32(b[432:], uint32(biosLBA*4))
	le32(b[436:], 0)
	le32(b[440:], 0x5eed1e55)
	clear(b[444:510])
	p1 := b[446:462]
	p1[0], p1[1], p1[2], p1[3] = 0x80, 0, 1, 0
	p1[4] = 0x17
	if uefi {
		p1[4] = 0
	}
	p1[5], p1[6], p1[7] = 63, byte(32+(((c-1)&0x300)>>2)), byte((c-1)&0xff)
	le32(p1[8:], 0)
	le32(p1[12:], uint32(c*64*32))
	b[510], b[511] = 0x55, 0xaa
	if !uefi {
		writeFileBytes(t, iso, b)
		return
	}
	p2 := b[462:478]
	copy(p2, []byte{0, 0xfe, 0xff, 0xff, 0xef, 0xfe, 0xff, 0xff})
	le32(p2[8:], uint32(efiLBA*4))
	le32(p2[12:], uint32(efiCount))

	basic := []byte{0xa2, 0xa0, 0xd0, 0xeb, 0xe5, 0xb9, 0x33, 0x44, 0x87, 0xc0, 0x68, 0xb6, 0xb7, 0x26, 0x99, 0xc7}
	entries := make([]byte, 128*128)
	entry := func(e []byte, guid byte, first, last int64, name string) {
		copy(e, basic)
		copy(e[16:32], bytes.Repeat([]byte{guid}, 16))
		le64(e[32:], uint64(first))
		le64(e[40:], uint64(last))
		for i, r := range utf16.Encode([]rune(name)) {
			binary.LittleEndian.PutUint16(e[56+2*i:], r)
		}
	}
	entry(entries[0:], 0x11, 0, isoSize/512, "ISOHybrid ISO")
	entry(entries[128:], 0x22, efiLBA*4, efiLBA*4+efiCount-1, "ISOHybrid")
	total := size + padding
	header := func(current, alternate, entriesLBA int64) []byte {
		h := make([]byte, 92)
		copy(h, "EFI PART")
		le32(h[8:], 0x10000)
		le32(h[12:], 92)
		le64(h[24:], uint64(current))
		le64(h[32:], uint64(alternate))
		le64(h[40:], 34)
		le64(h[48:], uint64(total/512-34))
		copy(h[56:72], bytes.Repeat([]byte{0x33}, 16))
		le64(h[72:], uint64(entriesLBA))
		le32(h[80:], 128)
		le32(h[84:], 128)
		le32(h[88:], crc32.ChecksumIEEE(entries))
		le32(h[16:], crc32.ChecksumIEEE(h))
		return h
	}
	backup := (total - 1024) / 512
	copy(b[512:], header(1, backup, 2))
	copy(b[1024:], entries)
	copy(b[total-gptSize-512:], entries)
	copy(b[backup*512:], header(backup, 1, backup-32))

	ign, _ := fixture.ISOOffset(t, iso, PathIgnition)
	copy(b[coreISOHdrOff:], coreISOMagic)
	le64(b[coreISOHdrOff+8:], uint64(ign))
	le64(b[coreISOHdrOff+16:], fixture.IgnitionAreaSize)
	writeFileBytes(t, iso, b)
}

func writeFileBytes(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// saReport is what `xorriso -report_system_area plain` says about an image.
type saReport struct {
	text     string
	summary  string
	mbr      map[int]mbrRow
	mbrPath  map[int]string
	gptRange []int64 // first usable, last usable, backup header
	gpt      map[int][2]int64
	gptPath  map[int]string
	gptGUID  map[int]string
	problems []string
	// the backup GPT header is where syslinux's isohybrid puts it
	isohybridQuirk bool
}

type mbrRow struct {
	status, typ   string
	start, blocks int64
}

var (
	saSummary = regexp.MustCompile(`(?m)^System area summary: (.*)$`)
	saMBR     = regexp.MustCompile(`(?m)^MBR partition      :\s+(\d+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\d+)\s+(\d+)$`)
	saMBRPath = regexp.MustCompile(`(?m)^MBR partition path :\s+(\d+)\s+(\S+)$`)
	saGPTLBA  = regexp.MustCompile(`(?m)^GPT lba range      :\s+(\d+)\s+(\d+)\s+(\d+)$`)
	saGPT     = regexp.MustCompile(`(?m)^GPT start and size :\s+(\d+)\s+(\d+)\s+(\d+)$`)
	saGPTPath = regexp.MustCompile(`(?m)^GPT partition path :\s+(\d+)\s+(\S+)$`)
	saGPTGUID = regexp.MustCompile(`(?m)^GPT partition GUID :\s+(\d+)\s+([0-9a-f]+)$`)
	saProblem = regexp.MustCompile(`(?mi)^.*(crc|wrong|problem|should be).*$`)
)

func systemAreaReport(t testing.TB, iso string) *saReport {
	t.Helper()
	text := minimalRun(t, "xorriso", "-indev", iso, "-report_system_area", "plain")
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("report number %q: %v", s, err)
		}
		return n
	}
	r := &saReport{text: text, mbr: map[int]mbrRow{}, mbrPath: map[int]string{}, gpt: map[int][2]int64{}, gptPath: map[int]string{}, gptGUID: map[int]string{}}
	if m := saSummary.FindStringSubmatch(text); m != nil {
		r.summary = m[1]
	}
	for _, m := range saMBR.FindAllStringSubmatch(text, -1) {
		r.mbr[int(num(m[1]))] = mbrRow{m[2], m[3], num(m[4]), num(m[5])}
	}
	for _, m := range saMBRPath.FindAllStringSubmatch(text, -1) {
		r.mbrPath[int(num(m[1]))] = m[2]
	}
	if m := saGPTLBA.FindStringSubmatch(text); m != nil {
		r.gptRange = []int64{num(m[1]), num(m[2]), num(m[3])}
	}
	for _, m := range saGPT.FindAllStringSubmatch(text, -1) {
		r.gpt[int(num(m[1]))] = [2]int64{num(m[2]), num(m[3])}
	}
	for _, m := range saGPTPath.FindAllStringSubmatch(text, -1) {
		r.gptPath[int(num(m[1]))] = m[2]
	}
	for _, m := range saGPTGUID.FindAllStringSubmatch(text, -1) {
		r.gptGUID[int(num(m[1]))] = m[2]
	}
	for _, p := range saProblem.FindAllString(text, -1) {
		// syslinux's isohybrid puts the backup GPT header in the
		// second-to-last sector, which xorriso finds implausible.
		if len(r.gptRange) == 3 && p == "GPT backup problems:      Implausible header LBA "+strconv.FormatInt(r.gptRange[2], 10) {
			r.isohybridQuirk = true
			continue
		}
		r.problems = append(r.problems, p)
	}
	return r
}

// biosBootLBA is the El Torito BIOS boot image's LBA as xorriso reports it.
func biosBootLBA(t testing.TB, iso string) int64 {
	t.Helper()
	et := minimalRun(t, "xorriso", "-indev", iso, "-report_el_torito", "plain")
	m := regexp.MustCompile(`(?m)^El Torito boot img :\s+1\s+BIOS\s+y\s+none\s+\S+\s+\S+\s+4\s+(\d+)$`).FindStringSubmatch(et)
	if m == nil {
		t.Fatalf("no BIOS El Torito entry:\n%s", et)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// checkBootInfo asserts that the isohybrid MBR boot pointer and the boot
// info table in isolinux.bin both hold the LBA xorriso reports for the
// BIOS boot image, and that the table's length and checksum are right.
func checkBootInfo(t *testing.T, iso string) {
	t.Helper()
	lba := biosBootLBA(t, iso)
	if off, _ := fixture.ISOOffset(t, iso, minimalIsolinux); off != lba*sectorSize {
		t.Errorf("El Torito BIOS image at LBA %d, isolinux.bin at byte %d", lba, off)
	}
	raw, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint64(raw[mbrBootPtrOff:]); got != uint64(lba*4) {
		t.Errorf("MBR boot pointer %d, want %d (LBA %d × 4)", got, lba*4, lba)
	}
	bin := fixture.ExtractFile(t, iso, minimalIsolinux)
	var sum uint32
	for i := 64; i+4 <= len(bin); i += 4 {
		sum += binary.LittleEndian.Uint32(bin[i:])
	}
	u := func(off int) uint32 { return binary.LittleEndian.Uint32(bin[off:]) }
	if u(8) != 16 || u(12) != uint32(lba) || u(16) != uint32(len(bin)) || u(20) != sum {
		t.Errorf("boot info table: pvd %d file %d length %d checksum %#x; want 16, %d, %d, %#x", u(8), u(12), u(16), u(20), lba, len(bin), sum)
	}
}

func TestBuildMinimalHybrid(t *testing.T) {
	for _, c := range []struct {
		name  string
		style hybridStyle
	}{{"xorriso", styleXorriso}, {"isohybrid-uefi", styleIsohybridUEFI}, {"isohybrid-bios", styleIsohybridBIOS}} {
		t.Run(c.name, func(t *testing.T) {
			full, m := hybridFull(t, c.style)
			fr := systemAreaReport(t, full)
			uefi := c.style != styleIsohybridBIOS
			quirk := c.style == styleIsohybridUEFI
			if !strings.Contains(fr.summary, "MBR isohybrid") || strings.Contains(fr.summary, "GPT") != uefi || len(fr.problems) != 0 || fr.isohybridQuirk != quirk {
				t.Fatalf("full ISO is not the hybrid wanted:\n%s", fr.text)
			}
			out, err := minimalBuild(t, full, MinimalOptions{RootfsURL: minimalTestURL, Arch: "x86_64"})
			if err != nil {
				t.Fatal(err)
			}
			l := minimalCheckCommon(t, out, m, minimalTestURL, []string{PathCustomRamdisk})
			checkBootInfo(t, out)

			r := systemAreaReport(t, out)
			t.Logf("template system area:\n%s", r.text)
			if !strings.Contains(r.summary, "MBR isohybrid cyl-align-on") || strings.Contains(r.summary, "GPT") != uefi || len(r.problems) != 0 || r.isohybridQuirk != quirk {
				t.Errorf("template system area summary %q, problems %q", r.summary, r.problems)
			}
			sectors := l.Size / diskSector
			if l.Size%(1<<20) != 0 {
				t.Errorf("template of %d bytes is not whole 1 MiB cylinders like the full ISO", l.Size)
			}
			if p := r.mbr[1]; p.status != "0x80" || p.typ != fr.mbr[1].typ || p.start != 0 || p.blocks != sectors {
				t.Errorf("MBR partition 1 %+v, want active, type %s, the whole image of %d sectors", p, fr.mbr[1].typ, sectors)
			}
			if !uefi {
				if len(r.mbr) != 1 {
					t.Errorf("MBR partitions %+v, want one", r.mbr)
				}
				return
			}
			esp := l.Files[minimalEfiboot].Off / diskSector
			if p := r.mbr[2]; p.typ != "0xef" || p.start != esp || p.blocks != fr.mbr[2].blocks || r.mbrPath[2] != "/"+minimalEfiboot {
				t.Errorf("MBR partition 2 %+v (path %q), want type 0xef at %d, %d sectors, %s", p, r.mbrPath[2], esp, fr.mbr[2].blocks, minimalEfiboot)
			}
			if p := r.gpt[2]; p != [2]int64{esp, fr.gpt[2][1]} || r.gptPath[2] != "/"+minimalEfiboot {
				t.Errorf("GPT partition 2 %v (path %q), want %d sectors at %d", p, r.gptPath[2], fr.gpt[2][1], esp)
			}
			for i, g := range fr.gptGUID {
				if r.gptGUID[i] != g {
					t.Errorf("GPT partition %d GUID %s, want the full ISO's %s", i, r.gptGUID[i], g)
				}
			}
			switch c.style {
			case styleXorriso:
				// The ISO partition ends where the usable sectors do, the
				// backup GPT is in the last sector.
				if r.gpt[1] != [2]int64{0, sectors - 64} || !equalInts(r.gptRange, []int64{64, sectors - 64, sectors - 1}) {
					t.Errorf("GPT partition 1 %v, lba range %v; want [0 %d], [64 %d %d]", r.gpt[1], r.gptRange, sectors-64, sectors-64, sectors-1)
				}
			case styleIsohybridUEFI:
				// isohybrid: partition 1 ends at the volume's last sector
				// + 1, the backup header is in the second-to-last sector.
				vol := volumeSectors(t, out)
				if r.gpt[1] != [2]int64{0, vol + 1} || !equalInts(r.gptRange, []int64{34, sectors - 34, sectors - 2}) {
					t.Errorf("GPT partition 1 %v, lba range %v; want [0 %d], [34 %d %d]", r.gpt[1], r.gptRange, vol+1, sectors-34, sectors-2)
				}
				raw, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				h := raw[coreISOHdrOff:systemAreaLen]
				if string(h[:8]) != coreISOMagic || binary.LittleEndian.Uint64(h[8:]) != uint64(l.Ignition.Off) || binary.LittleEndian.Uint64(h[16:]) != fixture.IgnitionAreaSize {
					t.Errorf("coreiso+ header %q, want offset %d length %d", h, l.Ignition.Off, fixture.IgnitionAreaSize)
				}
			}
		})
	}
}

func volumeSectors(t testing.TB, iso string) int64 {
	t.Helper()
	f, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	_, vol, err := readSystemAreaImage(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return vol
}

func equalInts(a, b []int64) bool { return slices.Equal(a, b) }

// TestBuildMinimalHybridUnmappable: a partition that is neither the whole
// image nor a file of the template (xorriso's -append_partition) cannot be
// carried over. With an isohybrid MBR that is an error; without one (boot
// pointer cleared) the template gets no system area, as before.
func TestBuildMinimalHybridUnmappable(t *testing.T) {
	extra := filepath.Join(t.TempDir(), "extra.img")
	writeFileBytes(t, extra, bytes.Repeat([]byte("isoedge"), 1000))
	full, _ := hybridFull(t, styleXorriso, "-append_partition", "3", "0x83", extra)
	if r := systemAreaReport(t, full); r.mbr[3].typ != "0x83" {
		t.Fatalf("no appended partition:\n%s", r.text)
	}
	_, err := minimalBuild(t, full, MinimalOptions{RootfsURL: minimalTestURL, Arch: "x86_64"})
	if !errors.Is(err, ErrSystemArea) {
		t.Fatalf("BuildMinimal = %v, want ErrSystemArea", err)
	}
	t.Logf("error: %v", err)

	raw, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	clear(raw[mbrBootPtrOff : mbrBootPtrOff+8])
	writeFileBytes(t, full, raw)
	out, err := minimalBuild(t, full, MinimalOptions{RootfsURL: minimalTestURL, Arch: "x86_64"})
	if err != nil {
		t.Fatalf("without isohybrid boot pointer: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !allZero(got[:systemAreaLen]) {
		t.Errorf("template system area not empty")
	}
}

// hybridInputs returns the system area of a hybrid full ISO and the
// images hybridArea maps between: the full ISO as ParseLayout sees it and
// a template holding the same files at the same places in a volume 128
// sectors shorter (the full ISO's volume includes its backup GPT).
func hybridInputs(t testing.TB, style hybridStyle) ([]byte, hybridImage, hybridImage) {
	t.Helper()
	full, _ := hybridFull(t, style)
	f, err := os.Open(full)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := ParseLayout(f)
	if err != nil {
		t.Fatal(err)
	}
	area, vol, err := readSystemAreaImage(f, l.Size)
	if err != nil {
		t.Fatal(err)
	}
	return area, hybridImage{FileEnd: l.Size / diskSector, VolumeEnd: vol, Files: l.Files},
		hybridImage{VolumeEnd: vol - 128, Files: l.Files}
}

// regpt recomputes the CRCs of the primary GPT in area.
func regpt(area []byte) {
	h := area[diskSector:]
	n := int(binary.LittleEndian.Uint32(h[80:]) * binary.LittleEndian.Uint32(h[84:]))
	if at := int(binary.LittleEndian.Uint64(h[72:])) * diskSector; n > 0 && at+n <= len(area) {
		binary.LittleEndian.PutUint32(h[gptEntriesCRCOff:], crc32.ChecksumIEEE(area[at:at+n]))
	}
	hl := min(int(binary.LittleEndian.Uint32(h[12:])), diskSector)
	binary.LittleEndian.PutUint32(h[gptHeaderCRCOff:], crcOf(h[:hl], gptHeaderCRCOff))
}

func TestHybridAreaRejects(t *testing.T) {
	area, full, tpl := hybridInputs(t, styleXorriso)
	out, err := hybridArea(bytes.Clone(area), full, tpl)
	if err != nil {
		t.Fatalf("unmodified: %v", err)
	}
	if out.Backup == nil || out.BackupOff < tpl.VolumeEnd*diskSector || out.BackupOff+int64(len(out.Backup)) != out.Size || out.Size%(1<<20) != 0 {
		t.Fatalf("backup GPT of %d bytes at %d in %d bytes (volume %d sectors)", len(out.Backup), out.BackupOff, out.Size, tpl.VolumeEnd)
	}
	le32 := binary.LittleEndian.PutUint32
	le64 := binary.LittleEndian.PutUint64
	gptHdr := diskSector
	entry2 := 2*diskSector + 128
	for _, c := range []struct {
		name string
		edit func(a []byte)
	}{
		{"header CRC", func(a []byte) { a[gptHdr+gptHeaderCRCOff] ^= 1 }},
		{"entries CRC", func(a []byte) { a[entry2+60] ^= 1 }},
		{"header size", func(a []byte) { le32(a[gptHdr+12:], 600) }},
		{"no entries", func(a []byte) { le32(a[gptHdr+80:], 0); regpt(a) }},
		{"too many entries", func(a []byte) { le32(a[gptHdr+80:], 5000); regpt(a) }},
		{"short entries", func(a []byte) { le32(a[gptHdr+84:], 64); regpt(a) }},
		{"entries past the system area", func(a []byte) { le64(a[gptHdr+72:], 60); regpt(a) }},
		{"not in sector 1", func(a []byte) { le64(a[gptHdr+gptMyLBAOff:], 2); regpt(a) }},
		{"backup past the end", func(a []byte) { le64(a[gptHdr+gptAltLBAOff:], uint64(full.FileEnd)); regpt(a) }},
		{"backup far from the end", func(a []byte) { le64(a[gptHdr+gptAltLBAOff:], uint64(full.FileEnd-1000)); regpt(a) }},
		{"huge sector", func(a []byte) { le64(a[gptHdr+gptLastOff:], 1<<62); regpt(a) }},
		{"entry at no file", func(a []byte) { le64(a[entry2+32:], 100); le64(a[entry2+40:], 110); regpt(a) }},
		{"entry past its file", func(a []byte) {
			le64(a[entry2+40:], binary.LittleEndian.Uint64(a[entry2+32:])+100)
			regpt(a)
		}},
		{"entry reversed", func(a []byte) { le64(a[entry2+40:], 1); regpt(a) }},
		{"whole image short of the end", func(a []byte) {
			le64(a[2*diskSector+40:], uint64(full.FileEnd/2))
			regpt(a)
		}},
		{"MBR partition at no file", func(a []byte) { le32(a[mbrPartOff+mbrPartLen+8:], 100) }},
		{"MBR partition past the end", func(a []byte) { le32(a[mbrPartOff+12:], uint32(full.FileEnd+1000)) }},
		{"MBR empty partition with fields", func(a []byte) { a[mbrPartOff+2*mbrPartLen+4] = 0x83 }},
		{"protective MBR without GPT", func(a []byte) { a[mbrPartOff+4] = mbrPartTypeGPT; a[gptHdr] = 'X' }},
	} {
		a := bytes.Clone(area)
		c.edit(a)
		if _, err := hybridArea(a, full, tpl); !errors.Is(err, ErrSystemArea) {
			t.Errorf("%s: err = %v, want ErrSystemArea", c.name, err)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
		// Without the isohybrid boot pointer nothing is carried, and
		// nothing fails.
		clear(a[mbrBootPtrOff : mbrBootPtrOff+8])
		out, err := hybridArea(a, full, tpl)
		if err != nil || !allZero(out.Area) || out.Backup != nil || out.Size != tpl.VolumeEnd*diskSector {
			t.Errorf("%s without boot pointer: %v", c.name, err)
		}
	}
}

// FuzzHybridArea: whatever the full ISO's system area holds, hybridArea
// does not panic, fails only with ErrSystemArea, and never writes into the
// template's volume.
func FuzzHybridArea(f *testing.F) {
	area, full, tpl := hybridInputs(f, styleXorriso)
	f.Add(area)
	uefi, _, _ := hybridInputs(f, styleIsohybridUEFI)
	f.Add(uefi)
	f.Fuzz(func(t *testing.T, b []byte) {
		a := make([]byte, systemAreaLen)
		copy(a, b)
		out, err := hybridArea(a, full, tpl)
		if err != nil {
			if !errors.Is(err, ErrSystemArea) {
				t.Fatalf("error %v does not wrap ErrSystemArea", err)
			}
			return
		}
		if len(out.Area) != systemAreaLen || out.Size < tpl.VolumeEnd*diskSector {
			t.Fatalf("area of %d bytes, size %d", len(out.Area), out.Size)
		}
		if out.Backup != nil && (out.BackupOff < tpl.VolumeEnd*diskSector || out.BackupOff+int64(len(out.Backup)) > out.Size) {
			t.Fatalf("backup GPT of %d bytes at %d: volume ends at %d, image at %d", len(out.Backup), out.BackupOff, tpl.VolumeEnd*diskSector, out.Size)
		}
	})
}

// TestHybridAreaCoreISOHeader: a "coreiso+" header is moved with the file
// it points into, dropped when it points into no file, and never written
// over the template's GPT entries.
func TestHybridAreaCoreISOHeader(t *testing.T) {
	area, full, tpl := hybridInputs(t, styleIsohybridUEFI)
	ign := full.Files[PathIgnition]
	shifted := map[string]Area{}
	for p, a := range full.Files {
		shifted[p] = Area{Off: a.Off + 4*sectorSize, Len: a.Len}
	}
	tpl.Files = shifted
	header := func(a []byte) []byte { return a[coreISOHdrOff:systemAreaLen] }
	want := make([]byte, 24)
	copy(want, coreISOMagic)
	binary.LittleEndian.PutUint64(want[8:], uint64(ign.Off+4*sectorSize+512))
	binary.LittleEndian.PutUint64(want[16:], 1024)

	a := bytes.Clone(area)
	binary.LittleEndian.PutUint64(header(a)[8:], uint64(ign.Off+512))
	binary.LittleEndian.PutUint64(header(a)[16:], 1024)
	if out, err := hybridArea(a, full, tpl); err != nil || !bytes.Equal(header(out.Area), want) {
		t.Errorf("moved header: %v, %q; want %q", err, header(out.Area), want)
	}
	binary.LittleEndian.PutUint64(header(a)[8:], uint64(ign.Off+ign.Len-10))
	if out, err := hybridArea(a, full, tpl); err != nil || !allZero(header(out.Area)) {
		t.Errorf("header reaching past its file: %v, %q", err, header(out.Area))
	}

	// xorriso's 248 GPT entries fill the system area up to its end.
	xa, xfull, xtpl := hybridInputs(t, styleXorriso)
	copy(header(xa), want)
	binary.LittleEndian.PutUint64(header(xa)[8:], uint64(xfull.Files[PathIgnition].Off))
	regpt(xa)
	out, err := hybridArea(xa, xfull, xtpl)
	if err != nil {
		t.Fatal(err)
	}
	entries := out.Area[2*diskSector:]
	if !bytes.Equal(header(out.Area), header(xa)) || binary.LittleEndian.Uint32(out.Area[diskSector+gptEntriesCRCOff:]) != crc32.ChecksumIEEE(entries) {
		t.Errorf("GPT entries overwritten: %q", header(out.Area))
	}
}
