package proxy

import (
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fasthttp/router"
	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/upstream"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Options are the parts a Server is built from.
type Options struct {
	Config  *config.Config
	Bases   Bases
	Source  upstream.Source
	Log     *zap.Logger
	Metrics *metrics.Set
}

// Server answers the image service's HTTP API.
type Server struct {
	cfg     *config.Config
	bases   Bases
	src     upstream.Source
	log     *zap.Logger
	set     *metrics.Set
	metrics *serverMetrics
	limit   *limiter // image streams
	snaps   *snapshots
	// routers: all routes, and the plain-HTTP listener's subset.
	router, plainRouter *router.Router

	stats *bodyStats
}

// New returns a Server.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	s := &Server{
		cfg:     o.Config,
		bases:   o.Bases,
		src:     o.Source,
		log:     o.Log,
		set:     o.Metrics,
		metrics: newServerMetrics(o.Metrics),
		limit:   newLimiter(o.Config.MaxConcurrentRequests, o.Config.RequestWait),
		stats:   newBodyStats(o.Metrics),
	}
	snaps, err := newSnapshots(o.Config.IgnitionCacheTTL, o.Config.SnapshotCacheMaxBytes, o.Config.MaxConcurrentUpstreamRequests, o.Metrics)
	if err != nil {
		panic("proxy: snapshot cache: " + err.Error()) // only a programming error gets here
	}
	s.snaps = snaps
	s.set.GetOrCreateGauge("isoedge_image_streams_active", func() float64 { return float64(s.limit.inUse()) })
	s.router = s.newRouter(false)
	s.plainRouter = s.newRouter(true)
	return s
}

// retryAfter is the Retry-After value, in seconds, of 503 answers.
const retryAfter = "10"

// Handler returns the request handler for a listener. plainHTTP marks the
// plain-HTTP listener of the two-listener setup, whose router holds only
// the routes iPXE needs.
func (s *Server) Handler(plainHTTP bool) fasthttp.RequestHandler {
	h := s.router.Handler
	if plainHTTP {
		h = s.plainRouter.Handler
	}
	if len(s.cfg.AllowedDomains) > 0 {
		h = s.cors(h)
	}
	return withRequestID(h)
}

// newHTTPServer returns a fasthttp server for h with the timeouts an image
// service needs: a short deadline to read a request, and a write deadline
// that bounds a stall, not a download (a 1 GB download over a slow link
// takes as long as it takes, as long as it moves).
func (s *Server) newHTTPServer(h fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:     h,
		Name:        "isoedge",
		ReadTimeout: 10 * time.Second,
		// Every response, not only image streams, must make progress: a
		// client that pipelines requests and never reads their answers
		// loses its connection. Image bodies renew the deadline per chunk.
		WriteTimeout:                  s.cfg.StreamStallTimeout,
		IdleTimeout:                   60 * time.Second,
		ReadBufferSize:                8 << 10,
		MaxRequestBodySize:            1 << 20,
		DisableHeaderNamesNormalizing: false,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		TCPKeepalive:                  true,
		Logger:                        connLogger{s.log},
	}
}

// connLogger takes fasthttp's connection-level messages. Their arguments
// can quote the raw request (a parse error carries the read buffer,
// credentials included), so only the message's format and the peer
// addresses are logged, never the other arguments.
type connLogger struct{ l *zap.Logger }

func (c connLogger) Printf(format string, args ...any) {
	fields := []zap.Field{zap.String("format", format)}
	var addrs []string
	for _, a := range args {
		if addr, ok := a.(net.Addr); ok {
			addrs = append(addrs, addr.String())
		}
	}
	if len(addrs) > 0 {
		fields = append(fields, zap.Strings("addrs", addrs))
	}
	c.l.Debug("http connection error", fields...)
}

func isImageRoute(p []byte) bool {
	for _, pre := range []string{"/images/", "/byid/", "/bytoken/", "/byapikey/", "/images"} {
		if len(p) >= len(pre) && string(p[:len(pre)]) == pre {
			return true
		}
	}
	return false
}
