// Package abuse is the attacker's test suite for isoedge: every test starts
// the isoedge binary as a child process against hostile mirrors and a
// hostile assisted-service (net/http servers on loopback written in the test
// code) and checks one item of the service's robustness contract (issue 9)
// from the outside: status codes, bytes served, /health, the files under
// DATA_DIR, the process's peak memory (VmHWM) and that it never exits.
//
// The tests are slow and carry the build tag "abuse", so `go test ./...`
// does not run them:
//
//	make abuse                                   # go test -tags abuse -count=1 -timeout 30m -v ./abuse/ (+ the scale benchmark once)
//	ISOEDGE_BIN=/path/to/isoedge make abuse      # against another build
//
// Without ISOEDGE_BIN, TestMain builds the binary from the repository root.
// This file only carries the package documentation.
package abuse
