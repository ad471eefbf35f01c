package proxy

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
)

// exposer writes a metrics set in the Prometheus text format with a HELP
// and TYPE line before each family, taken from metricFamilies.
// VictoriaMetrics' own metadata (metrics.ExposeMetadata) has no help text,
// which `promtool check metrics` rejects, so the set is written without it
// (any # line in its output is dropped) and the samples are regrouped by
// family here. A family missing from metricFamilies is still exposed, typed
// untyped and without HELP, and logged once: tests catch it before a
// release does.
type exposer struct {
	families map[string]*metricFamily
	warned   sync.Map // family name → struct{}: undocumented families already logged
}

func newExposer() *exposer {
	e := &exposer{families: make(map[string]*metricFamily, len(metricFamilies))}
	for i := range metricFamilies {
		e.families[metricFamilies[i].name] = &metricFamilies[i]
	}
	return e
}

// exposedFamily is one family's samples, in the order the set wrote them.
type exposedFamily struct {
	name  string
	doc   *metricFamily // nil when undocumented
	lines [][]byte
}

// write writes set to w, logging undocumented families to log. The samples of a family are kept together and in
// their original order; families appear in the order of their first sample.
func (e *exposer) write(w io.Writer, set *metrics.Set, log *zap.Logger) error {
	var raw bytes.Buffer
	set.WritePrometheus(&raw)
	var order []*exposedFamily
	byName := map[string]*exposedFamily{}
	for line := range bytes.Lines(raw.Bytes()) {
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		end := bytes.IndexAny(line, "{ ")
		if end <= 0 {
			continue // not a sample line
		}
		name, doc := e.family(string(line[:end]))
		f := byName[name]
		if f == nil {
			f = &exposedFamily{name: name, doc: doc}
			byName[name] = f
			order = append(order, f)
		}
		f.lines = append(f.lines, line)
	}
	var out bytes.Buffer
	out.Grow(raw.Len() + 128*len(order))
	for _, f := range order {
		if f.doc != nil {
			out.WriteString("# HELP " + f.name + " " + helpEscaper.Replace(f.doc.help) + "\n")
			out.WriteString("# TYPE " + f.name + " " + f.doc.typ + "\n")
		} else {
			if _, seen := e.warned.LoadOrStore(f.name, struct{}{}); !seen {
				log.Warn("metrics: family without help text (add it to proxy/metrics_help.go and README)", zap.String("family", f.name))
			}
			out.WriteString("# TYPE " + f.name + " untyped\n")
		}
		for _, l := range f.lines {
			out.Write(l)
			if l[len(l)-1] != '\n' {
				out.WriteByte('\n')
			}
		}
	}
	_, err := w.Write(out.Bytes())
	return err
}

// family returns the family a sample name belongs to: the name itself, or
// for a histogram's _bucket, _sum and _count series the histogram's name.
func (e *exposer) family(sample string) (string, *metricFamily) {
	if doc, ok := e.families[sample]; ok {
		return sample, doc
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(sample, suffix); ok {
			if doc, ok := e.families[base]; ok && doc.typ == "histogram" {
				return base, doc
			}
		}
	}
	return sample, nil
}

// helpEscaper escapes HELP text as the text format requires.
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

// labelEscaper escapes a label value as the text format requires.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
