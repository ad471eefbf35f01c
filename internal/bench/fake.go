package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// fakeAssisted answers assisted-service's three calls with a fixed
// ignition after a configurable delay, and counts the calls.
type fakeAssisted struct {
	srv   *http.Server
	addr  string
	delay atomic.Int64 // time.Duration
	// calls by kind
	ignition, ramdisk, infraEnv atomic.Int64
}

func newFakeAssisted() (*fakeAssisted, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fakeAssisted{addr: ln.Addr().String()}
	ign := []byte(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/bench","contents":{"source":"data:,bench"}}]}}`)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/assisted-install/v2/infra-envs/", func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(f.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/downloads/files"):
			f.ignition.Add(1)
			w.Header().Set("Last-Modified", "Wed, 25 Nov 2026 10:00:00 GMT")
			w.Write(ign)
		case strings.HasSuffix(r.URL.Path, "/downloads/minimal-initrd"):
			f.ramdisk.Add(1)
			w.WriteHeader(http.StatusNoContent)
		default:
			f.infraEnv.Add(1)
			w.Write([]byte(`{"kernel_arguments":"[{\"operation\":\"append\",\"value\":\"bench=1\"}]"}`))
		}
	})
	f.srv = &http.Server{Handler: mux}
	go f.srv.Serve(ln)
	return f, nil
}

// calls returns the number of calls so far: ignition, ramdisk, infra-env.
func (f *fakeAssisted) calls() [3]int64 {
	return [3]int64{f.ignition.Load(), f.ramdisk.Load(), f.infraEnv.Load()}
}

func (f *fakeAssisted) setDelay(d time.Duration) { f.delay.Store(int64(d)) }

func (f *fakeAssisted) Close() { f.srv.Shutdown(context.Background()) }
