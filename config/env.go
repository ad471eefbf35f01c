package config

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// prefix is what envconfig.Process("cluster-image", …) puts in front of every
// variable name in the original.
const prefix = "CLUSTER-IMAGE_"

// Error is a problem with one configuration variable (or, for a pair that must
// be set together, with both). Var is the name of the variable that supplied
// the value, including the CLUSTER-IMAGE_ prefix when that is where it came
// from.
type Error struct {
	Var string
	Err error
}

func (e *Error) Error() string { return "config: " + e.Var + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// ErrNoAssistedService is returned by Load when ASSISTED_SERVICE_HOST and
// IGNITION_DIR are both empty while an image list is configured, so there is
// nowhere to take ignition from.
var ErrNoAssistedService = errors.New("config: ASSISTED_SERVICE_HOST is not set (set it, or IGNITION_DIR for a standalone site)")

// env wraps the lookup function with envconfig's name resolution.
type env struct {
	lookup func(string) (string, bool)
}

// get returns the value of name and the variable it came from:
// CLUSTER-IMAGE_<name> if set (even if empty), else name. ok is false when
// neither is set.
func (e env) get(name string) (value, from string, ok bool) {
	if v, ok := e.lookup(prefix + name); ok {
		return v, prefix + name, true
	}
	if v, ok := e.lookup(name); ok {
		return v, name, true
	}
	return "", name, false
}

// str returns the value of name, or def when it is unset or empty.
func (e env) str(name, def string) (value, from string) {
	v, from, _ := e.get(name)
	if v == "" {
		return def, from
	}
	return v, from
}

// first returns the first of names whose value is non-empty, or "" and the
// first name.
func (e env) first(names ...string) (value, from string) {
	for _, n := range names {
		if v, from := e.str(n, ""); v != "" {
			return v, from
		}
	}
	return "", names[0]
}

// int64 parses name as envconfig does (base 0). Unset gives def; set but
// empty is an error.
func (e env) int64(name string, def, min int64) (int64, error) {
	s, from, ok := e.get(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0, &Error{from, fmt.Errorf("invalid integer %q", s)}
	}
	if n < min {
		return 0, &Error{from, fmt.Errorf("must be >= %d, got %d", min, n)}
	}
	return n, nil
}

// port returns name as a TCP port number 1-65535 in decimal, or def when
// unset or empty (def "" means no port).
func (e env) port(name, def string) (string, error) {
	s, from := e.str(name, def)
	if s == "" {
		return "", nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return "", &Error{from, fmt.Errorf("must be a port number 1-65535, got %q", s)}
	}
	return strconv.FormatUint(n, 10), nil
}

// int is int64 for values that must also fit an int.
func (e env) int(name string, def, min int) (int, error) {
	n, err := e.int64(name, int64(def), int64(min))
	if err != nil {
		return 0, err
	}
	if int64(int(n)) != n {
		_, from, _ := e.get(name)
		return 0, &Error{from, fmt.Errorf("too large: %d", n)}
	}
	return int(n), nil
}

// bool parses name with strconv.ParseBool. Unset gives def; set but empty is
// an error.
func (e env) bool(name string, def bool) (bool, error) {
	s, from, ok := e.get(name)
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, &Error{from, fmt.Errorf("invalid boolean %q", s)}
	}
	return b, nil
}

// duration parses name with time.ParseDuration. Unset gives def; set but
// empty is an error. Negative values are always rejected, zero only when
// positive is true.
func (e env) duration(name string, def time.Duration, positive bool) (time.Duration, error) {
	s, from, ok := e.get(name)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, &Error{from, fmt.Errorf("invalid duration %q", s)}
	}
	if positive && d <= 0 {
		return 0, &Error{from, fmt.Errorf("must be > 0, got %v", d)}
	}
	if d < 0 {
		return 0, &Error{from, fmt.Errorf("must not be negative, got %v", d)}
	}
	return d, nil
}
