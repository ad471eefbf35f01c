//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// disk attaches an image as a read-only virtio disk: what firmware sees
// when the ISO was written to a USB stick. No -cdrom.
func disk(p string) []string {
	return []string{"-drive", "file=" + p + ",format=raw,if=virtio,readonly=on"}
}

// withoutElTorito copies the ISO at src to dst with the El Torito boot
// record's identifier spoiled. OVMF (EDK II) boots a disk through El
// Torito when it finds a boot catalog, before it looks at the MBR; without
// one it must take the EFI System Partition the MBR describes, as
// firmware that prefers partitions does.
func withoutElTorito(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	const sector, id = 2048, "EL TORITO SPECIFICATION"
	found := false
	for i := 16; i < 32 && (i+1)*sector <= len(b); i++ {
		vd := b[i*sector : (i+1)*sector]
		if string(vd[1:6]) != "CD001" || vd[0] == 255 {
			break
		}
		if vd[0] == 0 && bytes.HasPrefix(vd[7:], []byte(id)) {
			vd[7] = 'X'
			found = true
		}
	}
	if !found {
		t.Fatalf("%s has no El Torito boot record", src)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

var (
	saSummaryRE = regexp.MustCompile(`(?m)^System area summary: (.*)$`)
	saESPRE     = regexp.MustCompile(`(?m)^MBR partition      :\s+2\s+0x00\s+0xef\s+\d+\s+\d+$`)
	saProblemRE = regexp.MustCompile(`(?mi)^.*(crc|wrong|problem|should be).*$`)
)

// checkHybridISO asserts what xorriso reports about an image's system
// area: an isohybrid MBR (boot code pointing at the El Torito BIOS image),
// a GPT, an MBR partition of type 0xef exactly covering
// /images/efiboot.img, and no CRC or backup GPT problems.
func checkHybridISO(t *testing.T, name, iso, work string) {
	t.Helper()
	b, err := exec.Command("xorriso", "-indev", iso, "-report_system_area", "plain", "-report_el_torito", "plain").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: xorriso: %v\n%s", name, err, b)
	}
	// Kept with the other artifacts.
	if err := os.WriteFile(filepath.Join(work, name+".system-area.txt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep := string(b)
	sum := saSummaryRE.FindStringSubmatch(rep)
	switch {
	case sum == nil || !strings.Contains(sum[1], "MBR isohybrid") || !strings.Contains(sum[1], "GPT"):
		t.Errorf("%s: system area is not an isohybrid MBR with a GPT:\n%s", name, rep)
	case !saESPRE.MatchString(rep) || !strings.Contains(rep, "MBR partition path :   2  /images/efiboot.img\n"):
		t.Errorf("%s: no MBR EFI partition covering /images/efiboot.img:\n%s", name, rep)
	case saProblemRE.MatchString(rep):
		t.Errorf("%s: xorriso finds problems: %q", name, saProblemRE.FindAllString(rep, -1))
	}
}

// grubFrom is where the EFI GRUB was loaded from, as it said on the serial
// console. GRUB writes to the serial port and to the firmware console,
// which OVMF copies to the serial port too, so the message may appear
// twice on one line.
func grubFrom(r *bootResult) string {
	for _, line := range strings.Split(r.log, "\n") {
		if i := strings.Index(line, GrubFromMarker); i >= 0 {
			from, _, _ := strings.Cut(line[i+len(GrubFromMarker):], GrubFromMarker)
			return strings.TrimSpace(from)
		}
	}
	return ""
}
