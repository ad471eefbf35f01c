package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Checking an index file before trusting it.
//
// bbolt trusts its file: a damaged page makes it panic, which can be
// recovered, but it can also make it fault in a goroutine of its own (tx.Check
// runs one), recurse or loop without end over a page that points back at
// itself, or allocate what a garbage count asks for. None of that can be
// recovered in-process. So OpenIndex copies the locked file into memory (a
// memfd) and checks the copy in a child process: this same executable,
// started with checkEnvVar set, which the init function below turns into a
// checker before main runs. The child has a time limit, a memory limit and
// a small stack limit, so every way bbolt can fail on a bad file ends the
// child, and the parent reads that as "unusable".
//
// If the executable cannot be started, the check runs in-process with
// panics recovered and the same time limit; only then could a
// pathological file still take the process down.

const (
	// checkEnvVar makes this executable check the index copy open as the
	// file descriptor it names, and exit. Internal: set only by
	// checkInChild.
	checkEnvVar = "ISOEDGE_INTERNAL_CHECK_INDEX_FD"
	// checkChildFD is the copy's descriptor in the child: the first of
	// exec.Cmd.ExtraFiles.
	checkChildFD = 3
	// checkBanner is the child's first line of output, proving it is a
	// checker and not, say, a server that ignored checkEnvVar.
	checkBanner = "isoedge index check v1"
	checkOK     = "ok"
	// checkExitUnusable is the child's exit status for an unusable file.
	checkExitUnusable = 3
	// checkMaxStack and checkMaxMemory bound the child, so that endless
	// recursion or allocation ends it quickly.
	checkMaxStack  = 64 << 20
	checkMaxMemory = 512 << 20
	// maxIndexBytes bounds the file that is checked at all, and so the
	// memory its copy takes. A real index holds a few records and layouts:
	// kilobytes to megabytes.
	maxIndexBytes = 256 << 20
	// maxCheckErrors bounds the consistency errors named in a reason.
	maxCheckErrors = 3
	// maxReason bounds the length of a reason.
	maxReason = 400
)

// indexCheckTimeout bounds one check; a variable so tests can shorten it.
var indexCheckTimeout = 30 * time.Second

// checkExecutable returns the executable to run as the checker; a variable
// so tests can exercise the in-process fallback.
var checkExecutable = os.Executable

func init() {
	if v := os.Getenv(checkEnvVar); v != "" {
		os.Exit(runCheckProcess(v))
	}
}

// checkIndexFile checks the locked index file f, whose directory is dir,
// and returns why it is unusable, or "". err reports failures that say
// nothing about the file (no memory or room for the copy).
func checkIndexFile(f *os.File, dir string) (reason string, err error) {
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	switch {
	case fi.Size() == 0:
		return "empty file", nil
	case fi.Size() > maxIndexBytes:
		return fmt.Sprintf("%d bytes, more than an index ever holds (%d)", fi.Size(), maxIndexBytes), nil
	}
	cp, err := scratchFile(dir)
	if err != nil {
		return "", err
	}
	defer cp.Close()
	_, err = io.Copy(cp, readErrReader{io.NewSectionReader(f, 0, fi.Size())})
	if re := (*readError)(nil); errors.As(err, &re) {
		return "unreadable: " + re.err.Error(), nil
	}
	if err != nil {
		return "", err
	}
	if reason, ran := checkInChild(cp); ran {
		return reason, nil
	}
	return checkInProcess(cp)
}

// scratchFile returns an anonymous file for the copy: a memfd, so that
// checking needs no disk space and leaves nothing behind; or, where memfds
// are not available, a temp file in dir unlinked at once (Sweep removes one
// a crash left before the unlink).
func scratchFile(dir string) (*os.File, error) {
	if fd, err := unix.MemfdCreate("isoedge-index-check", unix.MFD_CLOEXEC); err == nil {
		return os.NewFile(uintptr(fd), "index copy"), nil
	}
	f, err := os.CreateTemp(dir, checkCopyPattern)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readError marks an error reading the index, as opposed to writing the
// copy.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }

type readErrReader struct{ r io.Reader }

func (r readErrReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// checkInChild checks the copy cp in a child process. ran is false when no
// checker could be started; then reason means nothing.
func checkInChild(cp *os.File) (reason string, ran bool) {
	exe, err := checkExecutable()
	if err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), indexCheckTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(envWithout(os.Environ(), checkEnvVar), fmt.Sprintf("%s=%d", checkEnvVar, checkChildFD))
	cmd.ExtraFiles = []*os.File{cp}
	out, errOut := &headBuffer{max: 4 << 10}, &headBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	lines := strings.SplitN(out.String(), "\n", 3)
	if lines[0] != checkBanner {
		return "", false // not a checker, or one that never got going
	}
	second := ""
	if len(lines) > 1 {
		second = lines[1]
	}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return fmt.Sprintf("checking it took longer than %v", indexCheckTimeout), true
	case err == nil && second == checkOK:
		return "", true
	case errors.As(err, &ee) && ee.ExitCode() == checkExitUnusable && second != "":
		return second, true
	default:
		// Crashed: a runtime fatal error (fault, stack or memory
		// exhausted) on the file. Its first stderr line says which.
		msg, _, _ := strings.Cut(strings.TrimSpace(errOut.String()), "\n")
		if msg == "" {
			msg = fmt.Sprint(err)
		}
		return "checking it crashed: " + clip(msg, maxReason), true
	}
}

