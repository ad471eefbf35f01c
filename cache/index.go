package cache

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Index is the bbolt database at <root>/index.db. It records which blob is
// which base image and keeps opaque metadata per blob. It never holds blob
// bytes. Schema (every bucket but the per-kind ones is created at open):
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
// type, version, arch order. Key parts may not be empty or contain NUL.
//
// Index is safe for concurrent use. bbolt locks the file exclusively, so
// only one process can open it; a second one fails after openTimeout.
type Index struct {
	db *bolt.DB
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
)

// Bucket and key names. No other file spells them.
var (
	bucketV1    = []byte("v1")
	bucketInfo  = []byte("info")
	bucketBases = []byte("bases")
	bucketMeta  = []byte("meta")
	keySchema   = []byte("schema")
)

// OpenIndex opens or creates the index at path, creates the fixed buckets
// and checks the schema version. If another process holds the file, it
// fails after about two seconds instead of waiting forever.
func OpenIndex(path string) (*Index, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("cache: open index %s: locked by another process: %w", path, err)
		}
		return nil, fmt.Errorf("cache: open index %s: %w", path, err)
	}
	if err := db.Update(initSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("cache: open index %s: %w", path, err)
	}
	return &Index{db: db}, nil
}

// initSchema creates every fixed bucket and writes or checks the version.
func initSchema(tx *bolt.Tx) error {
	v1, err := tx.CreateBucketIfNotExists(bucketV1)
	if err != nil {
		return err
	}
	for _, name := range [][]byte{bucketInfo, bucketBases, bucketMeta} {
		if _, err := v1.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	info := v1.Bucket(bucketInfo)
	switch got := info.Get(keySchema); {
	case got == nil:
		return info.Put(keySchema, []byte(schemaVersion))
	case string(got) != schemaVersion:
		return fmt.Errorf("schema version %q, this build reads %q", got, schemaVersion)
	}
	return nil
}

// Close releases the database and its file lock.
func (ix *Index) Close() error {
	if err := ix.db.Close(); err != nil {
		return fmt.Errorf("cache: close index: %w", err)
	}
	return nil
}

func basesBucket(tx *bolt.Tx) *bolt.Bucket {
	return tx.Bucket(bucketV1).Bucket(bucketBases)
}

func metaBucket(tx *bolt.Tx) *bolt.Bucket {
	return tx.Bucket(bucketV1).Bucket(bucketMeta)
}

// baseKeyBytes encodes k as type NUL version NUL arch.
func baseKeyBytes(k BaseKey) ([]byte, error) {
	for _, part := range []string{k.Type, k.Version, k.Arch} {
		if part == "" || strings.IndexByte(part, 0) >= 0 {
			return nil, fmt.Errorf("cache: invalid base key %q: parts must be non-empty and contain no NUL", k.String())
		}
	}
	return []byte(k.Type + "\x00" + k.Version + "\x00" + k.Arch), nil
}

// Base returns the record for k, or an error wrapping ErrNotFound.
func (ix *Index) Base(k BaseKey) (BaseRecord, error) {
	key, err := baseKeyBytes(k)
	if err != nil {
		return BaseRecord{}, err
	}
	var r BaseRecord
	err = ix.db.View(func(tx *bolt.Tx) error {
		v := basesBucket(tx).Get(key)
		if v == nil {
			return fmt.Errorf("cache: base %s: %w", k, ErrNotFound)
		}
		// Unmarshal copies, so r does not point into the transaction.
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("cache: base %s: decode: %w", k, err)
		}
		return nil
	})
	return r, err
}

// PutBase stores r under r.Key, replacing any previous record.
func (ix *Index) PutBase(r BaseRecord) error {
	key, err := baseKeyBytes(r.Key)
	if err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("cache: put base %s: %w", r.Key, err)
	}
	err = ix.db.Update(func(tx *bolt.Tx) error {
		return basesBucket(tx).Put(key, v)
	})
	if err != nil {
		return fmt.Errorf("cache: put base %s: %w", r.Key, err)
	}
	return nil
}

// DeleteBase removes the record for k; deleting a missing record is not an
// error.
func (ix *Index) DeleteBase(k BaseKey) error {
	key, err := baseKeyBytes(k)
	if err != nil {
		return err
	}
	err = ix.db.Update(func(tx *bolt.Tx) error {
		return basesBucket(tx).Delete(key)
	})
	if err != nil {
		return fmt.Errorf("cache: delete base %s: %w", k, err)
	}
	return nil
}

// Bases returns every base record, ordered by type, version, arch.
func (ix *Index) Bases() ([]BaseRecord, error) {
	var out []BaseRecord
	err := ix.db.View(func(tx *bolt.Tx) error {
		return basesBucket(tx).ForEach(func(k, v []byte) error {
			var r BaseRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("cache: bases: decode %q: %w", k, err)
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
	err := ix.db.View(func(tx *bolt.Tx) error {
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
	err := ix.db.Update(func(tx *bolt.Tx) error {
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
	err := ix.db.Update(func(tx *bolt.Tx) error {
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

// Referenced returns every digest named by a base record or a meta key,
// for use as Store.Sweep's keep function. A record or key that does not
// decode is an error, not a skip: sweeping on a misread index could delete
// blobs that are still needed.
func (ix *Index) Referenced() (map[Digest]bool, error) {
	refs := make(map[Digest]bool)
	err := ix.db.View(func(tx *bolt.Tx) error {
		err := basesBucket(tx).ForEach(func(k, v []byte) error {
			var r BaseRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode base %q: %w", k, err)
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
				var d Digest
				if len(k) != hex.EncodedLen(len(d)) || !isLowerHex(string(k)) {
					return fmt.Errorf("meta %s: bad key %q", kind, k)
				}
				hex.Decode(d[:], k)
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
