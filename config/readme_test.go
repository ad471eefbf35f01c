package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMEConfigurationTable checks README's Configuration table against
// Redacted, both ways: every variable Load reads is documented, and every
// documented variable is read.
func TestREADMEConfigurationTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section, ok := markdownSection(string(b), "## Configuration")
	if !ok {
		t.Fatal("README.md has no Configuration section")
	}
	name := regexp.MustCompile("`([A-Z][A-Z0-9_]+)`")
	documented := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			documented[m[1]] = true
		}
	}
	if len(documented) < 20 {
		t.Fatalf("found only %d variables in the Configuration table: %v", len(documented), documented)
	}
	// Names read as fallbacks of another variable, which is the key in
	// Redacted; SAMPLE is derived, not a variable.
	aliases := map[string]string{"RHCOS_VERSIONS": "OS_IMAGES", "LOGLEVEL": "LOG_LEVEL", "HTTPS_CA_FILE": "ASSISTED_SERVICE_API_TRUSTED_CA_FILE"}
	c, err := Load(envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	redacted := c.Redacted()
	for v := range redacted {
		if v != "SAMPLE" && !documented[v] {
			t.Errorf("%s is read (Redacted lists it) but missing from README's Configuration table", v)
		}
	}
	for v := range documented {
		key := v
		if a, ok := aliases[v]; ok {
			key = a
		}
		if _, ok := redacted[key]; !ok {
			t.Errorf("README documents %s, which Redacted does not list", v)
		}
	}
}

// markdownSection returns the text after heading up to the next heading of
// the same level.
func markdownSection(doc, heading string) (string, bool) {
	lines := strings.Split(doc, "\n")
	i := slices.Index(lines, heading)
	if i < 0 {
		return "", false
	}
	level := heading[:strings.IndexByte(heading, ' ')+1]
	var out []string
	for _, l := range lines[i+1:] {
		if strings.HasPrefix(l, level) {
			break
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n"), true
}
