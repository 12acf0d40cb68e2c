package integration

import (
	"context"
	"slices"
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
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/webhook/rules"
)

// envtest runs no controllers. The helpers below play the parts of the ones
// a volume resize involves: the provisioner and the PV binder (PVs created
// and bound by hand), the external resizer (a PVC's status.capacity follows
// its request), the StatefulSet controller (pods created by hand, owned by
// the StatefulSet) and the garbage collector (the orphan finalizer of a
// StatefulSet deleted with propagationPolicy Orphan).

// storageClass creates a StorageClass unique to the test and returns its name.
func storageClass(t *testing.T, c client.Client, ns string, expandable bool) string {
	t.Helper()
	name := ns + "-fixed"
	if expandable {
		name = ns + "-expandable"
	}
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "csi.example.com", AllowVolumeExpansion: ptr.To(expandable)}
	require.NoError(t, c.Create(context.Background(), sc))
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

// boundClaim creates PVC name of class and size as the StatefulSet
// controller would, a PV for it as a provisioner would, and binds them.
func boundClaim(t *testing.T, c client.Client, ns, name, class, size string) *corev1.PersistentVolumeClaim {
	t.Helper()
	ctx := context.Background()
	q := resource.MustParse(size)
	rwo := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-" + ns + "-" + name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: q},
			AccessModes:                   rwo,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              class,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "csi.example.com", VolumeHandle: ns + "-" + name}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: name},
		},
	}
	require.NoError(t, c.Create(ctx, pv))
	t.Cleanup(func() { _ = c.Delete(context.Background(), pv) })
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(class), AccessModes: rwo, VolumeName: pv.Name,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q}},
		},
	}
	require.NoError(t, c.Create(ctx, pvc))
	pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: rwo, Capacity: corev1.ResourceList{corev1.ResourceStorage: q}}
	require.NoError(t, c.Status().Update(ctx, pvc))
	pv.Status.Phase = corev1.VolumeBound
	require.NoError(t, c.Status().Update(ctx, pv))
	return pvc
}

// ownedPods creates the pods of sts as the StatefulSet controller would.
func ownedPods(t *testing.T, c client.Client, sts *appsv1.StatefulSet) map[string]types.UID {
	t.Helper()
	uids := map[string]types.UID{}
	for i := range int(*sts.Spec.Replicas) {
		name := sts.Name + "-" + string(rune('0'+i))
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: name, Labels: sts.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: sts.Name, UID: sts.UID,
					Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "db", Image: sts.Spec.Template.Spec.Containers[0].Image,
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: rules.ClaimName("data", sts.Name, i)}}}},
			},
		}
		require.NoError(t, c.Create(context.Background(), pod))
		uids[name] = pod.UID
	}
	return uids
}

// controllers plays the external resizer and the garbage collector in one
// namespace until the test ends. Either can be paused.
type controllers struct {
	c           client.Client
	ns          string
	mu          sync.Mutex
	resizer, gc bool
	fsPending   map[string]bool // PVCs the resizer leaves FileSystemResizePending
}

