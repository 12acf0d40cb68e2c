package background

import (
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/internal/podrefs"
	"github.com/stsguard/stsguard/kinds"
)

// key names one judged object: a StatefulSet, Service or Secret.
type key struct {
	Kind      kinds.Kind
	Namespace string
	Name      string
}

// statefulSetDependents are the objects whose findings may change when
// StatefulSet sts changes: itself, the Service its spec.serviceName names
// (headless-service-not-headless judges a Service by the StatefulSets
// naming it) and the Secrets its pod template references (weak-password
// judges a Secret key by the StatefulSets using it).
func statefulSetDependents(sts *appsv1.StatefulSet) []key {
	out := []key{{kinds.StatefulSet, sts.Namespace, sts.Name}}
	if sts.Spec.ServiceName != "" {
		out = append(out, key{kinds.Service, sts.Namespace, sts.Spec.ServiceName})
	}
	for _, s := range podrefs.SecretNames(&sts.Spec.Template.Spec) {
		out = append(out, key{kinds.Secret, sts.Namespace, s})
	}
	return out
}

// statefulSetChanged reports whether an update from old to cur can change
// any finding: a new generation (spec), labels or annotations (exemptions);
// not a status update, which the StatefulSet controller makes at every
// pod's start.
func statefulSetChanged(old, cur *appsv1.StatefulSet) bool {
	return old.Generation != cur.Generation || cur.Generation == 0 && !equality.Semantic.DeepEqual(old.Spec, cur.Spec) ||
		!equality.Semantic.DeepEqual(old.Labels, cur.Labels) || !equality.Semantic.DeepEqual(old.Annotations, cur.Annotations)
}

// namesService reports whether sts names Service svc (same namespace).
func namesService(sts *appsv1.StatefulSet, svc *corev1.Service) bool {
	return sts.Namespace == svc.Namespace && sts.Spec.ServiceName == svc.Name
}

// usesStorageClass reports whether a volumeClaimTemplate of sts names
// class, or names none (the default class, which class may have become or
// stopped being).
func usesStorageClass(sts *appsv1.StatefulSet, class *storagev1.StorageClass) bool {
	return slices.ContainsFunc(sts.Spec.VolumeClaimTemplates, func(t corev1.PersistentVolumeClaim) bool {
		return t.Spec.StorageClassName == nil || *t.Spec.StorageClassName == class.Name
	})
}

// ownsClaim reports whether PVC claim has the name the StatefulSet
// controller gives the claims of sts (<template>-<statefulset>-<ordinal>),
// which pvc-smaller-than-template reads.
func ownsClaim(sts *appsv1.StatefulSet, claim *corev1.PersistentVolumeClaim) bool {
	if sts.Namespace != claim.Namespace {
		return false
	}
	return slices.ContainsFunc(sts.Spec.VolumeClaimTemplates, func(t corev1.PersistentVolumeClaim) bool {
		return strings.HasPrefix(claim.Name, t.Name+"-"+sts.Name+"-")
	})
}

// forEach calls f with each item of list.
func forEach(list client.ObjectList, f func(client.Object)) error {
	return meta.EachListItem(list, func(o runtime.Object) error {
		if obj, ok := o.(client.Object); ok {
			f(obj)
		}
		return nil
	})
}
