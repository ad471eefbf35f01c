package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/isoedge/isoedge/customize"
	"github.com/isoedge/isoedge/customize/newc"
)

// What is embedded in an ISO is read back from the image itself, so it
// works on images customized by the service, by this command line or by
// hand:
//
//   - the ignition area holds a gzip'd newc cpio archive (config.ign)
//     followed by zeros; all zeros means nothing is embedded;
//   - each boot config's kernel command line ends in a region that
//     coreos/kargs.json locates (its "offset" into the file) and the
//     COREOS_KARG_EMBED_AREA marker ends: the kernel arguments, "\n", then
//     '#' padding. The defaults are kargs.json's "default"; the service
//     appends " args" after them.

// Bounds on what is read back from an image.
const (
	maxConfigFile     = 1 << 20  // coreos/kargs.json
	maxKargRegion     = 64 << 10 // one kernel-argument region
	maxUnpackedConfig = 64 << 20 // the ignition archive, decompressed
)

// archiveLimits bound the cpio structure of an embedded or wrapped archive.
func archiveLimits() newc.Limits {
	return newc.Limits{MaxNameLen: 4096, MaxSize: maxIgnitionInput, MaxMembers: 4096, MaxTotal: maxUnpackedConfig}
}

// ignitionState is what the ignition area holds.
type ignitionState struct {
	File    string   `json:"file"`              // the ISO file holding the area
	Area    int64    `json:"area_bytes"`        // its length; 0: the image has none
	Used    int64    `json:"used_bytes"`        // bytes before its zero tail
	Free    int64    `json:"free_bytes"`        // the zero tail
	Members []string `json:"members,omitempty"` // names in the embedded archive
	Config  []byte   `json:"-"`                 // config.ign; nil when absent
	Size    int      `json:"config_bytes"`      // len(Config)
	Problem string   `json:"problem,omitempty"` // why the content could not be read
}

// embedded reports whether the area holds anything.
func (s ignitionState) embedded() bool { return s.Used > 0 }

// readIgnitionState reads the ignition area of f.
func readIgnitionState(f *os.File, l *customize.Layout) (ignitionState, error) {
	s := ignitionState{File: l.IgnitionFile, Area: l.Ignition.Len}
	if l.Ignition.Len == 0 {
		return s, nil
	}
	free, err := freeTail(f, l.Ignition)
	if err != nil {
		return s, err
	}
	s.Free, s.Used = free, l.Ignition.Len-free
	if s.Used == 0 {
		return s, nil
	}
	// The whole area: a gzip trailer may end in zero bytes.
	members, config, end, err := unwrapArchives(bufio.NewReader(io.NewSectionReader(f, l.Ignition.Off, l.Ignition.Len)))
	s.Members, s.Config, s.Size = members, config, len(config)
	switch {
	case err != nil:
		s.Problem = err.Error()
	case config == nil:
		s.Problem = "the embedded archive holds no config.ign"
	default:
		// Another archive would start at the next 4-byte boundary (newc
		// alignment), which is where the writer's padding ends.
		end = min((end+3)&^3, l.Ignition.Len)
		s.Used, s.Free = end, l.Ignition.Len-end
	}
	return s, nil
}

var errUnknownData = errors.New("neither a gzip'd nor a plain newc cpio archive")

