package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/internal/fixture"
	"github.com/spf13/pflag"
)

// TestCLIIgnitionValidation: input that is not an Ignition config fails
// with exit 1 and one line, before anything is written.
func TestCLIIgnitionValidation(t *testing.T) {
	iso, _ := cliFixture(t, fixture.Options{})
	initrd := writeTemp(t, "initrd.img", fixture.ExtractFile(t, iso, "images/pxeboot/initrd.img"))
	for name, cfg := range map[string]string{
		"not json":        "not json",
		"empty":           "",
		"array":           `[1]`,
		"no ignition":     `{}`,
		"no version":      `{"ignition":{}}`,
		"numeric version": `{"ignition":{"version":3}}`,
		"empty version":   `{"ignition":{"version":""}}`,
		"trailing data":   `{"ignition":{"version":"3.2.0"}} x`,
	} {
		file := writeTemp(t, "bad.ign", []byte(cfg))
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		for _, args := range [][]string{
			{"iso", "ignition", "embed", "-i", file, "-o", out, iso},
			{"pxe", "ignition", "wrap", "-i", file, "-o", out},
			{"pxe", "customize", "-i", file, "-o", out, initrd},
			{"customize", iso, "-o", out, "--ignition", file},
			{"customize-initrd", iso, "-o", out, "--ignition", file},
		} {
			code, stdout, stderr := cliRun(args...)
			if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "not an Ignition config") {
				t.Errorf("%s: %v: exit %d, stdout %q, stderr %q", name, args[:2], code, stdout, stderr)
			}
		}
		// The same through standard input.
		code, _, stderr := cliRunStdin([]byte(cfg), "iso", "ignition", "embed", "-o", out, iso)
		if code != 1 || !strings.Contains(stderr, "standard input: not an Ignition config") {
			t.Errorf("%s from stdin: exit %d, %q", name, code, stderr)
		}
		cliOnlyFile(t, dir)
	}
}

// TestCLIUsageErrors: mistakes on the command line exit 2 with one line
// naming the command, and write nothing to stdout.
func TestCLIUsageErrors(t *testing.T) {
	iso, _ := cliFixture(t, fixture.Options{})
	ign := writeTemp(t, "c.ign", cfgA)
	for name, args := range map[string][]string{
		"no command":           nil,
		"unknown command":      {"isox"},
		"iso alone":            {"iso"},
		"unknown iso verb":     {"iso", "frob", iso},
		"ignition alone":       {"iso", "ignition"},
		"embed no ISO":         {"iso", "ignition", "embed", "-i", ign},
		"embed two ISOs":       {"iso", "ignition", "embed", "-i", ign, iso, iso},
		"embed unknown flag":   {"iso", "ignition", "embed", "--frob", iso},
		"embed -o no value":    {"iso", "ignition", "embed", iso, "-o"},
		"show extra arg":       {"iso", "ignition", "show", iso, "x"},
		"modify nothing":       {"iso", "kargs", "modify", iso},
		"modify bad append":    {"iso", "kargs", "modify", "-a", "a b", iso},
		"modify quote":         {"iso", "kargs", "modify", "-a", `a="b"`, iso},
		"modify bad replace":   {"iso", "kargs", "modify", "-r", "a=b", iso},
		"modify replace 4":     {"iso", "kargs", "modify", "-r", "a=b=c=d", iso},
		"modify delete blank":  {"iso", "kargs", "modify", "-d", " ", iso},
		"extract no ISO":       {"iso", "extract", "pxe"},
		"minimal no url":       {"iso", "extract", "minimal-iso", iso, "out.iso"},
		"minimal one arg":      {"iso", "extract", "minimal-iso", "--rootfs-url", "http://x/y", iso},
		"wrap extra arg":       {"pxe", "ignition", "wrap", iso},
		"unwrap two files":     {"pxe", "ignition", "unwrap", ign, ign},
		"pxe customize no -o":  {"pxe", "customize", "-i", ign, iso},
		"pxe customize stdin2": {"pxe", "customize", "--network-ramdisk", "-", "-o", "x", iso},
		"help unknown":         {"help", "frob"},
		"version extra":        {"version", "x"},
	} {
		code, stdout, stderr := cliRun(args...)
		if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "isoedge") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2 and one line", name, code, stdout, stderr)
		}
	}
	code, _, stderr := cliRun("iso", "ignition", "embed", "--frob", iso)
	if want := "isoedge iso ignition embed: unknown flag: --frob (see 'isoedge help iso ignition embed')\n"; code != 2 || stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	// Failures other than usage are one line too, and exit 1.
	code, _, stderr = cliRun("iso", "kargs", "show", filepath.Join(t.TempDir(), "missing.iso"))
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "missing.iso") {
		t.Errorf("missing ISO: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat("out.iso"); !os.IsNotExist(err) {
		t.Error("a usage error wrote out.iso")
	}
}

