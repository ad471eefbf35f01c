package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// DefaultSpillThreshold is the size above which a ramdisk is spilled to a
// file even when the memory budget would hold it.
const DefaultSpillThreshold int64 = 1 << 20

// spool reads ramdisks into Blobs. With a budget, a body of at most
// threshold bytes is kept in memory when the budget has room for it, and
// anything else goes to an unlinked file in dir; memory use is then bounded
// by the budget (plus one probe byte per read). Without a budget every body
// is kept in memory, unaccounted.
type spool struct {
	budget    *MemoryBudget
	dir       string
	threshold int64
}

// sourceError marks a failure to read the body, as opposed to a failure to
// spill it, so the caller can report assisted-service rather than the disk.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// sourceReader tags every read error but io.EOF as a sourceError.
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// errBodyTooLarge is wrapped in ErrBadResponse by read.
var errBodyTooLarge = errors.New("body too large")

// read reads r, whose length is declared (-1 when unknown) and must not
// exceed limit. Read errors come back as *sourceError, an oversized body as
// errBodyTooLarge.
func (s spool) read(r io.Reader, declared, limit int64) (*Blob, error) {
	r = sourceReader{r}
	if declared > limit {
		return nil, errBodyTooLarge
	}
	if s.budget == nil {
		data, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > limit {
			return nil, errBodyTooLarge
		}
		return BytesBlob(data), nil
	}
	if declared > s.threshold {
		return s.spill(r, limit)
	}
	want := s.threshold
	if declared >= 0 {
		want = declared
	}
	if !s.budget.Acquire(want) {
		return s.spill(r, limit)
	}
	buf := make([]byte, want)
	n, err := io.ReadFull(r, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return s.inMemory(buf[:n], want), nil
	}
	if err != nil {
		s.budget.Release(want)
		return nil, err
	}
	// buf is full: one more byte tells whether the body goes on.
	var probe [1]byte
	k, err := io.ReadFull(r, probe[:])
	if k == 0 && err == io.EOF {
		return s.inMemory(buf, want), nil
	}
	if k == 0 {
		s.budget.Release(want)
		return nil, err
	}
	blob, err := s.spill(io.MultiReader(bytes.NewReader(buf), bytes.NewReader(probe[:k]), r), limit)
	s.budget.Release(want)
	return blob, err
}

// inMemory keeps data, for which held bytes were acquired, and gives back
// what it does not need. A short body is copied out of a large buffer so
// the memory really held matches what is accounted.
func (s spool) inMemory(data []byte, held int64) *Blob {
	n := int64(len(data))
	if n < held {
		data = slices.Clone(data)
		s.budget.Release(held - n)
	}
	if data == nil {
		data = []byte{}
	}
	return &Blob{data: data, size: n, budget: s.budget, held: n}
}

// spill copies r into an unlinked file in s.dir. No fsync: the file only
// lives as long as its descriptor.
func (s spool) spill(r io.Reader, limit int64) (*Blob, error) {
	f, err := createUnlinked(s.dir)
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	switch {
	case err != nil:
		f.Close()
		var se *sourceError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, fmt.Errorf("spill: %w", err)
	case n > limit:
		f.Close()
		return nil, errBodyTooLarge
	}
	return &Blob{file: f, size: n}, nil
}

// createRemoved creates a temporary file in dir and removes its name at
// once; only a crash between the two leaves a ".ramdisk-*" file behind.
func createRemoved(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".ramdisk-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
