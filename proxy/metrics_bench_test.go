package proxy

import (
	"io"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
)

// BenchmarkMetricsExposition measures a /metrics body for a busy server
// (every route with several status codes) against the set's own writer,
// which lacks HELP text.
func BenchmarkMetricsExposition(b *testing.B) {
	set := metrics.NewSet()
	m := newServerMetrics(set)
	for _, route := range []string{routeByID, routeByAPIKey, routeByToken, routeLongISO, routeInitrd, routeAddrsize, "/boot-artifacts/kernel", "/boot-artifacts/rootfs", "/boot-artifacts/ins-file"} {
		for code := 200; code < 206; code++ {
			m.start(route, "GET")(code, 1<<20)
		}
	}
	if _, err := newSnapshots(0, 1<<20, 4, set); err != nil {
		b.Fatal(err)
	}
	b.Run("set-writer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			set.WritePrometheus(io.Discard)
		}
	})
	b.Run("exposer", func(b *testing.B) {
		b.ReportAllocs()
		e, log := newExposer(), zap.NewNop()
		for b.Loop() {
			if err := e.write(io.Discard, set, log); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(set.ListMetricNames())), "series")
	})
}
