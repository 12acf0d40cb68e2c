package policy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/rules"
)

func writePolicy(t *testing.T, path, body string) {
	t.Helper()
	// Write and rename, as the kubelet's atomic writer swaps a ConfigMap.
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(header+body), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func TestHolderReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy(t, path, "rules:\n  headless-service-delete: Deny\n")
	reg := prometheus.NewRegistry()
	h, err := NewHolder(path, engine.DefaultConfig(), time.Hour, reg, logr.Discard())
	require.NoError(t, err)
	assert.Equal(t, engine.Deny, h.Engine().Action(rules.HeadlessServiceDelete))

	writePolicy(t, path, "rules:\n  headless-service-delete: Audit\n")
	require.NoError(t, h.Reload())
	assert.Equal(t, engine.Audit, h.Engine().Action(rules.HeadlessServiceDelete))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.reloads))

	before := h.Engine()
	writePolicy(t, path, "rules:\n  headless-service-delete: Sometimes\n")
	require.Error(t, h.Reload())
	assert.Same(t, before, h.Engine(), "an invalid file keeps the previous policy")
	require.NoError(t, h.Reload(), "the same invalid content is reported once")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.errors))
}

func TestHolderStartupErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy(t, path, "rules:\n  nope: Deny\n")
	_, err := NewHolder(path, engine.DefaultConfig(), 0, prometheus.NewRegistry(), logr.Discard())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rules[nope]")
	_, err = NewHolder(filepath.Join(t.TempDir(), "missing.yaml"), engine.DefaultConfig(), 0, prometheus.NewRegistry(), logr.Discard())
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestHolderWatchesTheFile: Start notices a change through file system
// events, long before the (one hour) poll.
func TestHolderWatchesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy(t, path, "")
	h, err := NewHolder(path, engine.DefaultConfig(), time.Hour, prometheus.NewRegistry(), logr.Discard())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Start(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	// The watch starts asynchronously: rewrite until the change is seen.
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		writePolicy(t, path, "rules:\n  weak-password: Warn\n")
		return h.Engine().Action(rules.WeakPassword) == engine.Warn, nil
	})
	require.NoError(t, err)
}
