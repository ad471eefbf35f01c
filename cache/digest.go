package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Callers test them with errors.Is; the package wraps them
// with the digest, key or sizes involved.
var (
	ErrNotFound       = errors.New("cache: not found")
	ErrDigestMismatch = errors.New("cache: digest mismatch")
	ErrSizeMismatch   = errors.New("cache: size mismatch")
	// ErrTooLarge: a write would take a blob past its Writer's Limit.
	ErrTooLarge = errors.New("cache: too large")
	// ErrIndexCorrupt: the index file cannot be trusted (bbolt found it
	// inconsistent, panicked reading it, or it holds values this build
	// cannot decode). See OpenIndex for what to do.
	ErrIndexCorrupt = errors.New("cache: index corrupt")
	// ErrIndexLocked: another process has the index open.
	ErrIndexLocked = errors.New("cache: index locked by another process")
	// ErrInvalidRecord: a base record fails validation (ValidateRecord).
	ErrInvalidRecord = errors.New("cache: invalid base record")
)

// digestPrefix is the only algorithm prefix the package accepts and prints.
const digestPrefix = "sha256:"

// Digest is a SHA-256 content address. The zero value means "no digest".
type Digest [32]byte

// ParseDigest parses "sha256:<64 hex>" or a bare "<64 hex>". The hex must be
// lowercase: a digest has exactly one spelling, so the parsed value and the
// string it came from always agree and only canonical names become paths.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	h := strings.TrimPrefix(s, digestPrefix)
	if len(h) != hex.EncodedLen(len(d)) {
		return Digest{}, fmt.Errorf("cache: invalid digest %q: want %s<64 lowercase hex>", truncate(s), digestPrefix)
	}
	if !isLowerHex(h) {
		return Digest{}, fmt.Errorf("cache: invalid digest %q: not lowercase hex", truncate(s))
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return Digest{}, fmt.Errorf("cache: invalid digest %q: %w", truncate(s), err)
	}
	return d, nil
}

// truncate keeps error messages short when a caller passes a huge string.
func truncate(s string) string { return clip(s, 80) }

// clip shortens s to at most n bytes plus an ellipsis.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// DigestOf returns the SHA-256 digest of b.
func DigestOf(b []byte) Digest {
	return sha256.Sum256(b)
}

// String returns "sha256:<64 lowercase hex>".
func (d Digest) String() string {
	return digestPrefix + d.Hex()
}

// Hex returns the 64 lowercase hex characters of d, without a prefix.
func (d Digest) Hex() string {
	return hex.EncodeToString(d[:])
}

// IsZero reports whether d is the zero value (no digest).
func (d Digest) IsZero() bool {
	return d == Digest{}
}

// MarshalText encodes d as "sha256:<hex>", which is also its JSON form.
func (d Digest) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// UnmarshalText accepts anything ParseDigest accepts.
func (d *Digest) UnmarshalText(b []byte) error {
	p, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}
