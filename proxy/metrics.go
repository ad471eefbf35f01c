package proxy

import (
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/isoedge/isoedge/internal/version"
)

// The original's metric names and buckets (go-http-metrics), so existing
// dashboards keep working; handler is always a route pattern.
const (
	metricDuration = "assisted_image_service_http_request_duration_seconds"
	metricSize     = "assisted_image_service_http_response_size_bytes"
	metricInflight = "assisted_image_service_http_requests_inflight"
)

var (
	durationBuckets = []float64{0.1, 1, 10, 50, 100, 300, 600}
	sizeBuckets     = []float64{100, 1e6, 5e8, 1e9, 1e10}
)

// serverMetrics records per-route request metrics on a private set and
// writes the set for /metrics.
type serverMetrics struct {
	set    *metrics.Set
	expose *exposer
	mu     sync.Mutex
	// inflight gauges by handler; created on first use.
	inflight map[string]*metrics.Gauge
}

func newServerMetrics(set *metrics.Set) *serverMetrics {
	set.GetOrCreateGauge(buildInfoName(version.Version(), version.Revision(), version.GoVersion()), func() float64 { return 1 })
	return &serverMetrics{set: set, expose: newExposer(), inflight: map[string]*metrics.Gauge{}}
}

// buildInfoName is the isoedge_build_info series of a build.
func buildInfoName(ver, rev, goVer string) string {
	return `isoedge_build_info{version="` + labelEscaper.Replace(ver) + `",revision="` + labelEscaper.Replace(rev) +
		`",goversion="` + labelEscaper.Replace(goVer) + `"}`
}

func (m *serverMetrics) gauge(handler string) *metrics.Gauge {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.inflight[handler]
	if g == nil {
		g = m.set.GetOrCreateGauge(metricInflight+`{service="",handler="`+handler+`"}`, nil)
		m.inflight[handler] = g
	}
	return g
}

// start marks a request in flight and returns the function that ends it.
func (m *serverMetrics) start(handler, method string) func(code int, size int64) {
	g := m.gauge(handler)
	g.Inc()
	t0 := time.Now()
	return func(code int, size int64) {
		g.Dec()
		labels := `{service="",handler="` + handler + `",method="` + method + `",code="` + strconv.Itoa(code) + `"}`
		m.set.GetOrCreatePrometheusHistogramExt(metricDuration+labels, durationBuckets).Update(time.Since(t0).Seconds())
		m.set.GetOrCreatePrometheusHistogramExt(metricSize+labels, sizeBuckets).Update(float64(size))
		if size > 0 {
			m.set.GetOrCreateCounter(`isoedge_served_bytes_total{handler="` + handler + `"}`).AddInt64(size)
		}
	}
}
