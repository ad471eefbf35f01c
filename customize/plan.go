package customize

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
)

// SegmentKind says where a segment's bytes come from.
type SegmentKind uint8

const (
	// FromBase segments are a byte range [Off, Off+Len) of the plan's base file.
	FromBase SegmentKind = iota
	// FromData segments are Data[Off:Off+Len], a patch held in memory.
	FromData
	// FromZero segments are Len zero bytes.
	FromZero
	// FromFile segments are bytes [Off, Off+Len) of Src, content that the
	// plan's builder holds outside memory (a large ramdisk spilled to
	// disk) and keeps readable while the plan is served.
	FromFile
)

// A Segment is one contiguous piece of a plan's output.
type Segment struct {
	Kind SegmentKind
	Off  int64  // offset into the base file (FromBase), Data (FromData) or Src (FromFile)
	Len  int64  // number of output bytes
	Data []byte // the patch; shared, never modified, for FromData only
	// Src and SrcSum are a FromFile segment's content and the SHA-256 of
	// all of it, which stands for the content in the plan's ETag.
	Src    io.ReaderAt
	SrcSum [sha256.Size]byte
}

// A Plan describes a customized image as the concatenation of its segments.
// Plans are values: slicing one never changes it, and patches are shared.
type Plan struct {
	Base string    // content address of the base file the FromBase segments refer to
	Size int64     // sum of the segment lengths
	Segs []Segment // in output order, none empty
}

// NewPlan returns a plan over segs, dropping empty segments and computing Size.
func NewPlan(base string, segs ...Segment) Plan {
	p := Plan{Base: base, Segs: make([]Segment, 0, len(segs))}
	for _, s := range segs {
		if s.Len == 0 {
			continue
		}
		p.Segs = append(p.Segs, s)
		p.Size += s.Len
	}
	return p
}

// Patch returns a segment that outputs b.
func Patch(b []byte) Segment { return Segment{Kind: FromData, Len: int64(len(b)), Data: b} }

// Extent returns a segment that outputs n bytes of the base file from off.
func Extent(off, n int64) Segment { return Segment{Kind: FromBase, Off: off, Len: n} }

// Zeros returns a segment of n zero bytes.
func Zeros(n int64) Segment { return Segment{Kind: FromZero, Len: n} }

// File returns a segment that outputs the n bytes of src, whose SHA-256
// is sum. src must stay readable while a plan holding it is served.
func File(src io.ReaderAt, n int64, sum [sha256.Size]byte) Segment {
	return Segment{Kind: FromFile, Len: n, Src: src, SrcSum: sum}
}

// Validate checks that the plan is internally consistent: no negative or
// empty segments, patches within their data, and Size equal to the sum.
func (p Plan) Validate() error {
	var sum int64
	for i, s := range p.Segs {
		if s.Len <= 0 || s.Off < 0 {
			return fmt.Errorf("customize: segment %d: bad extent off=%d len=%d", i, s.Off, s.Len)
		}
		if s.Kind == FromData && s.Off+s.Len > int64(len(s.Data)) {
			return fmt.Errorf("customize: segment %d: patch range %d+%d exceeds %d bytes", i, s.Off, s.Len, len(s.Data))
		}
		if s.Kind == FromFile && s.Src == nil {
			return fmt.Errorf("customize: segment %d: file segment without a source", i)
		}
		if s.Kind > FromFile {
			return fmt.Errorf("customize: segment %d: unknown kind %d", i, s.Kind)
		}
		if sum > (1<<63-1)-s.Len {
			return fmt.Errorf("customize: segment %d: size overflows", i)
		}
		sum += s.Len
	}
	if sum != p.Size {
		return fmt.Errorf("customize: plan size %d, segments sum to %d", p.Size, sum)
	}
	return nil
}

// Slice returns the plan of bytes [off, off+n) of p's output.
func (p Plan) Slice(off, n int64) (Plan, error) {
	if off < 0 || n < 0 || off > p.Size || n > p.Size-off {
		return Plan{}, fmt.Errorf("%w: %d+%d of %d", ErrRange, off, n, p.Size)
	}
	out := Plan{Base: p.Base, Size: n}
	pos := int64(0)
	for _, s := range p.Segs {
		if n == 0 {
			break
		}
		end := pos + s.Len
		if end <= off {
			pos = end
			continue
		}
		skip := off - pos // > 0 only for the first segment taken
		take := min(s.Len-skip, n)
		t := s
		if t.Kind != FromZero {
			t.Off += skip
		}
		t.Len = take
		out.Segs = append(out.Segs, t)
		off += take
		n -= take
		pos = end
	}
	return out, nil
}

// ETag returns a strong entity tag for the plan's output: a digest over the
// base address and each segment's description, with patches represented by
// their own SHA-256. Two plans with the same ETag produce the same bytes.
func (p Plan) ETag() string {
	h := sha256.New()
	h.Write([]byte(p.Base))
	var buf [1 + 8 + 8 + sha256.Size]byte
	for _, s := range p.Segs {
		buf[0] = byte(s.Kind)
		binary.BigEndian.PutUint64(buf[1:], uint64(s.Off))
		binary.BigEndian.PutUint64(buf[9:], uint64(s.Len))
		n := 17
		switch s.Kind {
		case FromData:
			sum := sha256.Sum256(s.Data[s.Off : s.Off+s.Len])
			n += copy(buf[17:], sum[:])
		case FromFile:
			n += copy(buf[17:], s.SrcSum[:])
		}
		h.Write(buf[:n])
	}
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}
