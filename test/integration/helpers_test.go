package integration

import (
	"strings"
	"testing"
)

func joined(ws []string) string { return strings.Join(ws, "\n") }

// logged asserts that one line stsguard logged contains every part.
func logged(t *testing.T, parts ...string) {
	t.Helper()
lines:
	for _, line := range strings.Split(logs.String(), "\n") {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue lines
			}
		}
		return
	}
	t.Errorf("no log line contains all of %q", parts)
}
