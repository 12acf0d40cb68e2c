package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// canaryWeb is the fixture web (harness.Web) in namespace ns with 3
// replicas, annotated for a canary of one pod, as a manifest for kubectl.
func canaryWeb(t *testing.T, ns string) string {
	t.Helper()
	svc, sts := harness.Web(t, ns)
	sts.Spec.Replicas = ptr.To[int32](3)
	sts.Annotations = map[string]string{rules.CanaryAnnotation: "1"}
	return toYAML(t, svc) + "---\n" + toYAML(t, sts)
}

// images returns the image each pod of web runs, by pod name, and the
// pods' UIDs.
func images(t *testing.T, c client.Client, ns string) (map[string]string, map[string]types.UID) {
	t.Helper()
	pods := &corev1.PodList{}
	require.NoError(t, c.List(ctx(), pods, client.InNamespace(ns), client.MatchingLabels{"app": "web"}))
	img, uids := map[string]string{}, map[string]types.UID{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			img[p.Name] = p.Spec.Containers[0].Image
			uids[p.Name] = p.UID
		}
	}
	return img, uids
}

// rolloutStatus runs kubectl rollout status on statefulset/name within
// timeout (a duration such as "90s"); when it fails, it logs where the
// rollout stopped (logNamespace) before failing the test.
func rolloutStatus(t *testing.T, c client.Client, ns, name, timeout string) harness.KubectlResult {
	t.Helper()
	res := kubectl(t, "", "-n", ns, "rollout", "status", "statefulset/"+name, "--timeout="+timeout)
	if res.ExitCode != 0 {
		logNamespace(t, c, ns)
		t.Fatalf("kubectl rollout status statefulset/%s:\n%s%s", name, res.Stdout, res.Stderr)
	}
	return res
}

// The canary partition with the real StatefulSet controller: after
// `kubectl set image`, only the ordinals at or above the partition take the
// new template; lowering the partition step by step finishes the rollout.
func TestCanaryRolloutWithTheStatefulSetController(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	res := mustKubectl(t, canaryWeb(t, ns), "apply", "-f", "-")
	assert.Contains(t, res.Stdout, "statefulset.apps/web created")
	rolloutStatus(t, c, ns, "web", "90s")
	_, before := images(t, c, ns)
	require.Len(t, before, 3)

	res = mustKubectl(t, "", "-n", ns, "set", "image", "statefulset/web", "web=nginx:1.27")
	assert.Contains(t, res.Stdout, "statefulset.apps/web image updated")
	assert.Contains(t, res.Stderr, "[rule: rollout-partition]")
	sts := &appsv1.StatefulSet{}
	require.NoError(t, c.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, sts))
	require.Equal(t, int32(2), *sts.Spec.UpdateStrategy.RollingUpdate.Partition, "a canary of one: only web-2")

	want := map[string]string{"web-0": "nginx:1.26", "web-1": "nginx:1.26", "web-2": "nginx:1.27"}
	for partition := 2; partition >= 0; partition-- {
		if partition < 2 {
			mustKubectl(t, "", "-n", ns, "patch", "statefulset/web", "--type=merge",
				"-p", fmt.Sprintf(`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":%d}}}}`, partition))
			want[fmt.Sprintf("web-%d", partition)] = "nginx:1.27"
		}
		var have map[string]string
		var uids map[string]types.UID
		start := time.Now()
		err := wait.PollUntilContextTimeout(ctx(), 50*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
			if err := c.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, sts); err != nil {
				return false, err
			}
			have, uids = images(t, c, ns)
			return sts.Status.ObservedGeneration == sts.Generation && sts.Status.ReadyReplicas == 3 &&
				sts.Status.UpdatedReplicas == int32(3-partition) && assert.ObjectsAreEqual(want, have), nil
		})
		if err != nil {
			logNamespace(t, c, ns)
			t.Fatalf("partition %d not rolled out within 90 s (%v): status %+v, images %v", partition, err, sts.Status, have)
		}
		t.Logf("partition %d rolled out in %s", partition, time.Since(start).Round(time.Millisecond))
		for i := range partition {
			name := fmt.Sprintf("web-%d", i)
			assert.Equal(t, before[name], uids[name], "%s, below the partition, is never restarted", name)
		}
	}
	res = rolloutStatus(t, c, ns, "web", "60s")
	assert.Contains(t, res.Stdout, "partitioned roll out complete: 3 new pods have been updated")
	require.NoError(t, c.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, sts))
	assert.Equal(t, sts.Status.UpdateRevision, sts.Status.CurrentRevision)
	assert.False(t, strings.Contains(res.Stderr, "error"), res.Stderr)
}