func startControllers(t *testing.T, c client.Client, ns string) *controllers {
	k := &controllers{c: c, ns: ns, resizer: true, gc: true, fsPending: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				k.reconcile(ctx)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return k
}

func (k *controllers) set(resizer, gc bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.resizer, k.gc = resizer, gc
}

func (k *controllers) reconcile(ctx context.Context) {
	k.mu.Lock()
	resizer, gc := k.resizer, k.gc
	k.mu.Unlock()
	if resizer {
		pvcs := &corev1.PersistentVolumeClaimList{}
		if k.c.List(ctx, pvcs, client.InNamespace(k.ns)) == nil {
			for i := range pvcs.Items {
				pvc := &pvcs.Items[i]
				want := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
				if pvc.Status.Phase != corev1.ClaimBound || rules.Resized(pvc, want) {
					continue
				}
				if k.fsPending[pvc.Name] {
					pvc.Status.Conditions = []corev1.PersistentVolumeClaimCondition{{
						Type: corev1.PersistentVolumeClaimFileSystemResizePending, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
				} else {
					pvc.Status.Capacity[corev1.ResourceStorage] = want
				}
				_ = k.c.Status().Update(ctx, pvc)
			}
		}
	}
	if gc {
		list := &appsv1.StatefulSetList{}
		if k.c.List(ctx, list, client.InNamespace(k.ns)) == nil {
			for i := range list.Items {
				k.orphan(ctx, &list.Items[i])
			}
		}
	}
}

// orphan does what the garbage collector does for a StatefulSet deleted
// with propagationPolicy Orphan: drop the owner references to it, then its
// orphan finalizer.
func (k *controllers) orphan(ctx context.Context, sts *appsv1.StatefulSet) {
	if sts.DeletionTimestamp == nil || !slices.Contains(sts.Finalizers, metav1.FinalizerOrphanDependents) {
		return
	}
	pods := &corev1.PodList{}
	if k.c.List(ctx, pods, client.InNamespace(k.ns)) != nil {
		return
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		var keep []metav1.OwnerReference
		for _, o := range p.OwnerReferences {
			if o.UID != sts.UID {
				keep = append(keep, o)
			}
		}
		if len(keep) != len(p.OwnerReferences) {
			p.OwnerReferences = keep
			if k.c.Update(ctx, p) != nil {
				return
			}
		}
	}
	var fins []string
	for _, f := range sts.Finalizers {
		if f != metav1.FinalizerOrphanDependents {
			fins = append(fins, f)
		}
	}
	sts.Finalizers = fins
	_ = k.c.Update(ctx, sts)
}

// database creates the 3-replica StatefulSet "db" with template data of
// class at 1Gi, its bound PVCs and its pods.
func database(t *testing.T, c client.Client, ns, class string) (*appsv1.StatefulSet, map[string]types.UID) {
	t.Helper()
	sts := withStorage(statefulSet(ns, "db", "", "nginx"), class, "1Gi")
	require.NoError(t, c.Create(context.Background(), sts))
	for i := range 3 {
		boundClaim(t, c, ns, rules.ClaimName("data", "db", i), class, "1Gi")
	}
	return sts, ownedPods(t, c, sts)
}

// updateTemplate sends sts with change applied, as a dry run first until
// the webhook's cache shows until (a substring of the error), then for real.
func updateTemplate(t *testing.T, c client.Client, sts *appsv1.StatefulSet, change func(*appsv1.StatefulSet), until string) error {
	t.Helper()
	var err error
	eventually(t, "the webhook to see the PVCs", func() bool {
		next := &appsv1.StatefulSet{}
		require.NoError(t, c.Get(context.Background(), client.ObjectKeyFromObject(sts), next))
		change(next)
		err = c.Update(context.Background(), next, client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), until)
	})
	next := &appsv1.StatefulSet{}
	require.NoError(t, c.Get(context.Background(), client.ObjectKeyFromObject(sts), next))
	change(next)
	return c.Update(context.Background(), next)
}

func setSize(size string) func(*appsv1.StatefulSet) {
	return func(s *appsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(size)
	}
}

func TestVolumeClaimTemplateResizeIsDeniedWithAPlan(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true)
	sts, _ := database(t, c, ns, class)

	err := updateTemplate(t, c, sts, setSize("5Gi"), "data-db-2")
	fields := invalidCauses(t, err, rules.VolumeClaimTemplateResize)
	assert.Equal(t, []string{"spec.volumeClaimTemplates[0].spec.resources.requests[storage]"}, fields)
	msg := err.Error()
	assert.Contains(t, msg, `StatefulSet.apps "db" is invalid: spec.volumeClaimTemplates[0].spec.resources.requests[storage]: Forbidden:`)
	assert.Contains(t, msg, "run: stsguard expand statefulset/db -n "+ns+" --template data --size 5Gi")
	for i := range 3 {
		assert.Contains(t, msg, rules.ClaimName("data", "db", i)+` (1Gi, StorageClass "`+class+`", can expand)`)
	}
	assert.NotContains(t, msg, "refuse")
}

func TestVolumeClaimTemplateShrinkAndOtherChangesAreDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true)
	sts := withStorage(statefulSet(ns, "db", "", "nginx"), class, "10Gi")
	require.NoError(t, c.Create(context.Background(), sts))

	err := updateTemplate(t, c, sts, setSize("5Gi"), rules.VolumeClaimTemplateShrink)
	assert.Equal(t, []string{"spec.volumeClaimTemplates[0].spec.resources.requests[storage]"}, invalidCauses(t, err, rules.VolumeClaimTemplateShrink))
	assert.Contains(t, err.Error(), `Invalid value: "5Gi": volumeClaimTemplate "data" was created with 10Gi: a PVC can never shrink`)

	err = updateTemplate(t, c, sts, func(s *appsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates[0].Spec.StorageClassName = ptr.To("other")
		s.Spec.VolumeClaimTemplates[0].Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}
	}, rules.VolumeClaimTemplateImmutable)
	assert.Equal(t, []string{"spec.volumeClaimTemplates[0].spec.accessModes[0]", "spec.volumeClaimTemplates[0].spec.storageClassName"},
		invalidCauses(t, err, rules.VolumeClaimTemplateImmutable))
	assert.Contains(t, err.Error(), "kubectl delete statefulset db -n "+ns+" --cascade=orphan")
}

