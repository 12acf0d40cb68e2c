package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/resize"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// Every object here is acted on by the real controllers: the StatefulSet
// controller creates the pods and PVCs, the scheduler places the pods on
// kwok's node, kwok runs them and (as a CSI driver's external-provisioner)
// creates a PV for each PVC, the PV controller binds the two, and the
// garbage collector finishes an orphaning delete. The one part a test may
// still play is the external resizer, for classes of
// harness.ManualResizeProvisioner, so that it can hold a resize midway.

// storageClass creates a StorageClass unique to the test, with the
// provisioner given, and returns its name.
func storageClass(t *testing.T, c client.Client, ns string, expandable bool, provisioner string) string {
	t.Helper()
	name := ns + "-fixed"
	if expandable {
		name = ns + "-expandable"
	}
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, AllowVolumeExpansion: ptr.To(expandable)}
	require.NoError(t, c.Create(ctx(), sc))
	t.Cleanup(func() { _ = c.Delete(context.Background(), sc) })
	return name
}

// withStorage gives sts a mounted volumeClaimTemplate "data" of class and size.
func withStorage(sts *appsv1.StatefulSet, class, size string) *appsv1.StatefulSet {
	sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(class),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}}
	sts.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	return sts
}

// waitRolledOut waits (up to 90 s) until the StatefulSet controller has
// seen the latest spec of namespace/name and every replica is Ready on the
// update revision, as `kubectl rollout status` does, and returns it. When
// it times out it logs what the namespace holds (the StatefulSet's status,
// each pod's phase, node and conditions, each PVC's phase, the events), so
// that a rollout that never finishes says where it stopped.
func waitRolledOut(t *testing.T, c client.Client, ns, name string) *appsv1.StatefulSet {
	t.Helper()
	sts := &appsv1.StatefulSet{}
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		if c.Get(ctx(), types.NamespacedName{Namespace: ns, Name: name}, sts) != nil {
			return false, nil
		}
		s := sts.Status
		return s.ObservedGeneration >= sts.Generation && s.ReadyReplicas == *sts.Spec.Replicas &&
			s.UpdatedReplicas == *sts.Spec.Replicas && s.CurrentRevision == s.UpdateRevision, nil
	})
	if err != nil {
		logNamespace(t, c, ns)
		t.Fatalf("statefulset/%s did not roll out within 90 s: status %+v (generation %d)", name, sts.Status, sts.Generation)
	}
	return sts
}

// logNamespace logs the pods, PVCs and events of namespace ns, and the
// ends of the controller manager's, the scheduler's and kwok's logs.
func logNamespace(t *testing.T, c client.Client, ns string) {
	t.Helper()
	for _, component := range []string{"kube-controller-manager", "kube-scheduler", "kwok"} {
		t.Logf("the end of %s's log:\n%s", component, cl.ComponentLog(component, 30))
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx(), pods, client.InNamespace(ns)); err == nil {
		for _, p := range pods.Items {
			t.Logf("pod %s: phase %s, node %q, conditions %+v", p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.Conditions)
		}
	}
	pvcs := &corev1.PersistentVolumeClaimList{}
	if err := c.List(ctx(), pvcs, client.InNamespace(ns)); err == nil {
		for _, p := range pvcs.Items {
			t.Logf("pvc %s: phase %s, volume %q", p.Name, p.Status.Phase, p.Spec.VolumeName)
		}
	}
	events := &corev1.EventList{}
	if err := c.List(ctx(), events, client.InNamespace(ns)); err == nil {
		for _, e := range events.Items {
			t.Logf("event %s/%s: %s %s: %s (x%d)", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Type, e.Reason, e.Message, e.Count)
		}
	}
}

// database creates the 3-replica StatefulSet "db" with template data of
// class at 1Gi (unless class is "": a test created db itself) and waits
// until its pods are Ready and its PVCs Bound. It returns the StatefulSet
// and its pods' UIDs by name.
func database(t *testing.T, c client.Client, ns, class string) (*appsv1.StatefulSet, map[string]types.UID) {
	t.Helper()
	if class != "" {
		require.NoError(t, c.Create(ctx(), withStorage(harness.StatefulSet(ns, "db", "", "nginx"), class, "1Gi")))
	}
	sts := waitRolledOut(t, c, ns, "db")
	harness.Eventually(t, "the PVCs of db bound", func() bool {
		for _, s := range claimSizes(t, c, ns) {
			if s != "1Gi/1Gi" {
				return false
			}
		}
		return true
	}, 60*time.Second)
	return sts, podUIDs(t, c, ns)
}

// resizer plays the external resizer for the PVCs of one namespace until the
// test ends; it can be paused, and can leave chosen PVCs
// FileSystemResizePending (the volume grew; the file system grows when the
// pod restarts) instead of setting their capacity.
type resizer struct {
	c         client.Client
	ns        string
	mu        sync.Mutex
	paused    bool
	fsPending map[string]bool
}