// checkInProcess is the fallback when no child can be started. A check
// that does not finish in time is abandoned (its goroutine stays).
func checkInProcess(cp *os.File) (string, error) {
	// bbolt closes the file it is given; give it its own descriptor.
	fd, err := unix.FcntlInt(cp.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("dup: %w", err)
	}
	own := os.NewFile(uintptr(fd), cp.Name())
	done := make(chan string, 1)
	go func() { done <- checkIndexCopy(own) }()
	t := time.NewTimer(indexCheckTimeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r, nil
	case <-t.C:
		return fmt.Sprintf("checking it took longer than %v", indexCheckTimeout), nil
	}
}

// runCheckProcess is the child: it checks the copy open as descriptor fd,
// prints the banner and the outcome, and returns the exit status.
func runCheckProcess(fd string) int {
	debug.SetMaxStack(checkMaxStack)
	fmt.Fprintln(os.Stdout, checkBanner)
	if fd != strconv.Itoa(checkChildFD) {
		fmt.Fprintf(os.Stdout, "unexpected descriptor %q\n", clip(fd, 20))
		return 1
	}
	go exitOnMemory(checkMaxMemory)
	if reason := checkIndexCopy(os.NewFile(checkChildFD, "index copy")); reason != "" {
		fmt.Fprintln(os.Stdout, oneLine(reason))
		return checkExitUnusable
	}
	fmt.Fprintln(os.Stdout, checkOK)
	return 0
}

// exitOnMemory ends the child once the Go runtime holds more than limit
// bytes: bbolt following a page cycle grows a slice without end.
func exitOnMemory(limit uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		metrics.Read(s)
		if s[0].Value.Kind() == metrics.KindUint64 && s[0].Value.Uint64() > limit {
			fmt.Fprintf(os.Stdout, "checking it needed more than %d MiB\n", limit>>20)
			os.Exit(checkExitUnusable)
		}
	}
}

// checkIndexCopy opens the copy cp read-only and returns why it is not a
// usable index, or "". bbolt panics are recovered into reasons. bbolt
// closes cp.
func checkIndexCopy(cp *os.File) string {
	var db *bolt.DB
	p, err := protect(func() error {
		var err error
		db, err = bolt.Open(cp.Name(), 0o400, &bolt.Options{
			ReadOnly: true,
			Timeout:  openTimeout,
			OpenFile: func(string, int, os.FileMode) (*os.File, error) { return cp, nil },
		})
		return err
	})
	if p != nil {
		return fmt.Sprintf("bbolt panicked opening it: %v", clip(fmt.Sprint(p), maxReason))
	}
	if err != nil {
		return "bbolt cannot open it: " + err.Error()
	}
	defer protect(db.Close)
	p, err = protect(func() error { return db.View(checkTx) })
	if p != nil {
		return fmt.Sprintf("bbolt panicked reading it: %v", clip(fmt.Sprint(p), maxReason))
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// checkTx reads everything in the index, then runs bbolt's consistency
// check. Reading first matters in-process: it runs on a goroutine where a
// fault on the memory map panics, while Check's own goroutine would crash.
func checkTx(tx *bolt.Tx) error {
	if err := checkContents(tx); err != nil {
		return err
	}
	var errs []error
	for err := range tx.Check() { // drain: Check's goroutine sends until done
		if len(errs) < maxCheckErrors {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("bbolt consistency check: %w", errors.Join(errs...))
	}
	return nil
}

// checkContents checks the schema and decodes every value the package
// owns; opaque meta values are read through, so every page is touched.
func checkContents(tx *bolt.Tx) error {
	if tx.Bucket(bucketV1) == nil {
		// Empty, as bbolt creates a file, before the schema was written:
		// usable, OpenIndex writes the schema. Anything else is not ours.
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			return fmt.Errorf("holds bucket %q but no v1", truncate(string(name)))
		})
	}
	if err := checkSchema(tx); err != nil {
		return err
	}
	err := basesBucket(tx).ForEach(func(k, v []byte) error {
		if v == nil {
			return fmt.Errorf("bases: %q is a bucket", truncate(string(k)))
		}
		_, err := decodeBase(k, v)
		return err
	})
	if err != nil {
		return err
	}
	meta := metaBucket(tx)
	var sum uint32
	err = meta.ForEach(func(kind, v []byte) error {
		kb := meta.Bucket(kind)
		if v != nil || kb == nil {
			return fmt.Errorf("meta: %q is not a bucket", truncate(string(kind)))
		}
		derived := bytes.HasPrefix(kind, []byte(derivedKindPrefix))
		return kb.ForEach(func(k, v []byte) error {
			if _, err := metaKey(kind, k); err != nil {
				return err
			}
			if v == nil {
				return fmt.Errorf("meta %q: %q is a bucket", truncate(string(kind)), k)
			}
			if derived {
				if _, err := ParseDigest(string(v)); err != nil {
					return fmt.Errorf("meta %q: %s: %w", truncate(string(kind)), k, err)
				}
			}
			sum ^= crc32.ChecksumIEEE(v)
			return nil
		})
	})
	_ = sum // only read to touch every page of opaque values
	return err
}

// headBuffer keeps the first max bytes written to it and drops the rest.
type headBuffer struct {
	bytes.Buffer
	max int
}

func (b *headBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// envWithout returns env without entries for key.
func envWithout(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// oneLine flattens s for the one-line protocol with the parent.
func oneLine(s string) string {
	return clip(strings.NewReplacer("\n", " ", "\r", " ").Replace(s), maxReason)
}
