// Package newc reads and writes the SVR4 "new ASCII" cpio format (magic
// 070701), the format the Linux kernel unpacks as an initramfs.
//
// An archive is a sequence of members, each a 110-byte header of
// hexadecimal fields, the NUL-terminated name padded to a multiple of 4
// bytes, and the data padded to a multiple of 4 bytes; a member named
// TRAILER!!! ends it. The kernel aligns members relative to the start of the
// whole initramfs, so an archive that is to be followed by an uncompressed
// one must itself be a multiple of 4 bytes long (Writer output always is).
//
// The Writer is deterministic: uid, gid and mtime are zero, inodes are
// numbered 1, 2, … in write order, and missing parent directories are
// emitted before a nested name. The Reader is bounded: name length, member
// size, member count and total size are limited, so it may read archives
// from outside.
package newc

import (
	"errors"
	"fmt"
	"strings"
)

// Format constants.
const (
	// Magic starts every header ("070702" archives carry a checksum the
	// Reader accepts and ignores).
	Magic = "070701"
	// HeaderSize is the length of a header without the name.
	HeaderSize = 110
	// TrailerName is the name of the member that ends an archive.
	TrailerName = "TRAILER!!!"
)

// File type bits of Header.Mode (st_mode).
const (
	TypeMask    = 0o170000
	TypeDir     = 0o040000
	TypeRegular = 0o100000
	TypeSymlink = 0o120000
	TypeChar    = 0o020000
	TypeBlock   = 0o060000
)

var (
	// ErrFormat means the input is not a well-formed newc archive.
	ErrFormat = errors.New("newc: malformed archive")
	// ErrLimit means the archive exceeds a Reader limit.
	ErrLimit = errors.New("newc: archive exceeds a limit")
	// ErrName means a member name cannot be written.
	ErrName = errors.New("newc: invalid member name")
)

// Header is one member's metadata. Size is the length of the data that
// follows the header: the file content, or a symlink's target.
type Header struct {
	Name      string
	Ino       uint32
	Mode      uint32 // st_mode: type bits and permissions
	UID, GID  uint32
	NLink     uint32
	Mtime     uint32
	Size      int64
	DevMajor  uint32
	DevMinor  uint32
	RDevMajor uint32 // device nodes
	RDevMinor uint32
}

// IsDir reports whether the member is a directory.
func (h Header) IsDir() bool { return h.Mode&TypeMask == TypeDir }

// IsRegular reports whether the member is a regular file.
func (h Header) IsRegular() bool { return h.Mode&TypeMask == TypeRegular }

// AppendHeader appends h's header and NUL-terminated name, padded to a
// multiple of 4 bytes, to dst. dst must start at a 4-byte boundary of the
// archive (as every header does). It fails if a field does not fit its 8
// hex digits or the name holds a NUL.
func AppendHeader(dst []byte, h Header) ([]byte, error) {
	if h.Size < 0 || h.Size > 0xFFFFFFFF {
		return dst, fmt.Errorf("newc: %q: size %d does not fit a header", h.Name, h.Size)
	}
	if h.Name == "" || strings.IndexByte(h.Name, 0) >= 0 {
		return dst, fmt.Errorf("%w: %q", ErrName, h.Name)
	}
	start := len(dst)
	dst = append(dst, Magic...)
	for _, v := range [...]uint32{h.Ino, h.Mode, h.UID, h.GID, h.NLink, h.Mtime, uint32(h.Size),
		h.DevMajor, h.DevMinor, h.RDevMajor, h.RDevMinor, uint32(len(h.Name) + 1), 0} {
		dst = appendHex8(dst, v)
	}
	dst = append(dst, h.Name...)
	dst = append(dst, 0)
	for (len(dst)-start)%4 != 0 {
		dst = append(dst, 0)
	}
	return dst, nil
}

const hexDigits = "0123456789ABCDEF"

func appendHex8(dst []byte, v uint32) []byte {
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[v>>uint(shift)&0xF])
	}
	return dst
}

// pad4 returns how many bytes bring n to a multiple of 4.
func pad4(n int64) int64 { return -n & 3 }
