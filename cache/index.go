package cache

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Index is the bbolt database at <root>/index.db. It records which blob is
// which base image and keeps opaque metadata per blob. It never holds blob
// bytes, and it is a cache: base records are also kept as files beside the
// blobs (see Store.Records), from which a lost index is rebuilt. Schema
// (every bucket but the per-kind ones is created at open):
//
//	v1/                                       bucket
//	├── info/                                 bucket
//	│   └── schema        → "1"               decimal schema version
//	├── bases/                                bucket
//	│   └── <type> 0x00 <version> 0x00 <arch> → BaseRecord as JSON
//	└── meta/                                 bucket
//	    └── <kind>/                           bucket, created on first PutMeta
//	        └── <64 hex digest>               → opaque bytes (owner: kind's package)
//
// Base keys are flat (NUL-separated) rather than nested buckets so a delete
// leaves no empty buckets behind and Bases is one cursor walk in
// type, version, arch order. PutBase takes records that pass
// ValidateRecord; lookups only need key parts that are non-empty and hold
// no NUL.
//
// Index is safe for concurrent use. bbolt locks the file exclusively, so
// only one process can open it; a second one fails after openTimeout.
//
// No bbolt panic escapes an Index method: bbolt panics (or faults on its
// memory map) when a page is not what it should be, and each method
// recovers that into an error wrapping ErrIndexCorrupt. From then on the
// Index refuses every call with ErrIndexCorrupt; the caller closes it and
// calls OpenIndex again, which checks the file and replaces it if it is
// damaged. Values that do not decode are reported the same way, without
// that refusal.
type Index struct {
	db     *bolt.DB
	path   string
	root   string      // directory of path: records/ lives there
	broken atomic.Bool // a panic was recovered; bbolt may hold locks
}

// BaseKey names a base image.
type BaseKey struct {
	Type    string // image type, such as "full-iso" or "minimal-iso"
	Version string // RHCOS version
	Arch    string // CPU architecture, such as "x86_64"
}

func (k BaseKey) String() string {
	return k.Type + "/" + k.Version + "/" + k.Arch
}

// BaseRecord says which blob holds a base image and where it came from.
type BaseRecord struct {
	Key              BaseKey   `json:"key"`
	Digest           Digest    `json:"digest"`
	Size             int64     `json:"size"`
	URL              string    `json:"url"` // as configured; callers never put credentials here
	OpenshiftVersion string    `json:"openshift_version"`
	FetchedAt        time.Time `json:"fetched_at"`
}

const (
	schemaVersion = "1"
	openTimeout   = 2 * time.Second
	// closeTimeout bounds Close after a recovered panic, which may have
	// left bbolt's internal locks held.
	closeTimeout = 5 * time.Second
)

// Bucket and key names. No other file spells them.
var (
	bucketV1    = []byte("v1")
	bucketInfo  = []byte("info")
	bucketBases = []byte("bases")
	bucketMeta  = []byte("meta")
	keySchema   = []byte("schema")
)

// derivedKindPrefix starts the meta kinds whose values are digests
// (derived.go).
const derivedKindPrefix = "derived-"

// initSchema creates every fixed bucket of an empty file, or checks them
// and the version; a *schemaError means the file is not a usable index.
func initSchema(tx *bolt.Tx) error {
	if tx.Bucket(bucketV1) == nil {
		err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			return &schemaError{fmt.Errorf("holds bucket %q but no v1", truncate(string(name)))}
		})
		if err != nil {
			return err
		}
		v1, err := tx.CreateBucket(bucketV1)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketInfo, bucketBases, bucketMeta} {
			if _, err := v1.CreateBucket(name); err != nil {
				return err
			}
		}
		return v1.Bucket(bucketInfo).Put(keySchema, []byte(schemaVersion))
	}
	if err := checkSchema(tx); err != nil {
		return &schemaError{err}
	}
	return nil
}

// checkSchema checks the fixed buckets and the version of a file that has
// the v1 bucket.
func checkSchema(tx *bolt.Tx) error {
	v1 := tx.Bucket(bucketV1)
	for _, name := range [][]byte{bucketInfo, bucketBases, bucketMeta} {
		if v1.Bucket(name) == nil {
			return fmt.Errorf("bucket v1/%s missing", name)
		}
	}
	if got := v1.Bucket(bucketInfo).Get(keySchema); string(got) != schemaVersion {
		return fmt.Errorf("schema version %q, this build reads %q", truncate(string(got)), schemaVersion)
	}
	return nil
}

