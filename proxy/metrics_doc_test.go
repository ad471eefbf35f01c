package proxy

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/version"
	"github.com/isoedge/isoedge/upstream"
)

// liveRegistrars are the metricFamilies owners a test server registers:
// proxy.New itself and the upstream.Metered source the harness wraps
// around the fake. Families of other owners (the populator, which the
// proxy tests do not build) are checked against README only.
var liveRegistrars = []string{"proxy", "upstream.Metered"}

// scrapeLive starts a server on loopback TCP, exercises every kind of
// request (a download, a Range request that continues it, an
// assisted-service failure, a boot artifact) and returns its /metrics.
func scrapeLive(t *testing.T) (*harness, string) {
	t.Helper()
	h := newHarness(t, harnessOpts{
		tcp:     true,
		metered: true,
		config:  func(c *config.Config) { c.IgnitionCacheTTL = time.Minute },
		src:     func(s *fakeSource) { s.ramErr = fmt.Errorf("%w: test", upstream.ErrUnavailable) },
	})
	iso := "/byid/" + testID + "/4.18/x86_64/full.iso"
	if r := h.get(iso); r.code != 200 {
		t.Fatalf("download: %d", r.code)
	}
	if r := h.do("GET", iso, map[string]string{"Range": "bytes=100-199"}); r.code != 206 {
		t.Fatalf("range: %d", r.code)
	}
	if r := h.get("/images/" + testID + "/pxe-initrd?version=4.18"); r.code != 502 {
		t.Fatalf("pxe-initrd with assisted-service down: %d", r.code)
	}
	if r := h.get("/boot-artifacts/kernel?version=4.18"); r.code != 200 {
		t.Fatalf("kernel: %d", r.code)
	}
	var text string
	waitFor(t, "request metrics", func() bool {
		text = string(h.get("/metrics").body)
		return strings.Contains(text, `assisted_image_service_http_request_duration_seconds_count{service="",handler="/byid/:token",method="GET",code="206"} 1`)
	})
	return h, text
}

// exposition is /metrics parsed: per family its HELP, TYPE and the label
// names of its samples (le excluded).
type exposition struct {
	help, typ map[string]string
	labels    map[string]map[string]bool
	order     []string // families in the order of their TYPE lines
}

func parseExposition(t *testing.T, text string) exposition {
	t.Helper()
	e := exposition{help: map[string]string{}, typ: map[string]string{}, labels: map[string]map[string]bool{}}
	current := ""
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, help, _ := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			if _, dup := e.help[name]; dup {
				t.Errorf("second HELP for %s", name)
			}
			e.help[name] = help
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, _ := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			if _, dup := e.typ[name]; dup {
				t.Errorf("second TYPE for %s", name)
			}
			e.typ[name], current = typ, name
			e.order = append(e.order, name)
			e.labels[name] = map[string]bool{}
		case strings.HasPrefix(line, "#") || line == "":
			t.Errorf("unexpected line %q", line)
		default:
			sample := line[:strings.IndexAny(line, "{ ")]
			if sample != current && sample != current+"_bucket" && sample != current+"_sum" && sample != current+"_count" {
				t.Errorf("sample %q outside its family's block (current family %q)", line, current)
				continue
			}
			for _, l := range labelNames(t, line) {
				if l != "le" {
					e.labels[current][l] = true
				}
			}
		}
	}
	return e
}

// labelNames returns the label names of a sample line.
func labelNames(t *testing.T, line string) []string {
	i := strings.IndexByte(line, '{')
	if i < 0 || i > strings.IndexByte(line, ' ') {
		return nil
	}
	var names []string
	s := line[i+1:]
	for len(s) > 0 && s[0] != '}' {
		eq := strings.Index(s, `="`)
		if eq < 0 {
			t.Fatalf("bad labels in %q", line)
		}
		names = append(names, s[:eq])
		s = s[eq+2:]
		for j := 0; ; j++ {
			if j >= len(s) {
				t.Fatalf("unterminated label value in %q", line)
			}
			if s[j] == '\\' {
				j++
				continue
			}
			if s[j] == '"' {
				s = strings.TrimPrefix(s[j+1:], ",")
				break
			}
		}
	}
	return names
}

// readmeMetric is a row of README's Metrics table.
type readmeMetric struct {
	typ    string
	labels []string
}

func readmeMetrics(t *testing.T) map[string]readmeMetric {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Metrics\n")
	if start < 0 {
		t.Fatal("README.md has no Metrics section")
	}
	section := doc[start+len("\n## Metrics\n"):]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	ticked := regexp.MustCompile("`([^`]+)`")
	parens := regexp.MustCompile(`\([^)]*\)`)
	out := map[string]readmeMetric{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "Metric" {
			continue
		}
		m := ticked.FindStringSubmatch(cells[1])
		if m == nil {
			t.Errorf("README metrics row without a `name`: %q", line)
			continue
		}
		var labels []string
		for _, l := range ticked.FindAllStringSubmatch(parens.ReplaceAllString(cells[3], ""), -1) {
			labels = append(labels, l[1])
		}
		slices.Sort(labels)
		out[m[1]] = readmeMetric{typ: strings.Fields(cells[2])[0], labels: labels}
	}
	if len(out) < 10 {
		t.Fatalf("found only %d rows in README's Metrics table", len(out))
	}
	return out
}

