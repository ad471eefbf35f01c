// Command plainserver is the baseline of isoedge's benchmarks: a fasthttp
// server that sends files with fasthttp.ServeFile (sendfile), nothing
// else. isoedge serving a customized image is compared with it.
//
// With -tls-cert and -tls-key it is instead Go's net/http file server over
// TLS: each request opens the file and answers with http.ServeContent, as
// the original assisted-image-service does; isoedge over HTTPS is
// compared with that.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/valyala/fasthttp"
)

// serveFlags is a repeatable -serve /path=file flag.
type serveFlags map[string]string

func (s serveFlags) String() string { return fmt.Sprint(map[string]string(s)) }
func (s serveFlags) Set(v string) error {
	path, file, ok := strings.Cut(v, "=")
	if !ok || !strings.HasPrefix(path, "/") || file == "" {
		return fmt.Errorf("want /path=file, got %q", v)
	}
	s[path] = file
	return nil
}

func main() {
	files := serveFlags{}
	file := flag.String("file", "", "file to serve at /file")
	flag.Var(files, "serve", "/path=file to serve (repeatable)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	certFile := flag.String("tls-cert", "", "serve HTTPS with net/http and this certificate (PEM)")
	keyFile := flag.String("tls-key", "", "the certificate's key (PEM)")
	flag.Parse()
	if *file != "" {
		files["/file"] = *file
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The bench reads the chosen address from stdout.
	os.Stdout.WriteString(ln.Addr().String() + "\n")
	if *certFile != "" {
		log.Fatal(serveTLS(ln, files, *certFile, *keyFile))
	}
	h := func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		if path == "/health" {
			ctx.SetBodyString("ok")
			return
		}
		f, ok := files[path]
		if !ok {
			ctx.Error("not found", fasthttp.StatusNotFound)
			return
		}
		fasthttp.ServeFile(ctx, f)
	}
	log.Fatal((&fasthttp.Server{Handler: h}).Serve(ln))
}

// serveTLS is Go's TLS file server: net/http, http.ServeContent.
func serveTLS(ln net.Listener, files serveFlags, certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.Write([]byte("ok"))
			return
		}
		name, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		f, err := os.Open(name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", st.ModTime(), f)
	})
	srv := &http.Server{Handler: h, TLSConfig: cfg, TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	return srv.Serve(tls.NewListener(ln, cfg))
}