// Close releases the database and its file lock. After a recovered panic
// it waits at most closeTimeout; if bbolt is still stuck then, the file is
// moved aside (as OpenIndex would) so that the next OpenIndex starts afresh,
// and the error says so.
func (ix *Index) Close() error {
	err := ix.closeDB()
	if errors.Is(err, errCloseStuck) {
		aside, merr := moveIndexAside(ix.path)
		if merr != nil {
			return fmt.Errorf("cache: close index: %w: %w; moving it aside: %w", ErrIndexCorrupt, err, merr)
		}
		return fmt.Errorf("cache: close index: %w: %w; moved it to %s", ErrIndexCorrupt, err, aside)
	}
	if err != nil {
		return fmt.Errorf("cache: close index: %w", err)
	}
	return nil
}

// view runs fn in a read transaction under guard.
func (ix *Index) view(op string, fn func(*bolt.Tx) error) error {
	return ix.guard(op, func() error { return ix.db.View(fn) })
}

// update runs fn in a write transaction under guard.
func (ix *Index) update(op string, fn func(*bolt.Tx) error) error {
	return ix.guard(op, func() error { return ix.db.Update(fn) })
}

// guard runs fn unless the Index is broken, turning a panic into an error
// wrapping ErrIndexCorrupt and marking the Index broken.
func (ix *Index) guard(op string, fn func() error) error {
	if ix.broken.Load() {
		return fmt.Errorf("cache: %s: %w: an earlier call failed; close and reopen the index", op, ErrIndexCorrupt)
	}
	p, err := protect(fn)
	if p != nil {
		ix.broken.Store(true)
		return fmt.Errorf("cache: %s: %w: bbolt: %v", op, ErrIndexCorrupt, clip(fmt.Sprint(p), maxReason))
	}
	return err
}

// protect runs fn and returns what it panicked with, if it did. Faults on
// bbolt's memory map (a page beyond the end of a truncated file) panic
// too, as debug.SetPanicOnFault documents for memory-mapped files, instead
// of crashing the process.
func protect(fn func() error) (panicked any, err error) {
	prev := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(prev)
		if p := recover(); p != nil {
			panicked, err = p, nil
		}
	}()
	return nil, fn()
}

// corruptf reports a value in the index that does not decode.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("cache: "+format+": %w", append(args, ErrIndexCorrupt)...)
}

func basesBucket(tx *bolt.Tx) *bolt.Bucket {
	return tx.Bucket(bucketV1).Bucket(bucketBases)
}

func metaBucket(tx *bolt.Tx) *bolt.Bucket {
	return tx.Bucket(bucketV1).Bucket(bucketMeta)
}

// baseKeyRaw encodes k as type NUL version NUL arch, unchecked.
func baseKeyRaw(k BaseKey) []byte {
	return []byte(k.Type + "\x00" + k.Version + "\x00" + k.Arch)
}

// baseKeyBytes encodes k as type NUL version NUL arch.
func baseKeyBytes(k BaseKey) ([]byte, error) {
	for _, part := range []string{k.Type, k.Version, k.Arch} {
		if part == "" || strings.IndexByte(part, 0) >= 0 {
			return nil, fmt.Errorf("cache: invalid base key %q: parts must be non-empty and contain no NUL", truncate(k.String()))
		}
	}
	return baseKeyRaw(k), nil
}

// decodeBase decodes and validates a bases value stored under key.
func decodeBase(key, v []byte) (BaseRecord, error) {
	var r BaseRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return BaseRecord{}, corruptf("base %q: decode: %v", truncate(string(key)), err)
	}
	if err := ValidateRecord(r); err != nil {
		return BaseRecord{}, corruptf("base %q: %v", truncate(string(key)), err)
	}
	if !bytes.Equal(baseKeyRaw(r.Key), key) {
		return BaseRecord{}, corruptf("base %q: holds the record of %s", truncate(string(key)), truncate(r.Key.String()))
	}
	return r, nil
}

// Base returns the record for k, or an error wrapping ErrNotFound.
func (ix *Index) Base(k BaseKey) (BaseRecord, error) {
	key, err := baseKeyBytes(k)
	if err != nil {
		return BaseRecord{}, err
	}
	var r BaseRecord
	err = ix.view("base", func(tx *bolt.Tx) error {
		v := basesBucket(tx).Get(key)
		if v == nil {
			return fmt.Errorf("cache: base %s: %w", k, ErrNotFound)
		}
		// Decoding copies, so r does not point into the transaction.
		r, err = decodeBase(key, v)
		return err
	})
	return r, err
}

// PutBase stores r under r.Key, replacing any previous record: first its
// record file beside the blobs, durably, then the index entry. Call it only
// after r's blob is committed. r must pass ValidateRecord.
func (ix *Index) PutBase(r BaseRecord) error {
	key, err := baseKeyBytes(r.Key)
	if err != nil {
		return err
	}
	if err := ValidateRecord(r); err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("cache: put base %s: %w", r.Key, err)
	}
	if err := writeRecord(ix.root, r); err != nil {
		return err
	}
	err = ix.update("put base", func(tx *bolt.Tx) error {
		return basesBucket(tx).Put(key, v)
	})
	if err != nil {
		return fmt.Errorf("cache: put base %s: %w", r.Key, err)
	}
	return nil
}

