package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// ListenSpec is one socket the service answers on.
type ListenSpec struct {
	Addr string
	TLS  bool
	// PlainHTTP marks the plain-HTTP side of the two-listener setup, where
	// only what iPXE needs is served.
	PlainHTTP bool
}

// ListenSpecs follows the original's listener table: HTTPS on LISTEN_PORT
// when a key pair is configured, else HTTP; with HTTP_LISTEN_PORT also set,
// a restricted plain-HTTP listener beside HTTPS, or HTTP on that port only
// when there is no key pair.
func ListenSpecs(cfg *config.Config) []ListenSpec {
	haveTLS := cfg.HTTPSCertFile != "" && cfg.HTTPSKeyFile != "" && cfg.ListenPort != ""
	switch {
	case cfg.HTTPListenPort == "" && haveTLS:
		return []ListenSpec{{Addr: ":" + cfg.ListenPort, TLS: true}}
	case cfg.HTTPListenPort == "":
		return []ListenSpec{{Addr: ":" + cfg.ListenPort}}
	case !haveTLS:
		return []ListenSpec{{Addr: ":" + cfg.HTTPListenPort}}
	default:
		return []ListenSpec{{Addr: ":" + cfg.ListenPort, TLS: true}, {Addr: ":" + cfg.HTTPListenPort, PlainHTTP: true}}
	}
}

// Endpoint is an open listener and how to answer on it.
type Endpoint struct {
	Listener  net.Listener
	TLS       *tls.Config // nil for plain TCP
	PlainHTTP bool        // see ListenSpec
}

// Listen opens the configured listeners (ListenSpecs), loading the HTTPS
// key pair where one is needed.
func (s *Server) Listen() ([]Endpoint, error) {
	var eps []Endpoint
	fail := func(err error) ([]Endpoint, error) {
		for _, ep := range eps {
			ep.Listener.Close()
		}
		return nil, err
	}
	for _, spec := range ListenSpecs(s.cfg) {
		ep := Endpoint{PlainHTTP: spec.PlainHTTP}
		if spec.TLS {
			cert, err := tls.LoadX509KeyPair(s.cfg.HTTPSCertFile, s.cfg.HTTPSKeyFile)
			if err != nil {
				return fail(fmt.Errorf("proxy: load HTTPS certificate: %w", err))
			}
			ep.TLS = s.cfg.TLSConfig([]tls.Certificate{cert})
			if len(s.cfg.TLSSkippedCiphers) > 0 {
				s.log.Info("TLS_CIPHER_SUITES names suites Go does not offer for configuration (DHE suites, TLS 1.3 suites, which Go always enables); skipped", zap.Strings("suites", s.cfg.TLSSkippedCiphers))
			}
		}
		ln, err := net.Listen("tcp", spec.Addr)
		if err != nil {
			return fail(err)
		}
		ep.Listener = ln
		eps = append(eps, ep)
	}
	return eps, nil
}

// Serve answers on eps until ctx ends or a listener fails, then shuts the
// servers down, waiting up to 30 s for streams in progress. It closes the
// listeners.
func (s *Server) Serve(ctx context.Context, eps ...Endpoint) error {
	servers := make([]*fasthttp.Server, 0, len(eps))
	errc := make(chan error, len(eps))
	for _, ep := range eps {
		srv := s.newHTTPServer(s.Handler(ep.PlainHTTP))
		ln := ep.Listener
		if ep.TLS != nil {
			srv.TLSConfig = ep.TLS
			ln = NewTLSListener(ln, ep.TLS)
		}
		servers = append(servers, srv)
		s.log.Info("listening", zap.String("addr", ep.Listener.Addr().String()), zap.Bool("https", ep.TLS != nil), zap.Bool("plain_http_only", ep.PlainHTTP))
		go func() { errc <- srv.Serve(ln) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, srv := range servers {
		if e := srv.ShutdownWithContext(shutdownCtx); e != nil && !errors.Is(e, context.DeadlineExceeded) {
			s.log.Warn("shutdown", zap.Error(e))
		}
	}
	return err
}