// TestMetricsDocumented checks, on a live server's /metrics, that every
// family has HELP and TYPE from metricFamilies, that the families, types
// and labels match README's Metrics table both ways, and that promtool
// accepts the output.
func TestMetricsDocumented(t *testing.T) {
	_, text := scrapeLive(t)
	e := parseExposition(t, text)
	table := map[string]metricFamily{}
	for _, f := range metricFamilies {
		if _, dup := table[f.name]; dup {
			t.Errorf("metricFamilies lists %s twice", f.name)
		}
		if strings.TrimSpace(f.help) == "" || !strings.HasSuffix(f.help, ".") {
			t.Errorf("%s: help text %q should be a sentence", f.name, f.help)
		}
		table[f.name] = f
	}

	// /metrics ⊆ table, with the table's text and type.
	for _, name := range e.order {
		f, ok := table[name]
		if !ok {
			t.Errorf("/metrics exposes %s, missing from metricFamilies (proxy/metrics_help.go)", name)
			continue
		}
		if e.help[name] != f.help || e.typ[name] != f.typ {
			t.Errorf("%s: HELP %q TYPE %q, want %q %q", name, e.help[name], e.typ[name], f.help, f.typ)
		}
	}
	// Table families a live server registers ⊆ /metrics.
	for _, f := range metricFamilies {
		if slices.Contains(liveRegistrars, f.by) && e.typ[f.name] == "" {
			t.Errorf("metricFamilies lists %s (registered by %s), but the server does not expose it", f.name, f.by)
		}
	}

	// README ⇔ table, including families registered elsewhere.
	readme := readmeMetrics(t)
	for name, f := range table {
		r, ok := readme[name]
		if !ok {
			t.Errorf("%s is missing from README's Metrics table", name)
			continue
		}
		if r.typ != f.typ {
			t.Errorf("%s: README type %q, metricFamilies %q", name, r.typ, f.typ)
		}
		if live, ok := e.labels[name]; ok {
			got := slices.Sorted(maps.Keys(live))
			if !slices.Equal(got, r.labels) {
				t.Errorf("%s: labels on /metrics %q, README %q", name, got, r.labels)
			}
		}
	}
	for name := range readme {
		if _, ok := table[name]; !ok {
			t.Errorf("README documents %s, missing from metricFamilies", name)
		}
	}

	promtool(t, text, true)
}

// promtool runs `promtool check metrics` on text and fails the test unless
// it accepts (wantOK) or rejects it.
func promtool(t *testing.T, text string, wantOK bool) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus): %v", err)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if wantOK && err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n--- input:\n%s", err, out, text)
	}
	if !wantOK && err == nil {
		t.Errorf("promtool check metrics accepted the input:\n%s", text)
	}
	return string(out)
}

// TestMetricsUndocumentedFamily: a family without help text is still
// exposed, without HELP, logged once, and promtool (so the documentation
// test) rejects it.
func TestMetricsUndocumentedFamily(t *testing.T) {
	h := newHarness(t, harnessOpts{tcp: true})
	h.set.GetOrCreateCounter(`isoedge_test_undocumented_total{kind="x"}`).Inc()
	var text string
	for range 2 {
		text = string(h.get("/metrics").body)
	}
	if !strings.Contains(text, "# TYPE isoedge_test_undocumented_total untyped\nisoedge_test_undocumented_total{kind=\"x\"} 1\n") ||
		strings.Contains(text, "# HELP isoedge_test_undocumented_total") {
		t.Errorf("undocumented family exposed as:\n%s", text)
	}
	warnings := 0
	for _, e := range h.logs.All() {
		if strings.Contains(e.Message, "family without help text") && e.ContextMap()["family"] == "isoedge_test_undocumented_total" {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("%d warnings for the undocumented family over two scrapes, want 1", warnings)
	}
	out := promtool(t, text, false)
	if !strings.Contains(out, "isoedge_test_undocumented_total") {
		t.Errorf("promtool output does not name the family: %s", out)
	}
}

// TestMetricsTypesMatchLibrary compares metricFamilies' types with the
// ones VictoriaMetrics reports when asked for metadata, and checks that
// /metrics stays valid when something in the process turns that metadata
// on (its HELP lines are empty; ours replace them).
func TestMetricsTypesMatchLibrary(t *testing.T) {
	h, _ := scrapeLive(t)
	metrics.ExposeMetadata(true)
	defer metrics.ExposeMetadata(false)
	var raw bytes.Buffer
	h.set.WritePrometheus(&raw)
	libTypes := map[string]string{}
	for _, line := range strings.Split(raw.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			libTypes[name] = typ
		}
	}
	if len(libTypes) == 0 {
		t.Fatal("no TYPE lines with ExposeMetadata(true)")
	}
	for _, f := range metricFamilies {
		if typ, ok := libTypes[f.name]; ok && typ != f.typ {
			t.Errorf("%s: VictoriaMetrics says %s, metricFamilies %s", f.name, typ, f.typ)
		}
	}
	text := string(h.get("/metrics").body)
	e := parseExposition(t, text)
	if len(e.order) != len(libTypes) {
		t.Errorf("/metrics has %d families, the set %d", len(e.order), len(libTypes))
	}
	promtool(t, text, true)
}

func TestBuildInfo(t *testing.T) {
	h := newHarness(t, harnessOpts{tcp: true})
	text := string(h.get("/metrics").body)
	want := fmt.Sprintf("isoedge_build_info{version=%q,revision=%q,goversion=%q} 1\n", version.Version(), version.Revision(), version.GoVersion())
	if !strings.Contains(text, want) {
		t.Errorf("/metrics lacks %q:\n%s", want, text)
	}
	// Label values are escaped: a hand-built version with quotes and a
	// backslash still makes a valid series.
	name := buildInfoName(`v1 "quoted" \ x`, "r", "go")
	if err := metrics.ValidateMetric(name); err != nil {
		t.Errorf("buildInfoName = %s: %v", name, err)
	}
}