// DeleteBase removes the index entry for k, then its record file; deleting
// a missing record is not an error. The caller removes the blob after it.
func (ix *Index) DeleteBase(k BaseKey) error {
	key, err := baseKeyBytes(k)
	if err != nil {
		return err
	}
	err = ix.update("delete base", func(tx *bolt.Tx) error {
		return basesBucket(tx).Delete(key)
	})
	if err != nil {
		return fmt.Errorf("cache: delete base %s: %w", k, err)
	}
	return removeRecord(ix.root, k)
}

// Bases returns every base record, ordered by type, version, arch.
func (ix *Index) Bases() ([]BaseRecord, error) {
	var out []BaseRecord
	err := ix.view("bases", func(tx *bolt.Tx) error {
		return basesBucket(tx).ForEach(func(k, v []byte) error {
			r, err := decodeBase(k, v)
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func checkKind(kind string) error {
	if kind == "" {
		return errors.New("cache: empty meta kind")
	}
	return nil
}

// Meta returns a copy of the bytes stored for (kind, d), or an error
// wrapping ErrNotFound.
func (ix *Index) Meta(kind string, d Digest) ([]byte, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	var out []byte
	err := ix.view("meta", func(tx *bolt.Tx) error {
		b := metaBucket(tx).Bucket([]byte(kind))
		if b == nil {
			return fmt.Errorf("cache: meta %s %s: %w", kind, d, ErrNotFound)
		}
		// Seek rather than Get: Get cannot tell an empty value from a
		// missing one.
		key := []byte(d.Hex())
		k, v := b.Cursor().Seek(key)
		if !bytes.Equal(k, key) {
			return fmt.Errorf("cache: meta %s %s: %w", kind, d, ErrNotFound)
		}
		// v lives in the mmap only until the transaction ends.
		out = append(make([]byte, 0, len(v)), v...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutMeta stores b for (kind, d), replacing any previous value.
func (ix *Index) PutMeta(kind string, d Digest, b []byte) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	err := ix.update("put meta", func(tx *bolt.Tx) error {
		kb, err := metaBucket(tx).CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		return kb.Put([]byte(d.Hex()), b)
	})
	if err != nil {
		return fmt.Errorf("cache: put meta %s %s: %w", kind, d, err)
	}
	return nil
}

// DeleteMeta removes the value for (kind, d); deleting a missing value is
// not an error.
func (ix *Index) DeleteMeta(kind string, d Digest) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	err := ix.update("delete meta", func(tx *bolt.Tx) error {
		kb := metaBucket(tx).Bucket([]byte(kind))
		if kb == nil {
			return nil
		}
		return kb.Delete([]byte(d.Hex()))
	})
	if err != nil {
		return fmt.Errorf("cache: delete meta %s %s: %w", kind, d, err)
	}
	return nil
}

// metaKey parses a meta key (64 lowercase hex).
func metaKey(kind, k []byte) (Digest, error) {
	var d Digest
	if len(k) != hex.EncodedLen(len(d)) || !isLowerHex(string(k)) {
		return Digest{}, corruptf("meta %q: bad key %q", truncate(string(kind)), truncate(string(k)))
	}
	hex.Decode(d[:], k)
	return d, nil
}

// Referenced returns every digest named by a base record or a meta key in
// the index, for use as Store.Sweep's keep function (Sweep adds the
// record files itself). A record or key that does not decode is an error
// wrapping ErrIndexCorrupt, not a skip: sweeping on a misread index could
// delete blobs that are still needed.
func (ix *Index) Referenced() (map[Digest]bool, error) {
	refs := make(map[Digest]bool)
	err := ix.view("referenced", func(tx *bolt.Tx) error {
		err := basesBucket(tx).ForEach(func(k, v []byte) error {
			r, err := decodeBase(k, v)
			if err != nil {
				return err
			}
			refs[r.Digest] = true
			return nil
		})
		if err != nil {
			return err
		}
		meta := metaBucket(tx)
		return meta.ForEachBucket(func(kind []byte) error {
			return meta.Bucket(kind).ForEach(func(k, _ []byte) error {
				d, err := metaKey(kind, k)
				if err != nil {
					return err
				}
				refs[d] = true
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cache: referenced: %w", err)
	}
	return refs, nil
}

// backfillRecords writes the record file of every index entry that has
// none (an index from a build without records), so that every entry has a
// record. It never overwrites a record: one that differs from its entry is
// newer (PutBase writes the record first) and the caller rebuilds from it.
func (ix *Index) backfillRecords() (int, error) {
	bases, err := ix.Bases()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range bases {
		ok, err := hasRecord(ix.root, r.Key)
		if err != nil {
			return n, err
		}
		if ok {
			continue
		}
		if err := writeRecord(ix.root, r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