func TestVolumeClaimTemplateResizeOnAClassThatCannotExpandIsDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, false)
	sts, _ := database(t, c, ns, class)

	err := updateTemplate(t, c, sts, setSize("5Gi"), "data-db-2")
	fields := invalidCauses(t, err, rules.StorageClassNotExpandable)
	assert.ElementsMatch(t, []string{
		"spec.volumeClaimTemplates[0].spec.resources.requests[storage]", // the PVCs
		"spec.volumeClaimTemplates[0].spec.resources.requests[storage]", // the plan
		"spec.volumeClaimTemplates[0].spec.storageClassName",            // the template
	}, fields)
	assert.Contains(t, err.Error(), `StorageClass "`+class+`" does not allow volume expansion`)
	assert.Contains(t, err.Error(), "it will refuse until")
}

func TestRecreatedStatefulSetOverSmallerPVCsWarns(t *testing.T) {
	c, w := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true)
	for i := range 2 {
		boundClaim(t, c, ns, rules.ClaimName("data", "db", i), class, "1Gi")
	}
	sts := withStorage(statefulSet(ns, "db", "", "nginx"), class, "2Gi")
	eventually(t, "the webhook to see the PVCs", func() bool {
		w.Take()
		require.NoError(t, c.Create(context.Background(), sts.DeepCopy(), client.DryRunAll))
		return strings.Contains(joined(w.Take()), "data-db-1")
	})
	require.NoError(t, c.Create(context.Background(), sts))
	got := joined(w.Take())
	assert.Contains(t, got,
		"spec.volumeClaimTemplates[0].spec.resources.requests[storage]: Invalid value: \"2Gi\": PVCs data-db-0 (1Gi), data-db-1 (1Gi) already exist under this StatefulSet's names and are smaller")
	assert.Contains(t, got, "stsguard expand statefulset/db -n "+ns+" --template data --size 2Gi [rule: pvc-smaller-than-template]")
}

// claimSizes returns the storage request and capacity of each PVC of db.
func claimSizes(t *testing.T, c client.Client, ns string) []string {
	t.Helper()
	var out []string
	for i := range 3 {
		pvc := &corev1.PersistentVolumeClaim{}
		require.NoError(t, c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: rules.ClaimName("data", "db", i)}, pvc))
		req := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		capacity := pvc.Status.Capacity[corev1.ResourceStorage]
		out = append(out, req.String()+"/"+capacity.String())
	}
	return out
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
	t.Cleanup(cancel)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if cond(ctx) {
					cancel()
					return
				}
			}
		}
	}()
	return ctx
}
