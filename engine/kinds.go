package engine

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kind names the Kubernetes kind a rule applies to, as "StatefulSet".
type Kind string

// The kinds stsguard admits.
const (
	// KindStatefulSet is apps/v1 StatefulSet.
	KindStatefulSet Kind = "StatefulSet"
	// KindService is core/v1 Service.
	KindService Kind = "Service"
	// KindSecret is core/v1 Secret.
	KindSecret Kind = "Secret"
)

// The kinds stsguard reads as context: Lookup serves them, no rule judges
// them.
const (
	// KindStorageClass is storage.k8s.io/v1 StorageClass (cluster-scoped).
	KindStorageClass Kind = "StorageClass"
	// KindNamespace is core/v1 Namespace, read for namespaceSelector exemptions.
	KindNamespace Kind = "Namespace"
	// KindPersistentVolumeClaim is core/v1 PersistentVolumeClaim.
	KindPersistentVolumeClaim Kind = "PersistentVolumeClaim"
)

// APIObject is a typed API object: what controller-runtime calls a
// client.Object.
type APIObject interface {
	metav1.Object
	runtime.Object
}

// KindInfo describes one kind stsguard reads.
type KindInfo struct {
	// Kind is the kind's name, as "StatefulSet".
	Kind Kind
	// GroupVersionKind is the version stsguard reads (apps/v1 StatefulSet).
	GroupVersionKind schema.GroupVersionKind
	// Resource is the kind's resource (plural, lower case: "statefulsets").
	Resource string
	// Namespaced is false for a cluster-scoped kind.
	Namespaced bool
	// Judged is true for the kinds stsguard's webhooks admit and its
	// rules judge (Admit's Request.Kind); false for those read as context.
	Judged bool
	// JudgedOnDelete is true for an admitted kind whose rules judge DELETE
	// (the object is then the request's oldObject).
	JudgedOnDelete bool
	// New returns an empty object of the kind's Go type.
	New func() APIObject
	// NewList returns an empty list of the kind (for List calls).
	NewList func() runtime.Object
}

// Kinds is every kind stsguard reads, judged kinds first: the one table the
// server's informers, audit --cluster's listing, the manifest reader and
// the in-memory Lookup (lookup.Objects) are built from. It is fixed at
// build time: callers must not modify it.
var Kinds = []KindInfo{
	{Kind: KindStatefulSet, Resource: "statefulsets", GroupVersionKind: appsv1.SchemeGroupVersion.WithKind("StatefulSet"), Namespaced: true, Judged: true,
		New: func() APIObject { return &appsv1.StatefulSet{} }, NewList: func() runtime.Object { return &appsv1.StatefulSetList{} }},
	{Kind: KindService, Resource: "services", GroupVersionKind: corev1.SchemeGroupVersion.WithKind("Service"), Namespaced: true, Judged: true, JudgedOnDelete: true,
		New: func() APIObject { return &corev1.Service{} }, NewList: func() runtime.Object { return &corev1.ServiceList{} }},
	{Kind: KindSecret, Resource: "secrets", GroupVersionKind: corev1.SchemeGroupVersion.WithKind("Secret"), Namespaced: true, Judged: true, JudgedOnDelete: true,
		New: func() APIObject { return &corev1.Secret{} }, NewList: func() runtime.Object { return &corev1.SecretList{} }},
	{Kind: KindPersistentVolumeClaim, Resource: "persistentvolumeclaims", GroupVersionKind: corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"), Namespaced: true,
		New: func() APIObject { return &corev1.PersistentVolumeClaim{} }, NewList: func() runtime.Object { return &corev1.PersistentVolumeClaimList{} }},
	{Kind: KindStorageClass, Resource: "storageclasses", GroupVersionKind: storagev1.SchemeGroupVersion.WithKind("StorageClass"),
		New: func() APIObject { return &storagev1.StorageClass{} }, NewList: func() runtime.Object { return &storagev1.StorageClassList{} }},
	{Kind: KindNamespace, Resource: "namespaces", GroupVersionKind: corev1.SchemeGroupVersion.WithKind("Namespace"),
		New: func() APIObject { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} }},
}

// GroupResource returns the kind's group and resource, as NotFound errors
// name them.
func (k *KindInfo) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: k.GroupVersionKind.Group, Resource: k.Resource}
}

// KindOf returns the entry of Kinds for obj's Go type (*appsv1.StatefulSet,
// ...), and false for a type stsguard does not read.
func KindOf(obj any) (KindInfo, bool) {
	if i, ok := kindByType[reflect.TypeOf(obj)]; ok {
		return Kinds[i], true
	}
	return KindInfo{}, false
}

// kindByType indexes Kinds by the Go type of New's objects.
var kindByType = func() map[reflect.Type]int {
	m := make(map[reflect.Type]int, len(Kinds))
	for i, k := range Kinds {
		m[reflect.TypeOf(k.New())] = i
	}
	return m
}()

// LookupKind returns the entry of Kinds named kind, and false for a kind
// stsguard does not read.
func LookupKind(kind Kind) (KindInfo, bool) {
	for _, k := range Kinds {
		if k.Kind == kind {
			return k, true
		}
	}
	return KindInfo{}, false
}

// judgedKinds returns the kinds of Kinds that the rules judge, in order.
func judgedKinds() []Kind {
	var out []Kind
	for _, k := range Kinds {
		if k.Judged {
			out = append(out, k.Kind)
		}
	}
	return out
}