func startResizer(t *testing.T, c client.Client, ns string) *resizer {
	r := &resizer{c: c, ns: ns, fsPending: map[string]bool{}}
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait.UntilWithContext(cctx, r.reconcile, 50*time.Millisecond)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (r *resizer) pause(paused bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paused = paused
}

func (r *resizer) reconcile(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paused {
		return
	}
	pvcs := &corev1.PersistentVolumeClaimList{}
	if r.c.List(ctx, pvcs, client.InNamespace(r.ns)) != nil {
		return
	}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		want := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		if pvc.Status.Phase != corev1.ClaimBound || resize.Resized(pvc, want) {
			continue
		}
		if r.fsPending[pvc.Name] {
			pvc.Status.Conditions = []corev1.PersistentVolumeClaimCondition{{
				Type: corev1.PersistentVolumeClaimFileSystemResizePending, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		} else {
			pvc.Status.Capacity[corev1.ResourceStorage] = want
		}
		_ = r.c.Status().Update(ctx, pvc)
	}
}

// updateTemplate sends sts with change applied, as a dry run first until
// the webhook's cache shows until (a substring of the error), then for real.
func updateTemplate(t *testing.T, c client.Client, sts *appsv1.StatefulSet, change func(*appsv1.StatefulSet), until string) error {
	t.Helper()
	var err error
	harness.Eventually(t, "the webhook to see the PVCs", func() bool {
		next := &appsv1.StatefulSet{}
		require.NoError(t, c.Get(ctx(), client.ObjectKeyFromObject(sts), next))
		change(next)
		err = c.Update(ctx(), next, client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), until)
	})
	next := &appsv1.StatefulSet{}
	require.NoError(t, c.Get(ctx(), client.ObjectKeyFromObject(sts), next))
	change(next)
	return c.Update(ctx(), next)
}

func setSize(size string) func(*appsv1.StatefulSet) {
	return func(s *appsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(size)
	}
}
func TestVolumeClaimTemplateResizeIsDeniedWithAPlan(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true, harness.Provisioner)
	sts, _ := database(t, c, ns, class)

	err := updateTemplate(t, c, sts, setSize("5Gi"), "data-db-2")
	fields := harness.InvalidCauses(t, err, rules.VolumeClaimTemplateResize)
	assert.Equal(t, []string{"spec.volumeClaimTemplates[0].spec.resources.requests[storage]"}, fields)
	msg := err.Error()
	assert.Contains(t, msg, `StatefulSet.apps "db" is invalid: spec.volumeClaimTemplates[0].spec.resources.requests[storage]: Forbidden:`)
	assert.Contains(t, msg, "run: stsguard expand statefulset/db -n "+ns+" --template data --size 5Gi")
	for i := range 3 {
		assert.Contains(t, msg, resize.ClaimName("data", "db", i)+` (1Gi, StorageClass "`+class+`", can expand)`)
	}
	assert.NotContains(t, msg, "refuse")
}

func TestVolumeClaimTemplateShrinkAndOtherChangesAreDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true, harness.Provisioner)
	sts := withStorage(harness.StatefulSet(ns, "db", "", "nginx"), class, "10Gi")
	require.NoError(t, c.Create(context.Background(), sts))

	err := updateTemplate(t, c, sts, setSize("5Gi"), rules.VolumeClaimTemplateShrink)
	assert.Equal(t, []string{"spec.volumeClaimTemplates[0].spec.resources.requests[storage]"}, harness.InvalidCauses(t, err, rules.VolumeClaimTemplateShrink))
	assert.Contains(t, err.Error(), `Invalid value: "5Gi": volumeClaimTemplate "data" was created with 10Gi: a PVC can never shrink`)

	err = updateTemplate(t, c, sts, func(s *appsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates[0].Spec.StorageClassName = ptr.To("other")
		s.Spec.VolumeClaimTemplates[0].Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}
	}, rules.VolumeClaimTemplateImmutable)
	assert.Equal(t, []string{"spec.volumeClaimTemplates[0].spec.accessModes[0]", "spec.volumeClaimTemplates[0].spec.storageClassName"},
		harness.InvalidCauses(t, err, rules.VolumeClaimTemplateImmutable))
	assert.Contains(t, err.Error(), "kubectl delete statefulset db -n "+ns+" --cascade=orphan")
}

func TestVolumeClaimTemplateResizeOnAClassThatCannotExpandIsDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, false, harness.Provisioner)
	sts, _ := database(t, c, ns, class)

	err := updateTemplate(t, c, sts, setSize("5Gi"), "data-db-2")
	fields := harness.InvalidCauses(t, err, rules.StorageClassNotExpandable)
	assert.ElementsMatch(t, []string{
		"spec.volumeClaimTemplates[0].spec.resources.requests[storage]", // the PVCs
		"spec.volumeClaimTemplates[0].spec.resources.requests[storage]", // the plan
		"spec.volumeClaimTemplates[0].spec.storageClassName",            // the template
	}, fields)
	assert.Contains(t, err.Error(), `StorageClass "`+class+`" does not allow volume expansion`)
	assert.Contains(t, err.Error(), "it will refuse until")
}

