package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Input bounds. An Ignition config is embedded compressed in a 256 KiB
// area or sent over PXE; a ramdisk fills a 1 MiB area.
const (
	maxIgnitionInput = 32 << 20
	maxRamdiskInput  = 64 << 20
)

// isStdin reports whether a file argument means standard input.
func isStdin(p string) bool { return p == "" || p == "-" }

// readInput reads the file at p, or standard input when p is "" or "-",
// refusing more than max bytes.
func readInput(e *env, p string, max int64, what string) ([]byte, error) {
	var r io.Reader
	name := p
	if isStdin(p) {
		r, name = e.stdin, "standard input"
	} else {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", what, name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %s is larger than %d bytes", what, name, max)
	}
	return b, nil
}

// readIgnition reads an Ignition config (from standard input when p is
// "" or "-") and checks that it is one: a JSON object whose ignition.version
// is a non-empty string.
func readIgnition(e *env, p string) ([]byte, error) {
	b, err := readInput(e, p, maxIgnitionInput, "ignition config")
	if err != nil {
		return nil, err
	}
	name := p
	if isStdin(p) {
		name = "standard input"
	}
	if err := checkIgnition(b); err != nil {
		return nil, fmt.Errorf("ignition config %s: %w", name, err)
	}
	return b, nil
}

var errNotIgnition = errors.New("not an Ignition config")

// checkIgnition reports whether b is a JSON object with a non-empty string
// at ignition.version. The config's other fields are Ignition's business.
func checkIgnition(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("%w: empty", errNotIgnition)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%w: not a JSON object: %v", errNotIgnition, err)
	}
	raw, ok := doc["ignition"]
	if !ok {
		return fmt.Errorf("%w: no \"ignition\" section", errNotIgnition)
	}
	var sec map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sec); err != nil || sec == nil {
		return fmt.Errorf("%w: \"ignition\" is not an object", errNotIgnition)
	}
	var v string
	if err := json.Unmarshal(sec["version"], &v); err != nil || v == "" {
		return fmt.Errorf("%w: ignition.version is missing or not a string", errNotIgnition)
	}
	return nil
}
