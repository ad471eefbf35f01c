// Command plainserver is the baseline of isoedge's benchmarks: a fasthttp
// server that sends one file with fasthttp.ServeFile (sendfile), nothing
// else. isoedge serving a customized image is compared with it.
package main

import (
	"flag"
	"log"
	"net"
	"os"

	"github.com/valyala/fasthttp"
)

func main() {
	file := flag.String("file", "", "file to serve at /file")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The bench reads the chosen address from stdout.
	os.Stdout.WriteString(ln.Addr().String() + "\n")
	h := func(ctx *fasthttp.RequestCtx) { fasthttp.ServeFile(ctx, *file) }
	log.Fatal((&fasthttp.Server{Handler: h}).Serve(ln))
}