// unwrapArchives reads initramfs archives from r until its end: gzip
// members and plain newc archives, with NUL padding between and after
// them, as the kernel unpacks them. It returns the member names, the last
// config.ign (later members replace earlier ones when the kernel unpacks
// them) and the offset just past the last archive.
func unwrapArchives(r *bufio.Reader) (names []string, config []byte, end int64, err error) {
	var at int64 // bytes of r consumed
	for {
		b, err := r.Peek(6)
		if len(b) == 0 && err == io.EOF {
			return names, config, end, nil
		}
		switch {
		case len(b) > 0 && b[0] == 0:
			n, err := skipZeros(r)
			at += n
			if err != nil {
				return names, config, end, err
			}
			continue
		case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b:
			cr := &countingReader{r: r}
			zr, err := gzip.NewReader(cr)
			if err != nil {
				return names, config, end, fmt.Errorf("gzip member at byte %d: %w", at, err)
			}
			// r is an io.ByteReader, so gzip reads no further than the
			// member's end and the next archive stays in r.
			zr.Multistream(false)
			unpacked := bufio.NewReader(io.LimitReader(zr, maxUnpackedConfig))
			if names, config, err = readCpios(unpacked, names, config); err != nil {
				return names, config, end, fmt.Errorf("gzip member at byte %d: %w", at, err)
			}
			// readCpios read the limited stream to its end: the member
			// must end there (gzip checks its CRC and length at the end).
			var one [1]byte
			if n, err := io.ReadFull(zr, one[:]); n > 0 {
				return names, config, end, fmt.Errorf("gzip member at byte %d unpacks to more than %d bytes", at, maxUnpackedConfig)
			} else if err != io.EOF {
				return names, config, end, fmt.Errorf("gzip member at byte %d: %w", at, err)
			}
			at += cr.n
		case len(b) == 6 && (string(b) == newc.Magic || string(b) == "070702"):
			nr := newc.NewReader(r, archiveLimits())
			if names, config, err = readCpio(nr, names, config); err != nil {
				return names, config, end, fmt.Errorf("cpio archive at byte %d: %w", at, err)
			}
			at += nr.Len()
		default:
			if err != nil && err != io.EOF {
				return names, config, end, err
			}
			if bytes.HasPrefix(b, []byte{0xfd, '7', 'z', 'X', 'Z'}) {
				return names, config, end, fmt.Errorf("data at byte %d is xz-compressed (as coreos-installer writes it), %w", at, errUnknownData)
			}
			return names, config, end, fmt.Errorf("data at byte %d is %w", at, errUnknownData)
		}
		end = at
	}
}

// skipZeros consumes the NUL bytes at the start of r.
func skipZeros(r *bufio.Reader) (int64, error) {
	var n int64
	for {
		b, err := r.Peek(r.Size())
		z := len(b) - len(bytes.TrimLeft(b, "\x00"))
		if _, derr := r.Discard(z); derr != nil {
			return n, derr
		}
		n += int64(z)
		if z < len(b) || len(b) == 0 {
			return n, nil
		}
		if err != nil {
			if err == io.EOF {
				return n, nil
			}
			return n, err
		}
	}
}

// readCpios reads the newc archives (NUL padding between them) that make
// up one decompressed stream.
func readCpios(r *bufio.Reader, names []string, config []byte) ([]string, []byte, error) {
	for {
		b, err := r.Peek(1)
		if len(b) == 0 {
			if err == io.EOF {
				return names, config, nil
			}
			return names, config, err
		}
		if b[0] == 0 {
			r.ReadByte()
			continue
		}
		if names, config, err = readCpio(newc.NewReader(r, archiveLimits()), names, config); err != nil {
			return names, config, err
		}
	}
}

func readCpio(nr *newc.Reader, names []string, config []byte) ([]string, []byte, error) {
	for {
		h, err := nr.Next()
		if err == io.EOF {
			return names, config, nil
		}
		if err != nil {
			return names, config, err
		}
		names = append(names, h.Name)
		if h.Name == "config.ign" && h.IsRegular() {
			if config, err = io.ReadAll(nr); err != nil {
				return names, config, err
			}
		}
	}
}

type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// kargRegion is one boot config's kernel-argument region.
type kargRegion struct {
	Path string `json:"path"`
	Off  int64  `json:"off"`        // ISO offset of the kernel arguments
	Len  int64  `json:"len"`        // up to the COREOS_KARG_EMBED_AREA marker
	Free int64  `json:"free_bytes"` // '#' padding left
}

// kargState is an image's kernel arguments.
type kargState struct {
	Default  string       `json:"default"`
	Current  string       `json:"current"`
	Appended string       `json:"appended"` // Current after Default, if it starts with it
	Regions  []kargRegion `json:"regions,omitempty"`
	Problem  string       `json:"problem,omitempty"` // why they cannot be read or edited
}

// customized reports whether the kernel arguments differ from the defaults.
func (s kargState) customized() bool {
	return s.Problem == "" && strings.Join(strings.Fields(s.Current), " ") != strings.Join(strings.Fields(s.Default), " ")
}

// check returns the problem as an error.
func (s kargState) check() error {
	if s.Problem != "" {
		return fmt.Errorf("kernel arguments: %s", s.Problem)
	}
	return nil
}

// kargsJSON is the part of coreos/kargs.json that locates the regions.
type kargsJSON struct {
	Default string `json:"default"`
	Files   []struct {
		Path   string `json:"path"`
		Offset int64  `json:"offset"`
	} `json:"files"`
}

