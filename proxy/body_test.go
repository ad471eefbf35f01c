package proxy

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/customize"
)

// extentRecorder is an io.ReaderFrom that records what it is handed.
type extentRecorder struct {
	buf     bytes.Buffer
	extents int // LimitedReaders over an *os.File
}

func (r *extentRecorder) Write(p []byte) (int, error) { return r.buf.Write(p) }

func (r *extentRecorder) ReadFrom(src io.Reader) (int64, error) {
	if lr, ok := src.(*io.LimitedReader); ok {
		if _, ok := lr.R.(*os.File); ok {
			r.extents++
		}
	}
	return r.buf.ReadFrom(src)
}

// bodyFixture is a plan over a base file: base, patch, zeros, base.
func bodyFixture(t *testing.T) (customize.Plan, *os.File, []byte) {
	t.Helper()
	base := patternBytes(3<<20, 5)
	p := filepath.Join(t.TempDir(), "base")
	if err := os.WriteFile(p, base, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	patch := []byte("patched bytes")
	plan := customize.NewPlan("x",
		customize.Extent(0, 1<<20+3),
		customize.Patch(patch),
		customize.Zeros(5000),
		customize.Extent(2<<20, 1<<20),
	)
	want := append(append(append(bytes.Clone(base[:1<<20+3]), patch...), make([]byte, 5000)...), base[2<<20:]...)
	return plan, f, want
}

func TestPlanBodyHandsExtentsToReadFrom(t *testing.T) {
	plan, f, want := bodyFixture(t)
	set := metrics.NewSet()
	b := &planBody{plan: plan, f: f, stats: newBodyStats(set)}
	var rec extentRecorder
	n, err := b.WriteTo(&rec)
	if err != nil || n != plan.Size || !bytes.Equal(rec.buf.Bytes(), want) {
		t.Fatalf("WriteTo = %d, %v; equal %v", n, err, bytes.Equal(rec.buf.Bytes(), want))
	}
	// 1 MiB chunks: the first extent in two, the second in one.
	if rec.extents < 3 || b.stats.file.Get() != 2<<20+3 || b.stats.copied.Get() != 0 {
		t.Fatalf("%d extents handed over; counters file %d, copy %d", rec.extents, b.stats.file.Get(), b.stats.copied.Get())
	}
}

func TestPlanBodyCopiesForTLSAndPlainWriters(t *testing.T) {
	plan, f, want := bodyFixture(t)
	for _, tc := range []struct {
		name string
		tls  bool
		w    func(*bytes.Buffer) io.Writer
	}{
		{"TLS connection", true, func(b *bytes.Buffer) io.Writer { return &extentRecorder{} }},
		{"writer without ReadFrom", false, func(b *bytes.Buffer) io.Writer { return struct{ io.Writer }{b} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := tc.w(&buf)
			b := &planBody{plan: plan, f: f, tls: tc.tls, stats: newBodyStats(metrics.NewSet())}
			n, err := b.WriteTo(w)
			got := buf.Bytes()
			if rec, ok := w.(*extentRecorder); ok {
				got = rec.buf.Bytes()
				if rec.extents != 0 {
					t.Fatalf("%d file extents handed to a TLS connection's writer", rec.extents)
				}
			}
			if err != nil || n != plan.Size || !bytes.Equal(got, want) {
				t.Fatalf("WriteTo = %d, %v; equal %v", n, err, bytes.Equal(got, want))
			}
			if b.stats.copied.Get() != 2<<20+3 || b.stats.file.Get() != 0 {
				t.Fatalf("counters file %d, copy %d", b.stats.file.Get(), b.stats.copied.Get())
			}
		})
	}
}

func TestPlanBodyShortFile(t *testing.T) {
	_, f, _ := bodyFixture(t)
	past := customize.NewPlan("x", customize.Extent(3<<20-10, 20))
	for _, tlsConn := range []bool{false, true} {
		b := &planBody{plan: past, f: f, tls: tlsConn}
		var rec extentRecorder
		if _, err := b.WriteTo(&rec); err == nil {
			t.Fatalf("tls=%v: a file shorter than its extent gave no error", tlsConn)
		}
	}
}
