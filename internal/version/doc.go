// Package version holds the build's version, stamped by the linker:
// go build -ldflags "-X github.com/stsguard/stsguard/internal/version.Version=v0.1.0 -X ...Commit=abc123".
package version
