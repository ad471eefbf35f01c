package upstream

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// createUnlinked returns a read-write file in dir that has no name, so
// nothing is left behind whatever happens to the process (O_TMPFILE). File
// systems without O_TMPFILE get a named file removed at once.
func createUnlinked(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(unlinked ramdisk)")), nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return createRemoved(dir)
}
