package upstream

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// fullListener returns the address of a loopback socket that listens with
// a backlog of 0 and never accepts, its queue already taken by one
// connection: Linux then drops further SYNs, so a connect hangs the way it
// does towards a mirror behind a black-holing firewall.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue until a connect no longer completes.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
		if i == 16 {
			t.Fatal("the accept queue never filled up")
		}
	}
	return addr
}

func TestFetcherConnectTimeout(t *testing.T) {
	addr := fullListener(t)
	f, _ := NewFetcher(FetcherConfig{ConnectTimeout: testStall, HeaderTimeout: time.Hour, StallTimeout: time.Hour})
	ctx := failsafe(t)
	_, err := f.Fetch(ctx, FetchRequest{URL: "http://" + addr + "/x.iso"}, io.Discard)
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" || !oe.Timeout() || ctx.Err() != nil {
		t.Fatalf("err = %v (failsafe: %v), want a dial timeout", err, ctx.Err())
	}
}
