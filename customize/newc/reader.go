package newc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits bound what a Reader accepts. A zero field takes its value from
// DefaultLimits.
type Limits struct {
	MaxNameLen int   // bytes of one name, without the NUL; the trailer's name has 10
	MaxSize    int64 // bytes of one member's data
	MaxMembers int   // members, the trailer included
	MaxTotal   int64 // bytes of the whole archive, padding included
}

// DefaultLimits are generous for an initramfs appendix and small enough
// that reading an archive from outside costs bounded memory and time.
var DefaultLimits = Limits{MaxNameLen: 4096, MaxSize: 64 << 20, MaxMembers: 65536, MaxTotal: 256 << 20}

func (l Limits) orDefault() Limits {
	if l.MaxNameLen <= 0 {
		l.MaxNameLen = DefaultLimits.MaxNameLen
	}
	if l.MaxSize <= 0 {
		l.MaxSize = DefaultLimits.MaxSize
	}
	if l.MaxMembers <= 0 {
		l.MaxMembers = DefaultLimits.MaxMembers
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = DefaultLimits.MaxTotal
	}
	return l
}

// Reader reads one archive member by member, like archive/tar's Reader:
// Next returns a member's header, Read its data.
type Reader struct {
	r       io.Reader
	lim     Limits
	n       int64 // bytes consumed from r
	remain  int64 // data of the current member not yet read
	pad     int64 // padding after the current member's data
	members int
	done    bool
	err     error
	hdr     [HeaderSize]byte
}

// NewReader returns a Reader of the archive at the start of r. It reads
// no further than the trailer's padding, so another archive may follow.
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{r: r, lim: lim.orDefault()}
}

// Next skips the rest of the current member and returns the next one's
// header. After the trailer it returns io.EOF. A malformed or truncated
// archive gives an error wrapping ErrFormat, one beyond the limits an
// error wrapping ErrLimit; both are sticky.
func (r *Reader) Next() (Header, error) {
	if r.err != nil {
		return Header{}, r.err
	}
	if r.done {
		return Header{}, io.EOF
	}
	if err := r.skip(r.remain + r.pad); err != nil {
		return Header{}, r.fail(err)
	}
	r.remain, r.pad = 0, 0
	h, err := r.header()
	if err != nil {
		return Header{}, r.fail(err)
	}
	if h.Name == TrailerName {
		r.done = true
		return Header{}, io.EOF
	}
	r.remain, r.pad = h.Size, pad4(h.Size)
	return h, nil
}

// Read reads the current member's data; it returns io.EOF at its end.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.r.Read(p)
	r.n += int64(n)
	r.remain -= int64(n)
	if err == io.EOF && r.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		return n, r.fail(err)
	}
	return n, nil
}

// Len returns the number of archive bytes consumed so far.
func (r *Reader) Len() int64 { return r.n }

func (r *Reader) fail(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: truncated at byte %d", ErrFormat, r.n)
	}
	r.err = err
	return err
}

func (r *Reader) skip(n int64) error {
	if n == 0 {
		return nil
	}
	m, err := io.CopyN(io.Discard, r.r, n)
	r.n += m
	return err
}

func (r *Reader) full(b []byte) error {
	n, err := io.ReadFull(r.r, b)
	r.n += int64(n)
	return err
}

// header reads and checks one header and its padded name.
func (r *Reader) header() (Header, error) {
	at := r.n
	if r.members++; r.members > r.lim.MaxMembers {
		return Header{}, fmt.Errorf("%w: more than %d members", ErrLimit, r.lim.MaxMembers)
	}
	if err := r.full(r.hdr[:]); err != nil {
		return Header{}, err
	}
	if m := string(r.hdr[:6]); m != Magic && m != "070702" {
		return Header{}, fmt.Errorf("%w: bad magic %q at byte %d", ErrFormat, m, at)
	}
	var f [13]uint32
	for i := range f {
		v, ok := parseHex8(r.hdr[6+8*i : 14+8*i])
		if !ok {
			return Header{}, fmt.Errorf("%w: bad header field %d at byte %d", ErrFormat, i, at)
		}
		f[i] = v
	}
	h := Header{Ino: f[0], Mode: f[1], UID: f[2], GID: f[3], NLink: f[4], Mtime: f[5], Size: int64(f[6]),
		DevMajor: f[7], DevMinor: f[8], RDevMajor: f[9], RDevMinor: f[10]}
	nameSize := int64(f[11])
	switch {
	case nameSize < 2:
		return Header{}, fmt.Errorf("%w: empty name at byte %d", ErrFormat, at)
	case nameSize-1 > int64(r.lim.MaxNameLen):
		return Header{}, fmt.Errorf("%w: name of %d bytes at byte %d", ErrLimit, nameSize-1, at)
	case h.Size > r.lim.MaxSize:
		return Header{}, fmt.Errorf("%w: member of %d bytes at byte %d", ErrLimit, h.Size, at)
	}
	namePad := pad4(HeaderSize + nameSize)
	if end := at + HeaderSize + nameSize + namePad + h.Size + pad4(h.Size); end > r.lim.MaxTotal {
		return Header{}, fmt.Errorf("%w: archive longer than %d bytes", ErrLimit, r.lim.MaxTotal)
	}
	name := make([]byte, nameSize+namePad)
	if err := r.full(name); err != nil {
		return Header{}, err
	}
	name = name[:nameSize]
	if name[nameSize-1] != 0 || bytes.IndexByte(name[:nameSize-1], 0) >= 0 {
		return Header{}, fmt.Errorf("%w: name at byte %d is not one NUL-terminated string", ErrFormat, at)
	}
	h.Name = string(name[:nameSize-1])
	if h.Name == TrailerName && h.Size != 0 {
		return Header{}, fmt.Errorf("%w: trailer with data at byte %d", ErrFormat, at)
	}
	return h, nil
}

// parseHex8 parses 8 hexadecimal digits, either case.
func parseHex8(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}

// Member is a header with its data.
type Member struct {
	Header
	Data []byte
}

// ReadAll reads every member of the archive at the start of r, up to its
// trailer, with the Reader's limits.
func ReadAll(r io.Reader, lim Limits) ([]Member, error) {
	nr := NewReader(r, lim)
	var out []Member
	for {
		h, err := nr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		// Grown as data arrives: a header claiming more than the input
		// holds costs no more memory than the input.
		data, err := io.ReadAll(nr)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{Header: h, Data: data})
	}
}
