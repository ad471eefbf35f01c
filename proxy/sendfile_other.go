//go:build !linux

package proxy

import (
	"errors"
	"net"
	"os"
	"syscall"
)

func rawConnOf(net.Conn) syscall.RawConn { return nil }

func sendfileAt(syscall.RawConn, *os.File, int64, int64) (int64, error) {
	return 0, errors.New("proxy: sendfile at offset is Linux-only")
}
