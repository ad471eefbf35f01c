package upstream

import (
	"crypto/sha256"
	"encoding/hex"
)

// CredentialKind says how a caller authenticated; it decides how the
// credential is forwarded to assisted-service.
type CredentialKind uint8

const (
	// CredNone forwards nothing.
	CredNone CredentialKind = iota
	// CredAPIKey is forwarded as the api_key query parameter.
	CredAPIKey
	// CredImageToken is forwarded as the Image-Token header.
	CredImageToken
	// CredAuthorization is forwarded verbatim as the Authorization header.
	CredAuthorization
)

// String names the kind without revealing anything secret.
func (k CredentialKind) String() string {
	switch k {
	case CredNone:
		return "none"
	case CredAPIKey:
		return "api_key"
	case CredImageToken:
		return "image_token"
	case CredAuthorization:
		return "authorization"
	default:
		return "unknown"
	}
}

// Credential is what a caller presented, to be forwarded unchanged.
type Credential struct {
	Kind  CredentialKind
	Value string
}

// String describes the credential without its value, e.g.
// "api_key(redacted)", so a Credential is safe to log with %v.
func (c Credential) String() string {
	if c.Kind == CredNone {
		return "none"
	}
	return c.Kind.String() + "(redacted)"
}

// GoString keeps %#v from printing the value.
func (c Credential) GoString() string { return c.String() }

// MarshalText keeps JSON and structured loggers from printing the value.
func (c Credential) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Fingerprint is the hex SHA-256 of the kind byte followed by the value, or
// "" for CredNone. It distinguishes credentials in cache and coalescing keys
// without storing them.
func (c Credential) Fingerprint() string {
	if c.Kind == CredNone {
		return ""
	}
	h := sha256.New()
	h.Write([]byte{byte(c.Kind)})
	h.Write([]byte(c.Value))
	return hex.EncodeToString(h.Sum(nil))
}
