package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	"github.com/isoedge/isoedge/internal/fixture"
)

// Load and abuse: bounded request slots, stalled clients, slowloris,
// oversized requests.

// activeStreams reads isoedge_image_streams_active from /metrics.
func activeStreams(t *testing.T, in *instance) int {
	t.Helper()
	resp, err := http.Get(in.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "isoedge_image_streams_active "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	t.Fatal("no isoedge_image_streams_active in /metrics")
	return 0
}

func waitStreams(t *testing.T, in *instance, cond func(int) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		n := activeStreams(t, in)
		if cond(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d streams active", what, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// holdStream sends a GET and reads only the status line: the server then
// blocks on a full socket, holding its request slot.
func holdStream(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// A small receive buffer makes the server block sooner.
	c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	line, err := bufio.NewReaderSize(c, 64).ReadString('\n')
	if err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("holder: %q, %v", line, err)
	}
	return c
}

func loadInstance(t *testing.T, extra map[string]string) (*instance, string) {
	t.Helper()
	dir := t.TempDir()
	iso, _ := fixture.Build(t, dir, fixture.Options{RootfsSize: 48 << 20})
	as := newFakeAS(t)
	id := "0a0b0c0d-0000-4000-8000-000000000005"
	as.set(id, &infraEnv{ignition: ignitionFor("load")})
	env := baseEnv(dir)
	env["LOG_LEVEL"] = "info"
	env["ASSISTED_SERVICE_HOST"] = as.hostPort()
	env["OS_IMAGES"] = osImagesJSON(t, config.OSImage{OpenshiftVersion: "4.19", CPUArchitecture: "x86_64", URL: "file://" + iso, Version: "419.96.1"})
	for k, v := range extra {
		env[k] = v
	}
	in := startInstance(t, env)
	in.waitReady(t, 120*time.Second)
	return in, "/byid/" + id + "/4.19/x86_64/full.iso"
}

// TestSlotsBoundStreams holds 400 slots with clients that stopped reading,
// then sends 1600 more concurrent requests: they get 503 with Retry-After
// after the bounded wait; no fd exhaustion, no goroutine leak.
func TestSlotsBoundStreams(t *testing.T) {
	// The holders stop reading: with the default stall timeout (60 s) a
	// busy machine could cut the first of them off before the last
	// request is refused, and hand its slot to that request.
	in, path := loadInstance(t, map[string]string{"MAX_CONCURRENT_REQUESTS": "400", "MAX_CONCURRENT_REQUESTS_WAIT": "300ms", "STREAM_STALL_TIMEOUT": "1h"})
	addr := strings.TrimPrefix(in.url, "http://")
	goroutines := busyGoroutines()

	holders := make([]net.Conn, 0, 400)
	for i := 0; i < 400; i++ {
		holders = append(holders, holdStream(t, addr, path))
	}
	waitStreams(t, in, func(n int) bool { return n == 400 }, "400 holders")

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1600, DisableCompression: true}, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	var busy, other atomic.Int32
	var otherStatus atomic.Value
	start := time.Now()
	for i := 0; i < 1600; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(in.url + path)
			if err != nil {
				other.Add(1)
				otherStatus.Store(err.Error())
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
				busy.Add(1)
				return
			}
			other.Add(1)
			otherStatus.Store(resp.Status)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	client.CloseIdleConnections()
	if busy.Load() != 1600 {
		t.Fatalf("%d of 1600 got 503 + Retry-After; %d others (last: %v)", busy.Load(), other.Load(), otherStatus.Load())
	}
	if elapsed < 300*time.Millisecond {
		t.Fatalf("refused after %v, before the bounded wait of 300ms", elapsed)
	}
	t.Logf("1600 refused requests took %v in all", elapsed)
	// /health and /metrics still answer while every slot is taken.
	if n := activeStreams(t, in); n != 400 {
		t.Fatalf("%d streams active, want 400", n)
	}

	for _, c := range holders {
		c.Close()
	}
	waitStreams(t, in, func(n int) bool { return n == 0 }, "after closing holders")
	// A slot is free again.
	in.get(t, path, map[string]string{"Range": "bytes=0-99"}, http.StatusPartialContent)

	deadline := time.Now().Add(60 * time.Second)
	for busyGoroutines() > goroutines+20 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after\n%s", goroutines, busyGoroutines(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// busyGoroutines counts goroutines other than fasthttp's idle workers,
// which its worker pool keeps for MaxIdleWorkerDuration by design.
func busyGoroutines() int {
	buf := make([]byte, 8<<20)
	stacks := strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
	n := 0
	for _, s := range stacks {
		if strings.Contains(s, "[chan receive") && strings.Contains(s, "fasthttp.(*workerPool).workerFunc") {
			continue
		}
		n++
	}
	return n
}

// TestStalledClientsLoseTheirSlot: clients that stop reading (or vanish
// without closing) are disconnected after STREAM_STALL_TIMEOUT.
func TestStalledClientsLoseTheirSlot(t *testing.T) {
	// Each holder's stall clock runs from when its socket is full; all four
	// must still hold their slots when the fifth request comes, each after
	// a fresh call to assisted-service: the stall timeout leaves a busy
	// machine room for that.
	const stall = 5 * time.Second
	in, path := loadInstance(t, map[string]string{"MAX_CONCURRENT_REQUESTS": "4", "MAX_CONCURRENT_REQUESTS_WAIT": "0s", "STREAM_STALL_TIMEOUT": stall.String()})
	addr := strings.TrimPrefix(in.url, "http://")
	var held []net.Conn
	for i := 0; i < 4; i++ {
		held = append(held, holdStream(t, addr, path))
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	waitStreams(t, in, func(n int) bool { return n == 4 }, "4 stalled clients")
	resp, _ := in.do(t, http.MethodGet, path, map[string]string{"Range": "bytes=0-9"})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("with every slot held: %d, want 503", resp.StatusCode)
	}
	start := time.Now()
	waitStreams(t, in, func(n int) bool { return n == 0 }, "stalled clients after the stall timeout")
	if d := time.Since(start); d > stall+30*time.Second {
		t.Fatalf("slots freed after %v, stall timeout %v", d, stall)
	}
	in.get(t, path, map[string]string{"Range": "bytes=0-9"}, http.StatusPartialContent)
}

// TestSlowlorisAndOversizedRequests: a client trickling its headers is cut
// off by the read timeout; oversized headers and URLs are refused.
func TestSlowlorisAndOversizedRequests(t *testing.T) {
	in, path := loadInstance(t, nil)
	addr := strings.TrimPrefix(in.url, "http://")

	t.Run("oversized header", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", path, strings.Repeat("a", 64<<10))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.Contains(line, " 431 ") && !strings.Contains(line, " 400 ") {
			t.Fatalf("64 KiB header: %q, want 431 or 400", line)
		}
	})
	t.Run("oversized URL", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s?x=%s HTTP/1.1\r\nHost: x\r\n\r\n", path, strings.Repeat("a", 64<<10))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.Contains(line, " 414 ") && !strings.Contains(line, " 431 ") && !strings.Contains(line, " 400 ") {
			t.Fatalf("64 KiB URL: %q, want 414, 431 or 400", line)
		}
	})
	t.Run("slowloris", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n", path)
		start := time.Now()
		closed := make(chan struct{})
		go func() {
			io.Copy(io.Discard, c) // returns when the server closes
			close(closed)
		}()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-closed:
				if d := time.Since(start); d > 15*time.Second {
					t.Fatalf("closed after %v", d)
				}
				return
			case <-tick.C:
				if time.Since(start) > 20*time.Second {
					t.Fatal("a client trickling headers was kept for 20 s")
				}
				fmt.Fprintf(c, "X-Slow-%d: 1\r\n", i)
			}
		}
	})
}
