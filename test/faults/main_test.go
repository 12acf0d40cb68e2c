package faults_test

import (
	"testing"

	"github.com/stsguard/stsguard/test/harness"
)

// Each test starts the control planes it needs; envtest's own progress
// lines are discarded.
func TestMain(m *testing.M) {
	harness.Main(m, harness.WithoutLogs())
}
