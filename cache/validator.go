package cache

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// MaxValidatorLen bounds a validator (an ETag or Last-Modified value).
const MaxValidatorLen = 1 << 10

// A resumable download may only continue if the source still serves the
// bytes it started with. HTTP says so with a validator (ETag or
// Last-Modified) sent back in If-Range, so the partial keeps the validator
// of its source in a sidecar file (see paths.go). The sidecar is written
// atomically and fsync'ed, so after a SIGKILL a partial either has the
// validator its bytes came with, or none, and then must start over.

// Validator returns the validator stored with a resumed download: "" for
// none, for a fresh or empty partial, or for a Writer from Create. The
// caller resumes only when Size() > 0 and Validator() != ""; otherwise it
// calls Reset and downloads from the start.
func (w *Writer) Validator() string { return w.validator }

// SetValidator records v (at most MaxValidatorLen bytes, opaque) as the
// validator of the source being written; for a resumable download durably,
// before SetValidator returns, so a crash keeps it with the partial. It may
// set a validator only while no bytes are written, or repeat the stored
// one: bytes from one version of a source must not be continued with
// another, so a changed source means Reset first. "" removes the
// validator.
func (w *Writer) SetValidator(v string) error {
	if w.done {
		return errWriterDone
	}
	if len(v) > MaxValidatorLen {
		return fmt.Errorf("cache: set validator: %d bytes, at most %d", len(v), MaxValidatorLen)
	}
	if v == w.validator {
		return nil
	}
	if v == "" {
		if err := w.clearValidator(); err != nil {
			return fmt.Errorf("cache: set validator: %w", err)
		}
		return nil
	}
	if w.size > 0 {
		return fmt.Errorf("cache: set validator: %d bytes were written under another validator; Reset first", w.size)
	}
	if w.resumable {
		p := validatorPath(w.s.root, w.key)
		if err := writeFileAtomic(filepath.Dir(p), filepath.Base(p), []byte(v)); err != nil {
			return fmt.Errorf("cache: set validator: %w", err)
		}
	}
	w.validator = v
	return nil
}

// clearValidator forgets the validator, on disk first.
func (w *Writer) clearValidator() error {
	if w.resumable {
		if err := removeValidator(w.s.root, w.key); err != nil {
			return err
		}
	}
	w.validator = ""
	return nil
}

// readValidator returns the validator stored for key's partial, or "". A
// sidecar that is too long is not one this package wrote: it is removed and
// the partial treated as having none.
func readValidator(root string, key Digest) (string, error) {
	f, err := os.Open(validatorPath(root, key))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxValidatorLen+1))
	if err != nil {
		return "", err
	}
	if len(b) > MaxValidatorLen {
		return "", removeValidator(root, key)
	}
	return string(b), nil
}

// removeValidator deletes key's validator sidecar durably; a missing one
// is not an error.
func removeValidator(root string, key Digest) error {
	err := os.Remove(validatorPath(root, key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(blobsDir(root))
}