// TestCLIHelp: "VERB --help", "VERB -h" and "help VERB" print the verb's
// usage and every flag with its text; groups list their verbs.
func TestCLIHelp(t *testing.T) {
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if c.group {
			out := mustRun(t, append(words, "--help")...)
			for _, v := range subverbs(c.name) {
				if !strings.Contains(out, "isoedge "+c.name+" "+v) {
					t.Errorf("%s --help does not list %s:\n%s", c.name, v, out)
				}
			}
			continue
		}
		out := mustRun(t, append(words, "--help")...)
		if !strings.HasPrefix(out, "usage: isoedge "+c.name+" ") {
			t.Errorf("%s --help starts %q", c.name, out[:min(len(out), 60)])
		}
		if got := mustRun(t, append([]string{"help"}, words...)...); got != out {
			t.Errorf("help %s differs from %s --help", c.name, c.name)
		}
		if got := mustRun(t, append(words, "-h")...); got != out {
			t.Errorf("%s -h differs from --help", c.name)
		}
		fs := newFlagSet(c)
		c.setup(fs)
		fs.VisitAll(func(f *pflag.Flag) {
			_, text := pflag.UnquoteUsage(f)
			head := "--" + f.Name
			if f.Shorthand != "" {
				head = "-" + f.Shorthand + ", --" + f.Name
			}
			firstWords := strings.Join(strings.Fields(text)[:3], " ")
			if !strings.Contains(out, head) || !strings.Contains(out, firstWords) {
				t.Errorf("%s --help lacks %s (%q):\n%s", c.name, head, firstWords, out)
			}
		})
	}
	global := mustRun(t, "help")
	for _, c := range commands() {
		if !c.group && !strings.Contains(global, "isoedge "+c.name+" ") {
			t.Errorf("global help does not list %s", c.name)
		}
	}
	if out := mustRun(t, "--help"); out != global {
		t.Error("--help differs from help")
	}
	// The GNU spellings the older verbs lacked.
	for _, flag := range []string{"--output", "-o", "--ignition", "-i", "--force", "-f"} {
		if !strings.Contains(mustRun(t, "customize", "--help"), flag) {
			t.Errorf("customize --help lacks %s", flag)
		}
	}
}

// TestCLIInspectState: inspect shows what is embedded, and its JSON has
// every fact of the text.
func TestCLIInspectState(t *testing.T) {
	base, m := cliFixture(t, fixture.Options{})
	svc := serviceISO(t, base, cfgA, "console=ttyS0,115200n8")
	archive, _ := customize.IgnitionArchive(cfgA)

	var r struct {
		customize.Layout
		Architecture       string        `json:"architecture"`
		ArchitectureReason string        `json:"architecture_reason"`
		IgnitionEmbedded   ignitionState `json:"ignition_embedded"`
		Kargs              kargState     `json:"kargs"`
		PXEBootFiles       []pxeFile     `json:"pxeboot_files"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "inspect", "--json", svc)), &r); err != nil {
		t.Fatal(err)
	}
	ig := r.IgnitionEmbedded
	if ig.Problem != "" || ig.Size != len(cfgA) || ig.Used != int64(len(archive)) || ig.Free != fixture.IgnitionAreaSize-int64(len(archive)) ||
		len(ig.Members) != 1 || ig.Members[0] != "config.ign" || ig.File != "images/ignition.img" || ig.Area != fixture.IgnitionAreaSize {
		t.Errorf("ignition_embedded = %+v (archive %d bytes)", ig, len(archive))
	}
	ks := r.Kargs
	if ks.Problem != "" || ks.Default != m.KargsDefault || ks.Appended != "console=ttyS0,115200n8" ||
		ks.Current != m.KargsDefault+" console=ttyS0,115200n8" || len(ks.Regions) != 2 {
		t.Errorf("kargs = %+v", ks)
	}
	text := mustRun(t, "inspect", svc)
	// Every number and name of the text is in the JSON.
	facts := []string{r.VolumeID, r.Architecture, r.ArchitectureReason, ks.Current, ks.Appended, ks.Default}
	for _, k := range ks.Regions {
		facts = append(facts, k.Path, itoa64(k.Off), itoa64(k.Len), itoa64(k.Free))
	}
	for _, k := range r.KargAreas {
		facts = append(facts, itoa64(k.Off), itoa64(k.Len))
	}
	for _, p := range r.PXEBootFiles {
		facts = append(facts, p.Path, " "+itoa64(p.Size)+" bytes\n")
	}
	facts = append(facts, itoa64(r.Size), itoa64(r.Ignition.Off), itoa64(r.Ignition.Len), itoa64(ig.Free), itoa64(int64(ig.Size)), itoa64(ig.Used))
	for _, f := range facts {
		if !strings.Contains(text, f) {
			t.Errorf("text lacks %q:\n%s", f, text)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if label, _, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
			switch label {
			case "volume id", "size", "architecture", "ignition area", "embedded ignition", "karg areas",
				"default kargs", "current kargs", "appended kargs", "karg regions", "pxeboot files":
			default:
				t.Errorf("text line %q has no JSON counterpart in this test", line)
			}
		}
	}
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
