package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// serverVersion returns the apiserver's version (for example v1.37.2), for
// the messages of tests that skip a feature the version lacks.
func serverVersion(t *testing.T) *version.Version {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cl.Config)
	require.NoError(t, err)
	info, err := dc.ServerVersion()
	require.NoError(t, err)
	v, err := version.ParseGeneric(info.GitVersion)
	require.NoError(t, err, "the apiserver's version %q", info.GitVersion)
	return v
}

// webWithStrategy is the fixture web (harness.Web) in namespace ns with
// replicas pods, annotated for a canary of canary pods, with the given
// podManagementPolicy and updateStrategy, as a manifest for kubectl.
func webWithStrategy(t *testing.T, ns string, replicas, canary int32, podManagement appsv1.PodManagementPolicyType, strategy appsv1.StatefulSetUpdateStrategy) string {
	t.Helper()
	svc, sts := harness.Web(t, ns)
	sts.Annotations = map[string]string{rules.CanaryAnnotation: strconv.Itoa(int(canary))}
	sts.Spec.Replicas = &replicas
	sts.Spec.PodManagementPolicy = podManagement
	sts.Spec.UpdateStrategy = strategy
	return toYAML(t, svc) + "---\n" + toYAML(t, sts)
}

// waitImages waits (up to 90 s) until the running pods of web are the ones
// of want (pod name -> image) and the StatefulSet controller has counted
// updated of them as updated and all of them as Ready.
func waitImages(t *testing.T, c client.Client, ns string, want map[string]string, updated int32) {
	t.Helper()
	sts := &appsv1.StatefulSet{}
	var have map[string]string
	start := time.Now()
	err := wait.PollUntilContextTimeout(ctx(), 50*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		if err := c.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "web"}, sts); err != nil {
			return false, err
		}
		have, _ = images(t, c, ns)
		return sts.Status.ObservedGeneration == sts.Generation && sts.Status.ReadyReplicas == int32(len(want)) &&
			sts.Status.UpdatedReplicas == updated && assert.ObjectsAreEqual(want, have), nil
	})
	if err != nil {
		logNamespace(t, c, ns)
		t.Fatalf("pods not at %v within 90 s (%v): status %+v, images %v", want, err, sts.Status, have)
	}
	t.Logf("pods at %v in %s", want, time.Since(start).Round(time.Millisecond))
}

// updateStrategy type Recreate (alpha in Kubernetes 1.37, feature gate
// StatefulSetRecreateStrategy) through stsguard: a template change is
// admitted without a rollingUpdate added for the canary annotation (the
// apiserver would refuse it), the annotation is warned about, and the
// StatefulSet controller replaces every pod.
func TestRecreateUpdateStrategy(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	manifest := webWithStrategy(t, ns, 3, 1, appsv1.OrderedReadyPodManagement, appsv1.StatefulSetUpdateStrategy{Type: appsv1.RecreateStatefulSetStrategyType})
	res := kubectl(t, manifest, "apply", "-f", "-")
	if res.ExitCode != 0 && strings.Contains(res.Stderr, "spec.updateStrategy: Invalid value") &&
		strings.Contains(res.Stderr, "must be 'RollingUpdate' or 'OnDelete'") {
		v := serverVersion(t)
		if !v.AtLeast(version.MajorMinor(1, 37)) {
			t.Skipf("Kubernetes %s has no updateStrategy type Recreate for StatefulSets (alpha from 1.37, feature gate StatefulSetRecreateStrategy); kubectl said:\n%s", v, res.Stderr)
		}
		t.Skipf("kube-apiserver %s refuses updateStrategy type Recreate: its feature gate StatefulSetRecreateStrategy (alpha) is off; "+
			"`make test-versions` turns it on for 1.37. kubectl said:\n%s", v, res.Stderr)
	}
	require.Equal(t, 0, res.ExitCode, "kubectl apply:\n%s%s", res.Stdout, res.Stderr)
	assert.Contains(t, res.Stdout, "statefulset.apps/web created")
	waitRolledOut(t, c, ns, "web")
	_, before := images(t, c, ns)
	require.Len(t, before, 3)

	// The manifest with a new image, applied as a pipeline does.
	res = mustKubectl(t, strings.Replace(manifest, "nginx:1.26", "nginx:1.27", 1), "apply", "-f", "-")
	assert.Contains(t, res.Stdout, "statefulset.apps/web configured")
	assert.Contains(t, res.Stderr, "has no effect with updateStrategy.type Recreate")
	assert.Contains(t, res.Stderr, "[rule: rollout-partition]")
	sts := getStatefulSet(t, c, ns, "web")
	assert.Equal(t, appsv1.RecreateStatefulSetStrategyType, sts.Spec.UpdateStrategy.Type)
	assert.Nil(t, sts.Spec.UpdateStrategy.RollingUpdate, "no partition for the canary: type Recreate has none")

	waitImages(t, c, ns, map[string]string{"web-0": "nginx:1.27", "web-1": "nginx:1.27", "web-2": "nginx:1.27"}, 3)
	sts = waitRolledOut(t, c, ns, "web")
	assert.Equal(t, sts.Status.UpdateRevision, sts.Status.CurrentRevision)
	_, after := images(t, c, ns)
	for name, uid := range before {
		assert.NotEqual(t, uid, after[name], "%s was re-created", name)
	}
}