// A StatefulSet scaled down keeps the PVCs of the removed ordinals
// (whenScaled: Retain); deleted with --cascade=orphan and created again
// with a larger template, it finds them smaller than it asks for.
func TestRecreatedStatefulSetOverSmallerPVCsWarns(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true, harness.Provisioner)
	_, pods := database(t, c, ns, class)

	mustKubectl(t, "", "-n", ns, "scale", "statefulset/db", "--replicas=2")
	harness.Eventually(t, "pod db-2 gone", func() bool { _, ok := podUIDs(t, c, ns)["db-2"]; return !ok }, 60*time.Second)
	mustKubectl(t, "", "-n", ns, "delete", "statefulset/db", "--cascade=orphan", "--wait=true")
	assert.Equal(t, []string{"1Gi/1Gi", "1Gi/1Gi", "1Gi/1Gi"}, claimSizes(t, c, ns), "PVCs outlive their StatefulSet")

	sts := withStorage(harness.StatefulSet(ns, "db", "", "nginx"), class, "2Gi")
	sts.Spec.Replicas = ptr.To[int32](2)
	manifest := toYAML(t, sts)
	harness.Eventually(t, "the webhook to see the PVCs", func() bool {
		res := kubectl(t, manifest, "create", "--dry-run=server", "-f", "-")
		return strings.Contains(res.Stderr, "data-db-2")
	})
	res := mustKubectl(t, manifest, "create", "-f", "-")
	assert.Contains(t, res.Stdout, "statefulset.apps/db created")
	assert.Contains(t, res.Stderr, "Warning: spec.volumeClaimTemplates[0].spec.resources.requests[storage]: Invalid value: \"2Gi\": PVCs data-db-0 (1Gi), data-db-1 (1Gi), data-db-2 (1Gi) already exist under this StatefulSet's names and are smaller")
	assert.Contains(t, res.Stderr, "stsguard expand statefulset/db -n "+ns+" --template data --size 2Gi [rule: pvc-smaller-than-template]")

	waitRolledOut(t, c, ns, "db")
	now := podUIDs(t, c, ns)
	assert.Equal(t, pods["db-0"], now["db-0"], "the orphaned pods are adopted, not replaced")
	assert.Equal(t, pods["db-1"], now["db-1"])
}

// claimSizes returns the storage request and capacity of each PVC of db,
// "missing" for one that does not exist.
func claimSizes(t *testing.T, c client.Client, ns string) []string {
	t.Helper()
	out, err := readClaimSizes(ctx(), c, ns)
	require.NoError(t, err)
	return out
}

// readClaimSizes is claimSizes for a goroutine that must not fail the test.
func readClaimSizes(ctx context.Context, c client.Client, ns string) ([]string, error) {
	var out []string
	for i := range 3 {
		pvc := &corev1.PersistentVolumeClaim{}
		err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: resize.ClaimName("data", "db", i)}, pvc)
		switch {
		case apierrors.IsNotFound(err):
			out = append(out, "missing")
			continue
		case err != nil:
			return nil, err
		}
		req := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		capacity := pvc.Status.Capacity[corev1.ResourceStorage]
		out = append(out, req.String()+"/"+capacity.String())
	}
	return out, nil
}

func getStatefulSet(t *testing.T, c client.Client, ns, name string) *appsv1.StatefulSet {
	t.Helper()
	sts := &appsv1.StatefulSet{}
	require.NoError(t, c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, sts))
	return sts
}

func podUIDs(t *testing.T, c client.Client, ns string) map[string]types.UID {
	t.Helper()
	pods := &corev1.PodList{}
	require.NoError(t, c.List(context.Background(), pods, client.InNamespace(ns)))
	out := map[string]types.UID{}
	for _, p := range pods.Items {
		out[p.Name] = p.UID
	}
	return out
}

func stateSecretGone(t *testing.T, c client.Client, ns, name string) bool {
	t.Helper()
	err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "stsguard-expand-" + name}, &corev1.Secret{})
	return apierrors.IsNotFound(err)
}

// waitUntil cancels the returned context as soon as cond holds: it
// interrupts a run at a chosen step.
func waitUntil(t *testing.T, cond func(ctx context.Context) bool) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		if wait.PollUntilContextCancel(ctx, 20*time.Millisecond, false, func(ctx context.Context) (bool, error) { return cond(ctx), nil }) == nil {
			cancel()
		}
	}()
	return ctx
}
