package audit

import (
	"encoding/json"
	"maps"
	"reflect"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/secretdata"
)

// lastAppliedAnnotation is where kubectl apply records the configuration it
// applied (k8s.io/api/core/v1.LastAppliedConfigAnnotation).
const lastAppliedAnnotation = corev1.LastAppliedConfigAnnotation

// object is a typed API object the replay stores and merges.
type object interface {
	engine.Object
	runtime.Object
}

// merge returns the object `kubectl apply` (client-side, its default) sends
// to update prev.obj with the manifest object obj: the three-way strategic
// merge patch (k8s.io/apimachinery/pkg/util/strategicpatch, as kubectl's
// patcher computes it, overwriting conflicts) of the configuration applied
// last, obj and the stored object, applied to the stored object as the
// apiserver applies it. The configuration applied last is the manifest
// applied earlier in this replay, else the stored object's
// kubectl.kubernetes.io/last-applied-configuration, else none (then no
// field is removed, as kubectl does for an object it did not create). The
// status and the metadata the apiserver sets stay those of the stored
// object, and a Service keeps its cluster IP, which cannot change once set.
// If the patch cannot be computed (a last-applied annotation that is not
// JSON), it is computed without it; failing that, obj is sent as written.
func merge[T object](prev *stored[T], obj T) T {
	var original []byte
	if prev.applied != nil {
		original, _ = json.Marshal(prev.applied.Object)
	} else if a, ok := prev.obj.GetAnnotations()[lastAppliedAnnotation]; ok {
		original = []byte(a)
	}
	out, err := threeWay(original, obj, prev.obj)
	if err != nil && original != nil {
		out, err = threeWay(nil, obj, prev.obj)
	}
	if err != nil {
		out = obj.DeepCopyObject().(T)
	}
	cur := prev.obj
	out.SetUID(cur.GetUID())
	out.SetResourceVersion(cur.GetResourceVersion())
	out.SetGeneration(cur.GetGeneration())
	out.SetCreationTimestamp(cur.GetCreationTimestamp())
	out.SetManagedFields(cur.GetManagedFields())
	switch o := any(out).(type) {
	case *appsv1.StatefulSet:
		o.Status = any(cur).(*appsv1.StatefulSet).Status
	case *corev1.Service:
		c := any(cur).(*corev1.Service)
		o.Status = c.Status
		if c.Spec.ClusterIP != "" || prev.allocated || len(c.Spec.ClusterIPs) > 0 {
			o.Spec.ClusterIP, o.Spec.ClusterIPs = c.Spec.ClusterIP, c.Spec.ClusterIPs
		}
	}
	return out
}

// threeWay computes and applies the patch of merge.
func threeWay[T object](original []byte, modified, current T) (T, error) {
	var zero T
	mod, err := json.Marshal(modified)
	if err != nil {
		return zero, err
	}
	cur, err := json.Marshal(current)
	if err != nil {
		return zero, err
	}
	meta, err := strategicpatch.NewPatchMetaFromStruct(current)
	if err != nil {
		return zero, err
	}
	patch, err := strategicpatch.CreateThreeWayMergePatch(original, mod, cur, meta, true)
	if err != nil {
		return zero, err
	}
	merged, err := strategicpatch.StrategicMergePatchUsingLookupPatchMeta(cur, patch, meta)
	if err != nil {
		return zero, err
	}
	out := reflect.New(reflect.TypeFor[T]().Elem()).Interface().(T)
	if err := json.Unmarshal(merged, out); err != nil {
		return zero, err
	}
	return out, nil
}

// defaultClaimTemplates sets on each volumeClaimTemplate of sts what the
// apiserver sets on every StatefulSet it is sent, before admission: the
// apiVersion and kind it stores with each template, spec.volumeMode
// Filesystem when unset and status.phase Pending (k8s.io/kubernetes
// pkg/apis/apps/v1 SetDefaults_StatefulSet, with core/v1's
// SetDefaults_PersistentVolumeClaimSpec). The volumeClaimTemplate rules
// compare templates whole, and kubectl's strategic merge replaces the list
// whole (it has no merge key), so a replayed UPDATE must carry them as the
// stored object does, or every re-apply would look like a template change.
func defaultClaimTemplates(sts *appsv1.StatefulSet) {
	if !needsClaimDefaults(sts) {
		return
	}
	for i := range sts.Spec.VolumeClaimTemplates {
		t := &sts.Spec.VolumeClaimTemplates[i]
		if t.APIVersion == "" && t.Kind == "" {
			t.APIVersion, t.Kind = "v1", "PersistentVolumeClaim"
		}
		if t.Spec.VolumeMode == nil {
			mode := corev1.PersistentVolumeFilesystem
			t.Spec.VolumeMode = &mode
		}
		if t.Status.Phase == "" {
			t.Status.Phase = corev1.ClaimPending
		}
	}
}

// needsClaimDefaults reports whether defaultClaimTemplates would change sts.
func needsClaimDefaults(sts *appsv1.StatefulSet) bool {
	for _, t := range sts.Spec.VolumeClaimTemplates {
		if t.APIVersion == "" && t.Kind == "" || t.Spec.VolumeMode == nil || t.Status.Phase == "" {
			return true
		}
	}
	return false
}

// sent reports whether the apiserver calls stsguard's webhooks for in, as
// the matchCondition changes-what-stsguard-judges of the webhook
// configurations decides (charts/stsguard/templates/_helpers.tpl): every
// CREATE and DELETE, and an UPDATE that changes what a rule reads (the spec
// of a StatefulSet or Service; a Secret's data, stringData or type) or an
// stsguard.io/ annotation. An UPDATE not sent is admitted as it is, with no
// finding.
func sent[T engine.Object](in *engine.Input[T]) bool {
	if in.Operation != admissionv1.Update || !sameStsguardAnnotations(in.Object.GetAnnotations(), in.OldObject.GetAnnotations()) {
		return true
	}
	switch o := any(in.Object).(type) {
	case *appsv1.StatefulSet:
		return !equality.Semantic.DeepEqual(o.Spec, any(in.OldObject).(*appsv1.StatefulSet).Spec)
	case *corev1.Service:
		return !equality.Semantic.DeepEqual(o.Spec, any(in.OldObject).(*corev1.Service).Spec)
	case *corev1.Secret:
		old := any(in.OldObject).(*corev1.Secret)
		// A live Secret holds digests (LoadCluster trims it), the manifest values.
		return len(o.StringData) > 0 || o.Type != old.Type || !secretdata.SameData(o, old)
	}
	return true
}

// sameStsguardAnnotations reports whether a and b hold the same
// stsguard.io/ annotations with the same values.
func sameStsguardAnnotations(a, b map[string]string) bool {
	ours := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if strings.HasPrefix(k, "stsguard.io/") {
				out[k] = v
			}
		}
		return out
	}
	return maps.Equal(ours(a), ours(b))
}
