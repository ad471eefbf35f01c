// Command printversion prints what package version reports, for
// version_test.go.
package main

import (
	"fmt"

	"github.com/isoedge/isoedge/internal/version"
)

func main() {
	fmt.Printf("%s\n%s\n%s\n%s\n", version.Version(), version.Revision(), version.GoVersion(), version.String())
}
