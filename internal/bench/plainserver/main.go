// Command plainserver is the baseline of isoedge's benchmarks: a fasthttp
// server that sends files with fasthttp.ServeFile (sendfile), nothing
// else. isoedge serving a customized image is compared with it.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
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
