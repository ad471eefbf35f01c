package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/isoedge/isoedge/customize"
	"golang.org/x/sys/unix"
)

// target is where a command writes its result.
type target struct {
	path    string // the file to replace; "" for standard output
	inPlace bool   // path is the input itself
}

// outputFor returns the target of an -o value: "" replaces the input in
// place (through its symbolic links), "-" is standard output.
func outputFor(out, input string) (target, error) {
	switch out {
	case "-":
		return target{}, nil
	case "":
		p, err := filepath.EvalSymlinks(input)
		if err != nil {
			return target{}, err
		}
		return target{path: p, inPlace: true}, nil
	}
	return target{path: out}, nil
}

func (t target) String() string {
	if t.path == "" {
		return "standard output"
	}
	return t.path
}

// emit writes plan p, whose base bytes come from src, to t.
func emit(e *env, t target, src *os.File, p customize.Plan) (copyStats, error) {
	if t.path == "" {
		if err := checkNotTerminal(e.stdout); err != nil {
			return copyStats{}, err
		}
		if err := p.Validate(); err != nil {
			return copyStats{}, err
		}
		n, err := p.WriteTo(e.stdout, src)
		return copyStats{streamed: n}, err
	}
	var mode os.FileMode
	if t.inPlace {
		if st, err := src.Stat(); err == nil {
			mode = st.Mode().Perm()
		}
	}
	st, err := writePlanFile(t.path, src, p)
	if err == nil && t.inPlace && mode != 0 && mode != 0o644 {
		// CommitFile leaves 0644; an image changed in place keeps its mode.
		err = os.Chmod(t.path, mode)
	}
	return st, err
}

// emitBytes writes b to t (a file, atomically, or standard output).
func emitBytes(e *env, t target, b []byte) error {
	if t.path == "" {
		if err := checkNotTerminal(e.stdout); err != nil {
			return err
		}
		_, err := e.stdout.Write(b)
		return err
	}
	tmp, err := customize.CreateTempFor(t.path)
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := customize.CommitFile(tmp, t.path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// checkNotTerminal refuses to write an image to a terminal.
func checkNotTerminal(w io.Writer) error {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
		return errors.New("refusing to write binary data to a terminal; redirect standard output or use -o FILE")
	}
	return nil
}

// copyStats says how a plan's bytes reached the output.
type copyStats struct {
	zeroCopy int64 // base bytes copied by copy_file_range
	fallback int64 // base bytes copied through user space
	patched  int64 // patch bytes written from memory
	holes    int64 // zero bytes left as holes
	streamed int64 // bytes written to standard output
}

// writePlanFile writes p to path atomically: into a temporary file in the
// same directory, synced, then renamed over path.
func writePlanFile(path string, src *os.File, p customize.Plan) (st copyStats, err error) {
	tmp, err := customize.CreateTempFor(path)
	if err != nil {
		return st, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if st, err = writePlan(tmp, src, p); err != nil {
		return st, err
	}
	err = customize.CommitFile(tmp, path)
	return st, err
}

// writePlan writes p into dst, a new empty file, at explicit offsets: base
// extents with copy_file_range (the kernel copies, or shares, the blocks),
// patches from memory, zero segments left as holes.
func writePlan(dst, src *os.File, p customize.Plan) (copyStats, error) {
	if err := p.Validate(); err != nil {
		return copyStats{}, err
	}
	var st copyStats
	var pos int64
	for _, s := range p.Segs {
		switch s.Kind {
		case customize.FromData:
			if _, err := dst.WriteAt(s.Data[s.Off:s.Off+s.Len], pos); err != nil {
				return st, err
			}
			st.patched += s.Len
		case customize.FromZero:
			st.holes += s.Len
		case customize.FromBase:
			zc, fb, err := copyRange(dst, pos, src, s.Off, s.Len)
			st.zeroCopy += zc
			st.fallback += fb
			if err != nil {
				return st, err
			}
		}
		pos += s.Len
	}
	return st, dst.Truncate(p.Size)
}

const maxCopyChunk = 1 << 30

// copyFileRange is the system call; tests replace it to take the fallback.
var copyFileRange = unix.CopyFileRange

// copyRange copies n bytes of src at srcOff to dst at dstOff with
// copy_file_range, neither file's position moving. Where the kernel or
// file system cannot (ENOSYS, EXDEV, EOPNOTSUPP, …, or a silent 0 on
// kernels before 5.19) the rest is copied through user space.
func copyRange(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) (zeroCopy, fallback int64, err error) {
	defer runtime.KeepAlive(src)
	defer runtime.KeepAlive(dst)
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for n > 0 {
		c, err := copyFileRange(sfd, &srcOff, dfd, &dstOff, int(min(n, maxCopyChunk)), 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			switch err {
			case unix.ENOSYS, unix.EXDEV, unix.EINVAL, unix.EIO, unix.EOPNOTSUPP, unix.EPERM:
			default:
				return zeroCopy, 0, fmt.Errorf("copy_file_range: %w", err)
			}
		}
		if err != nil || c == 0 {
			break
		}
		zeroCopy += int64(c)
		n -= int64(c)
	}
	if n == 0 {
		return zeroCopy, 0, nil
	}
	fallback, err = io.Copy(io.NewOffsetWriter(dst, dstOff), io.NewSectionReader(src, srcOff, n))
	if err == nil && fallback != n {
		err = fmt.Errorf("copying the base image: %w after %d of %d bytes", io.ErrUnexpectedEOF, fallback, n)
	}
	return zeroCopy, fallback, err
}

// openFile opens a regular file for reading.
func openFile(p string) (*os.File, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", p)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openISO opens and parses a live ISO.
// withISO runs fn on the one ISO args names, opened and parsed, and closes
// it afterwards: the shape of every command that only reads an ISO.
func withISO(args []string, fn func(name string, f *os.File, l *customize.Layout) error) error {
	if err := argCount(args, 1, "one ISO"); err != nil {
		return err
	}
	f, l, err := openISO(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	return fn(args[0], f, l)
}

func openISO(p string) (*os.File, *customize.Layout, error) {
	f, err := openFile(p)
	if err != nil {
		return nil, nil, err
	}
	l, err := customize.ParseLayout(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return f, l, nil
}
