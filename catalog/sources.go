package catalog

import (
	"io"
	"net/url"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// Kinds of source an image's bytes are fetched from.
const (
	SourceHTTP     = "http" // http:// and https:// URLs
	SourceFile     = "file" // file:// URLs, the copy assisted-image-service left, the built-in sample
	SourceRegistry = "registry"
	SourcePeer     = "peer" // a sibling replica
)

var sourceKinds = [...]string{SourceHTTP, SourceFile, SourceRegistry, SourcePeer}

// sourceStats counts, per source kind, the bytes fetched into the store,
// and for peers the fills served to siblings and the fills that fell back
// to the image's source. The counters are the metrics, so /metrics and
// /health agree.
type sourceStats struct {
	bytes     map[string]*metrics.Counter
	served    *metrics.Counter
	fallbacks *metrics.Counter
}

func newSourceStats(set *metrics.Set) *sourceStats {
	s := &sourceStats{
		bytes:     map[string]*metrics.Counter{},
		served:    set.GetOrCreateCounter("isoedge_peer_fills_served_total"),
		fallbacks: set.GetOrCreateCounter("isoedge_peer_fallbacks_total"),
	}
	for _, k := range sourceKinds {
		s.bytes[k] = set.GetOrCreateCounter(`isoedge_image_fetch_bytes_total{source="` + k + `"}`)
	}
	return s
}

// writer returns w counting what is written to it as fetched from kind.
func (s *sourceStats) writer(kind string, w io.Writer) io.Writer {
	return &countingWriter{w: w, c: s.bytes[kind]}
}

type countingWriter struct {
	w io.Writer
	c *metrics.Counter
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.c.Add(n)
	return n, err
}

// sourceKind is the kind of an image source URL.
func sourceKind(src string) string {
	u, err := url.Parse(src)
	if err != nil {
		return SourceHTTP
	}
	switch strings.ToLower(u.Scheme) {
	case "file":
		return SourceFile
	case "docker":
		return SourceRegistry
	}
	return SourceHTTP
}

// SourceStatus is what /health reports of one source kind.
type SourceStatus struct {
	BytesFetched uint64 `json:"bytes_fetched"`
}

// PeerStatus is what /health reports of peer fill.
type PeerStatus struct {
	Enabled      bool   `json:"enabled"` // PEERS or PEERS_DNS is set
	BytesFetched uint64 `json:"bytes_fetched"`
	FillsServed  uint64 `json:"fills_served"` // blobs sent whole to siblings
	Fallbacks    uint64 `json:"fallbacks"`    // fills that went to the source after a peer failed
}

// SourcesStatus is the "sources" object of /health.
type SourcesStatus struct {
	HTTP     SourceStatus `json:"http"`
	File     SourceStatus `json:"file"`
	Registry SourceStatus `json:"registry"`
	Peer     PeerStatus   `json:"peer"`
}

func (s *sourceStats) status(peers bool) SourcesStatus {
	return SourcesStatus{
		HTTP:     SourceStatus{s.bytes[SourceHTTP].Get()},
		File:     SourceStatus{s.bytes[SourceFile].Get()},
		Registry: SourceStatus{s.bytes[SourceRegistry].Get()},
		Peer: PeerStatus{
			Enabled: peers, BytesFetched: s.bytes[SourcePeer].Get(),
			FillsServed: s.served.Get(), Fallbacks: s.fallbacks.Get(),
		},
	}
}
