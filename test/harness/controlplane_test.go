package harness

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestControlPlaneFaults restarts the apiserver twice (envtest's process,
// then the one the first restart started) and pauses etcd: the clients
// made before keep working (same certificates, same address), what was
// written is still there, and Stop stops everything.
func TestControlPlaneFaults(t *testing.T) {
	cl, err := StartClusterWith(ClusterOptions{APIServerFlags: map[string]string{"shutdown-send-retry-after": "true"}})
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			assert.NoError(t, cl.Stop())
		}
	})
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cl.Config)
	require.NoError(t, err)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before-restart"}, Data: map[string]string{"k": "v"}}
	_, err = cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
	require.NoError(t, err)

	// envtest's apiserver, given the time to exit; then the one that
	// restart started, given none.
	for i, grace := range []time.Duration{30 * time.Second, 0} {
		r, err := cl.RestartAPIServer(ctx, grace)
		require.NoError(t, err, "restart %d", i+1)
		t.Logf("restart %d: exited %s after SIGTERM (killed: %v), ready %s after it", i+1, r.Exit.Round(time.Millisecond), r.Killed, r.Down.Round(time.Millisecond))
		assert.Equal(t, grace == 0, r.Killed, "killed when the grace period is over")
		got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{})
		require.NoError(t, err, "the client made before the restart")
		assert.Equal(t, "v", got.Data["k"])
		assert.Contains(t, cl.ComponentLog("kube-apiserver", 1000), "restarted by the test")
	}

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cl.PauseEtcd(ctx, 2*time.Second) }()
	// A write waits for etcd, and is stored once it resumes.
	_, err = cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "during-pause"}}, metav1.CreateOptions{})
	require.NoError(t, <-done)
	require.NoError(t, err)
	t.Logf("a write during a 2 s pause of etcd took %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, cl.WaitAPIServerReady(ctx))

	stopped = true
	require.NoError(t, cl.Stop())
	_, err = childProcess("kube-apiserver")
	assert.Error(t, err, "no apiserver of this test left running")
	_, err = childProcess("etcd")
	assert.Error(t, err, "no etcd of this test left running")
}
