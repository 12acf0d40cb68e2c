package version

import (
	"fmt"
	"runtime"
)

// Stamped by -ldflags -X; "dev" and "unknown" in an unstamped build.
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the one-line version: "stsguard v0.1.0 (commit abc123, go1.26.8 linux/amd64)".
func String() string {
	return fmt.Sprintf("stsguard %s (commit %s, %s %s/%s)", Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