// readKargState reads the kernel arguments of f. An image whose kernel
// arguments cannot be told apart from the defaults has Problem set.
func readKargState(f *os.File, l *customize.Layout) (kargState, error) {
	var s kargState
	if len(l.KargAreas) == 0 {
		s.Problem = "the image has no kernel-argument area (" + l.KargsProblem + ")"
		return s, nil
	}
	a, ok := l.Files[customize.PathKargsJSON]
	if !ok {
		s.Problem = "the image has no " + customize.PathKargsJSON + ", so its default kernel arguments are unknown"
		return s, nil
	}
	if a.Len > maxConfigFile {
		s.Problem = fmt.Sprintf("%s is %d bytes, larger than expected", customize.PathKargsJSON, a.Len)
		return s, nil
	}
	b := make([]byte, a.Len)
	if _, err := f.ReadAt(b, a.Off); err != nil {
		return s, fmt.Errorf("reading %s: %w", customize.PathKargsJSON, err)
	}
	var kj kargsJSON
	if err := json.Unmarshal(b, &kj); err != nil {
		s.Problem = fmt.Sprintf("%s: %v", customize.PathKargsJSON, err)
		return s, nil
	}
	s.Default = strings.TrimSpace(kj.Default)
	first := ""
	for _, k := range l.KargAreas {
		r, text, problem, err := readKargRegion(f, l, kj, k)
		if err != nil {
			return s, err
		}
		if problem != "" {
			s.Problem = problem
			return s, nil
		}
		if len(s.Regions) == 0 {
			s.Current, first = text, k.Path
		} else if text != s.Current {
			s.Problem = fmt.Sprintf("%s holds %q, %s %q", first, s.Current, k.Path, text)
			return s, nil
		}
		s.Regions = append(s.Regions, r)
	}
	if rest, ok := strings.CutPrefix(s.Current, s.Default); ok && (rest == "" || rest[0] == ' ') {
		s.Appended = strings.TrimSpace(rest)
	}
	return s, nil
}

// readKargRegion reads the region of karg area k: from the offset
// kargs.json gives for its file to the end of the area (the marker).
func readKargRegion(f *os.File, l *customize.Layout, kj kargsJSON, k customize.KargArea) (r kargRegion, text, problem string, err error) {
	file := l.Files[k.Path] // ParseLayout checked it exists and holds k
	found := false
	var off int64
	for _, e := range kj.Files {
		if strings.TrimPrefix(path.Clean("/"+e.Path), "/") == k.Path {
			found, off = true, e.Offset
		}
	}
	end := k.Off + k.Len
	switch {
	case !found:
		return r, "", fmt.Sprintf("%s does not list %s", customize.PathKargsJSON, k.Path), nil
	case off < 0 || off > file.Len || file.Off+off >= end:
		return r, "", fmt.Sprintf("%s: offset %d of %s is not before its COREOS_KARG_EMBED_AREA", customize.PathKargsJSON, off, k.Path), nil
	case end-(file.Off+off) > maxKargRegion:
		return r, "", fmt.Sprintf("%s: the kernel-argument region of %s is %d bytes, larger than expected", customize.PathKargsJSON, k.Path, end-(file.Off+off)), nil
	}
	r = kargRegion{Path: k.Path, Off: file.Off + off, Len: end - (file.Off + off)}
	b := make([]byte, r.Len)
	if _, err := f.ReadAt(b, r.Off); err != nil {
		return r, "", "", fmt.Errorf("reading %s: %w", k.Path, err)
	}
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 || len(bytes.Trim(b[nl+1:], "#")) != 0 {
		return r, "", fmt.Sprintf("%s: the kernel-argument region is not arguments, newline and '#' padding", k.Path), nil
	}
	r.Free = r.Len - int64(nl) - 1
	return r, strings.TrimSpace(string(b[:nl])), "", nil
}

// formatKargs returns the content of region r holding kargs.
func formatKargs(r kargRegion, kargs string) ([]byte, error) {
	if int64(len(kargs))+1 > r.Len {
		return nil, fmt.Errorf("%w: kernel arguments are %d bytes, the area in %s holds %d", customize.ErrTooLarge, len(kargs)+1, r.Path, r.Len)
	}
	b := bytes.Repeat([]byte{'#'}, int(r.Len))
	copy(b, kargs+"\n")
	return b, nil
}

// freeTail returns how many bytes at the end of a are zero: the room left
// in an embed area.
func freeTail(f *os.File, a customize.Area) (int64, error) {
	buf := make([]byte, 64<<10)
	end := a.Off + a.Len
	for end > a.Off {
		n := min(int64(len(buf)), end-a.Off)
		b := buf[:n]
		if _, err := f.ReadAt(b, end-n); err != nil {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				return a.Off + a.Len - (end - n + int64(i) + 1), nil
			}
		}
		end -= n
	}
	return a.Len, nil
}