// rollingUpdate.maxUnavailable (feature gate MaxUnavailableStatefulSet,
// beta and on by default from Kubernetes 1.37) with the partition stsguard
// sets for a canary: both are kept and admitted, and the controller rolls
// the canary's pods, then the rest once the partition is lowered.
func TestMaxUnavailableWithCanaryPartition(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	mustKubectl(t, webWithStrategy(t, ns, 4, 2, appsv1.ParallelPodManagement, appsv1.StatefulSetUpdateStrategy{
		Type: appsv1.RollingUpdateStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: ptr.To(intstr.FromInt32(2))}}), "apply", "-f", "-")
	sts := getStatefulSet(t, c, ns, "web")
	require.NotNil(t, sts.Spec.UpdateStrategy.RollingUpdate)
	if sts.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable == nil {
		t.Skipf("kube-apiserver %s dropped spec.updateStrategy.rollingUpdate.maxUnavailable: its feature gate "+
			"MaxUnavailableStatefulSet is off, as by default before Kubernetes 1.37", serverVersion(t))
	}
	waitRolledOut(t, c, ns, "web")
	_, before := images(t, c, ns)
	require.Len(t, before, 4)

	res := mustKubectl(t, "", "-n", ns, "set", "image", "statefulset/web", "web=nginx:1.27")
	assert.Contains(t, res.Stderr, "[rule: rollout-partition]")
	sts = getStatefulSet(t, c, ns, "web")
	require.NotNil(t, sts.Spec.UpdateStrategy.RollingUpdate)
	assert.Equal(t, int32(2), *sts.Spec.UpdateStrategy.RollingUpdate.Partition, "a canary of two of four: web-2 and web-3")
	assert.Equal(t, intstr.FromInt32(2), *sts.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable, "maxUnavailable is kept")
	waitImages(t, c, ns, map[string]string{"web-0": "nginx:1.26", "web-1": "nginx:1.26", "web-2": "nginx:1.27", "web-3": "nginx:1.27"}, 2)
	_, uids := images(t, c, ns)
	for _, name := range []string{"web-0", "web-1"} {
		assert.Equal(t, before[name], uids[name], "%s, below the partition, is never restarted", name)
	}

	mustKubectl(t, "", "-n", ns, "patch", "statefulset/web", "--type=merge", "-p", `{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}`)
	waitImages(t, c, ns, map[string]string{"web-0": "nginx:1.27", "web-1": "nginx:1.27", "web-2": "nginx:1.27", "web-3": "nginx:1.27"}, 4)
	sts = waitRolledOut(t, c, ns, "web")
	assert.Equal(t, intstr.FromInt32(2), *sts.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable)
}
