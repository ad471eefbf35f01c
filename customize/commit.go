package customize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CreateTempFor creates the temp file that CommitFile later makes path:
// hidden, in path's directory, so the final rename is atomic.
func CreateTempFor(path string) (*os.File, error) {
	return os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
}

// CommitFile makes a fully written temp file the file at path: fsync,
// mode 0644, rename over path, fsync of the directory. The temp file must
// be in path's directory, so the rename is atomic: readers see the old file
// or the new one, never a half-written one.
func CommitFile(tmp *os.File, path string) error {
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("customize: commit %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("customize: commit %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("customize: commit %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("customize: commit %s: %w", path, err)
	}
	// Persist the rename; a directory that cannot be synced is no error.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// trimToVolume truncates an ISO that go-diskfs wrote into a preallocated
// file of size bytes to the volume size its primary volume descriptor
// records.
func trimToVolume(f *os.File, size int64) error {
	var pvd [sectorSize]byte
	if _, err := f.ReadAt(pvd[:], 16*sectorSize); err != nil {
		return fmt.Errorf("customize: read primary volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return errors.New("customize: no primary volume descriptor in the written ISO")
	}
	blocks := int64(binary.LittleEndian.Uint32(pvd[80:84]))
	if blocks < 18 || blocks*sectorSize > size {
		return fmt.Errorf("customize: implausible volume size of %d blocks", blocks)
	}
	return f.Truncate(blocks * sectorSize)
}
