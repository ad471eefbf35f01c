//go:build !linux

package upstream

import "os"

func createUnlinked(dir string) (*os.File, error) { return createRemoved(dir) }
