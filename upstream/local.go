package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// LocalDir serves per-InfraEnv data from a directory, for standalone sites
// without assisted-service:
//
//	<Dir>/<image_id>.ign      the ignition (required)
//	<Dir>/<image_id>.kargs    optional: kernel arguments separated by whitespace
//	<Dir>/<image_id>.ramdisk  optional: raw ramdisk bytes for minimal ISO and PXE
//
// An image ID must match ^[0-9a-f-]{1,64}$ and have an .ign file, else every
// method answers StatusError 404. Credentials are ignored. The size limits
// of Client apply, so both sources fail alike on oversized data.
type LocalDir struct {
	Dir string
}

var _ Source = LocalDir{}

// SampleImageID is the image ID of the ignition EnsureSample writes.
const SampleImageID = "00000000-0000-0000-0000-000000000000"

// sampleIgnition is an Ignition 3.2 config that writes one small file.
const sampleIgnition = `{
  "ignition": {"version": "3.2.0"},
  "storage": {
    "files": [
      {
        "path": "/etc/isoedge-sample",
        "mode": 420,
        "contents": {"source": "data:,hello%20from%20isoedge"}
      }
    ]
  }
}
`

var localImageID = regexp.MustCompile(`^[0-9a-f-]{1,64}$`)

// Ignition implements Source. LastModified is the file's modification time
// in HTTP date format.
func (d LocalDir) Ignition(ctx context.Context, imageID, _ string, _ Credential) (Ignition, error) {
	if err := ctx.Err(); err != nil {
		return Ignition{}, err
	}
	if !localImageID.MatchString(imageID) {
		return Ignition{}, &StatusError{Op: opIgnition, Code: http.StatusNotFound}
	}
	data, info, err := readLimited(d.path(imageID, ".ign"), maxIgnitionSize)
	if errors.Is(err, fs.ErrNotExist) {
		return Ignition{}, &StatusError{Op: opIgnition, Code: http.StatusNotFound}
	}
	if err != nil {
		return Ignition{}, fmt.Errorf("upstream: local %s: %w", opIgnition, err)
	}
	return Ignition{Data: data, LastModified: info.ModTime().UTC().Format(http.TimeFormat)}, nil
}

// MinimalInitrd implements Source: the .ramdisk file, or nil when there is
// none. An empty file yields an empty Blob, like a 200 with no body. The
// bytes are read into memory, not accounted in a MemoryBudget: they are
// local and at most 64 MiB.
func (d LocalDir) MinimalInitrd(ctx context.Context, imageID string, _ Credential) (*Blob, error) {
	if err := d.check(ctx, opRamdisk, imageID); err != nil {
		return nil, err
	}
	data, _, err := readLimited(d.path(imageID, ".ramdisk"), maxRamdiskSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("upstream: local %s: %w", opRamdisk, err)
	}
	return BytesBlob(data), nil
}

// KernelArgs implements Source: the whitespace-separated words of the
// .kargs file, or nil when it is absent or blank.
func (d LocalDir) KernelArgs(ctx context.Context, imageID string, _ Credential) ([]string, error) {
	if err := d.check(ctx, opInfraEnv, imageID); err != nil {
		return nil, err
	}
	data, _, err := readLimited(d.path(imageID, ".kargs"), maxInfraEnvSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("upstream: local %s: %w", opInfraEnv, err)
	}
	kargs := strings.Fields(string(data))
	if len(kargs) == 0 {
		return nil, nil
	}
	return kargs, nil
}

// EnsureSample creates Dir if needed and, when it holds no *.ign file,
// writes a sample ignition named SampleImageID + ".ign" and returns its
// path. When an ignition is already there it writes nothing and returns "".
func (d LocalDir) EnsureSample() (string, error) {
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return "", fmt.Errorf("upstream: local: %w", err)
	}
	existing, err := filepath.Glob(filepath.Join(d.Dir, "*.ign"))
	if err != nil {
		return "", fmt.Errorf("upstream: local: %w", err)
	}
	if len(existing) > 0 {
		return "", nil
	}
	target := d.path(SampleImageID, ".ign")
	tmp, err := os.CreateTemp(d.Dir, ".sample-*.tmp")
	if err != nil {
		return "", fmt.Errorf("upstream: local: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.WriteString(sampleIgnition); err != nil {
		tmp.Close()
		return "", fmt.Errorf("upstream: local: write sample: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("upstream: local: write sample: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("upstream: local: write sample: %w", err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return "", fmt.Errorf("upstream: local: write sample: %w", err)
	}
	return target, nil
}

// check validates imageID and requires its ignition to exist, so every
// method agrees on which images exist.
func (d LocalDir) check(ctx context.Context, op, imageID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !localImageID.MatchString(imageID) {
		return &StatusError{Op: op, Code: http.StatusNotFound}
	}
	if _, err := os.Stat(d.path(imageID, ".ign")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &StatusError{Op: op, Code: http.StatusNotFound}
		}
		return fmt.Errorf("upstream: local %s: %w", op, err)
	}
	return nil
}

func (d LocalDir) path(imageID, ext string) string {
	return filepath.Join(d.Dir, imageID+ext)
}

// readLimited reads a regular file of at most limit bytes.
func readLimited(name string, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", name)
	}
	if info.Size() > limit {
		return nil, nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadResponse, filepath.Base(name), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(data)) > limit {
		return nil, nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadResponse, filepath.Base(name), limit)
	}
	return data, info, nil
}
