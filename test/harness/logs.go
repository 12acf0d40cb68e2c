package harness

import (
	"io"
	"os"
	"strings"
	"sync"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// LogBuffer is a goroutine-safe buffer of everything stsguard logged in a
// test process, so that tests can check what was (and was not) logged.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// CaptureLogs sets controller-runtime's logger to JSON lines written into
// the returned buffer, and also to stderr when STSGUARD_TEST_LOG is set.
func CaptureLogs() *LogBuffer {
	l := &LogBuffer{}
	var out io.Writer = l
	if os.Getenv("STSGUARD_TEST_LOG") != "" {
		out = io.MultiWriter(l, os.Stderr)
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(out), zap.UseDevMode(false)))
	return l
}
