package proxy

import (
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fasthttp/router"
	"github.com/isoedge/isoedge/cache"
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
	Store   *cache.Store
	Log     *zap.Logger
	Metrics *metrics.Set
}

// Server answers the image service's HTTP API.
type Server struct {
	cfg     *config.Config
	bases   Bases
	src     upstream.Source
	store   *cache.Store
	log     *zap.Logger
	set     *metrics.Set
	metrics *serverMetrics
	limit   *limiter
	snaps   *snapshots
	router  *router.Router

	files *filePool
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
		store:   o.Store,
		log:     o.Log,
		set:     o.Metrics,
		metrics: newServerMetrics(o.Metrics),
		limit:   newLimiter(o.Config.MaxConcurrentRequests, o.Config.RequestWait),
		files:   newFilePool(storeOpener(o.Store), maxIdleFiles),
		stats:   newBodyStats(o.Metrics),
	}
	snaps, err := newSnapshots(o.Config.IgnitionCacheTTL)
	if err != nil {
		panic("proxy: snapshot cache: " + err.Error()) // only a programming error gets here
	}
	s.snaps = snaps
	s.set.GetOrCreateGauge("isoedge_image_streams_active", func() float64 { return float64(s.limit.inUse()) })
	s.router = s.routes()
	return s
}

// InUse reports whether a response is streaming from blob d: the disk
// budget must not evict it.
func (s *Server) InUse(d cache.Digest) bool { return s.files.inUse(d) }

// Forget closes blob d's open files, each once its response is done; call
// it when the blob is removed from the store.
func (s *Server) Forget(d cache.Digest) { s.files.forget(d) }

// retryAfter is the Retry-After value, in seconds, of 503 answers.
const retryAfter = "10"

// Handler returns the request handler for a listener. plainHTTP marks the
// plain-HTTP listener of the two-listener setup, where only pxe-initrd and
// boot artifacts are served (iPXE cannot do HTTPS).
func (s *Server) Handler(plainHTTP bool) fasthttp.RequestHandler {
	h := s.router.Handler
	if len(s.cfg.AllowedDomains) > 0 {
		h = s.cors(h)
	}
	if !plainHTTP {
		return h
	}
	return func(ctx *fasthttp.RequestCtx) {
		if isImageRoute(ctx.Path()) && !hasSuffix(ctx.Path(), "/pxe-initrd") {
			httpError(ctx, "404 page not found", fasthttp.StatusNotFound)
			return
		}
		h(ctx)
	}
}

// NewHTTPServer returns a fasthttp server for h with the timeouts an image
// service needs: a short deadline to read a request, none to write one (a
// 1 GB download over a slow link takes as long as it takes).
func NewHTTPServer(h fasthttp.RequestHandler, log *zap.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       h,
		Name:                          "isoedge",
		ReadTimeout:                   10 * time.Second,
		IdleTimeout:                   60 * time.Second,
		ReadBufferSize:                8 << 10,
		MaxRequestBodySize:            1 << 20,
		DisableHeaderNamesNormalizing: false,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		TCPKeepalive:                  true,
		Logger:                        zapPrintf{log},
	}
}

type zapPrintf struct{ l *zap.Logger }

func (z zapPrintf) Printf(format string, args ...any) { z.l.Sugar().Debugf(format, args...) }

func isImageRoute(p []byte) bool {
	for _, pre := range []string{"/images/", "/byid/", "/bytoken/", "/byapikey/", "/images"} {
		if len(p) >= len(pre) && string(p[:len(pre)]) == pre {
			return true
		}
	}
	return false
}

func hasSuffix(p []byte, suf string) bool {
	return len(p) >= len(suf) && string(p[len(p)-len(suf):]) == suf
}
