// Package kinds is the one table of the Kubernetes kinds stsguard reads:
// the kinds its webhooks admit and its rules judge (StatefulSet, Service,
// Secret) and those read as context (PersistentVolumeClaim, StorageClass,
// Namespace), with their group, version, resource and Go types. The
// server's informers, audit --cluster's listing, the manifest reader and
// the in-memory lookup are built from it.
package kinds

import (
	"reflect"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kind names a Kubernetes kind, as "StatefulSet".
type Kind string

// The kinds stsguard admits.
const (
	// StatefulSet is apps/v1 StatefulSet.
	StatefulSet Kind = "StatefulSet"
	// Service is core/v1 Service.
	Service Kind = "Service"
	// Secret is core/v1 Secret.
	Secret Kind = "Secret"
)

// The kinds stsguard reads as context: Lookup serves them, no rule judges
// them.
const (
	// StorageClass is storage.k8s.io/v1 StorageClass (cluster-scoped).
	StorageClass Kind = "StorageClass"
	// Namespace is core/v1 Namespace, read for namespaceSelector exemptions.
	Namespace Kind = "Namespace"
	// PersistentVolumeClaim is core/v1 PersistentVolumeClaim.
	PersistentVolumeClaim Kind = "PersistentVolumeClaim"
)

// Object is a typed API object: what controller-runtime calls a
// client.Object.
type Object interface {
	metav1.Object
	runtime.Object
}

// Info describes one kind stsguard reads.
type Info struct {
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
	New func() Object
	// NewList returns an empty list of the kind (for List calls).
	NewList func() runtime.Object
}

// table is every kind stsguard reads, judged kinds first.
var table = []Info{
	{Kind: StatefulSet, Resource: "statefulsets", GroupVersionKind: appsv1.SchemeGroupVersion.WithKind("StatefulSet"), Namespaced: true, Judged: true,
		New: func() Object { return &appsv1.StatefulSet{} }, NewList: func() runtime.Object { return &appsv1.StatefulSetList{} }},
	{Kind: Service, Resource: "services", GroupVersionKind: corev1.SchemeGroupVersion.WithKind("Service"), Namespaced: true, Judged: true, JudgedOnDelete: true,
		New: func() Object { return &corev1.Service{} }, NewList: func() runtime.Object { return &corev1.ServiceList{} }},
	{Kind: Secret, Resource: "secrets", GroupVersionKind: corev1.SchemeGroupVersion.WithKind("Secret"), Namespaced: true, Judged: true, JudgedOnDelete: true,
		New: func() Object { return &corev1.Secret{} }, NewList: func() runtime.Object { return &corev1.SecretList{} }},
	{Kind: PersistentVolumeClaim, Resource: "persistentvolumeclaims", GroupVersionKind: corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"), Namespaced: true,
		New: func() Object { return &corev1.PersistentVolumeClaim{} }, NewList: func() runtime.Object { return &corev1.PersistentVolumeClaimList{} }},
	{Kind: StorageClass, Resource: "storageclasses", GroupVersionKind: storagev1.SchemeGroupVersion.WithKind("StorageClass"),
		New: func() Object { return &storagev1.StorageClass{} }, NewList: func() runtime.Object { return &storagev1.StorageClassList{} }},
	{Kind: Namespace, Resource: "namespaces", GroupVersionKind: corev1.SchemeGroupVersion.WithKind("Namespace"),
		New: func() Object { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} }},
}

// All returns every kind stsguard reads, judged kinds first, in a new slice
// each call.
func All() []Info { return slices.Clone(table) }

// GroupResource returns the kind's group and resource, as NotFound errors
// name them.
func (k *Info) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: k.GroupVersionKind.Group, Resource: k.Resource}
}

// Of returns the entry of the table for obj's Go type (*appsv1.StatefulSet,
// ...), and false for a type stsguard does not read.
func Of(obj any) (Info, bool) {
	if i, ok := byType[reflect.TypeOf(obj)]; ok {
		return table[i], true
	}
	return Info{}, false
}

// byType indexes the table by the Go type of New's objects.
var byType = func() map[reflect.Type]int {
	m := make(map[reflect.Type]int, len(table))
	for i, k := range table {
		m[reflect.TypeOf(k.New())] = i
	}
	return m
}()

// Get returns the entry of the table named kind, and false for a kind
// stsguard does not read.
func Get(kind Kind) (Info, bool) {
	for _, k := range table {
		if k.Kind == kind {
			return k, true
		}
	}
	return Info{}, false
}

// Judged returns the kinds that stsguard's rules judge, in table order.
func Judged() []Kind {
	var out []Kind
	for _, k := range table {
		if k.Judged {
			out = append(out, k.Kind)
		}
	}
	return out
}
