// Package lookuptest implements engine.Lookup over an in-memory set of
// typed objects, for the tests of the rules, the webhook and the lookup
// package. Production code reads the informer cache (package lookup) or,
// in audit, the replayed manifests.
package lookuptest

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stsguard/stsguard/internal/podrefs"
	"github.com/stsguard/stsguard/kinds"
)

// Objects is a Lookup over an in-memory set of objects of the kinds the
// rules read (kinds.All()). Build it with NewObjects; it is not safe for
// concurrent Add.
type Objects struct {
	// byKind holds each kind's objects by namespace ("" for a
	// cluster-scoped kind).
	byKind map[kinds.Kind]map[string]*namespaceObjects
}

// namespaceObjects are the objects of one kind in one namespace, in the
// order added.
type namespaceObjects struct {
	list   []kinds.Object
	byName map[string]int // index into list
}

// NewObjects returns a Lookup over objs (see Add).
func NewObjects(objs ...runtime.Object) (*Objects, error) {
	o := &Objects{byKind: map[kinds.Kind]map[string]*namespaceObjects{}}
	for _, obj := range objs {
		if err := o.Add(obj); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// MustObjects is NewObjects for tests: it panics on an unsupported object.
func MustObjects(objs ...runtime.Object) *Objects {
	o, err := NewObjects(objs...)
	if err != nil {
		panic(err)
	}
	return o
}

// Add adds a typed object of a kind of kinds.All() (*appsv1.StatefulSet,
// *corev1.Service, *corev1.Secret, *corev1.PersistentVolumeClaim,
// *storagev1.StorageClass, *corev1.Namespace); an object with the same
// kind, namespace and name replaces the earlier one, in its place. Any
// other type is an error. The objects are kept, not copied.
func (o *Objects) Add(obj runtime.Object) error {
	k, ok := kinds.Of(obj)
	if !ok {
		return fmt.Errorf("lookup: %T is not a kind the rules read", obj)
	}
	a := obj.(kinds.Object)
	byNS := o.byKind[k.Kind]
	if byNS == nil {
		byNS = map[string]*namespaceObjects{}
		o.byKind[k.Kind] = byNS
	}
	ns := a.GetNamespace()
	if !k.Namespaced {
		ns = ""
	}
	objs := byNS[ns]
	if objs == nil {
		objs = &namespaceObjects{byName: map[string]int{}}
		byNS[ns] = objs
	}
	if i, ok := objs.byName[a.GetName()]; ok {
		objs.list[i] = a
		return nil
	}
	objs.byName[a.GetName()] = len(objs.list)
	objs.list = append(objs.list, a)
	return nil
}

// get returns the object of kind namespace/name, or a NotFound error.
func get[T kinds.Object](o *Objects, kind kinds.Kind, namespace, name string) (T, error) {
	if objs := o.byKind[kind][namespace]; objs != nil {
		if i, ok := objs.byName[name]; ok {
			return objs.list[i].(T), nil
		}
	}
	var zero T
	k, _ := kinds.Get(kind)
	return zero, apierrors.NewNotFound(k.GroupResource(), name)
}

// list returns the objects of kind in namespace, in the order added.
func list[T kinds.Object](o *Objects, kind kinds.Kind, namespace string) []T {
	objs := o.byKind[kind][namespace]
	if objs == nil {
		return nil
	}
	out := make([]T, len(objs.list))
	for i, obj := range objs.list {
		out[i] = obj.(T)
	}
	return out
}

// Service returns the Service namespace/name or a NotFound error.
func (o *Objects) Service(_ context.Context, namespace, name string) (*corev1.Service, error) {
	return get[*corev1.Service](o, kinds.Service, namespace, name)
}

// Secret returns the Secret namespace/name or a NotFound error.
func (o *Objects) Secret(_ context.Context, namespace, name string) (*corev1.Secret, error) {
	return get[*corev1.Secret](o, kinds.Secret, namespace, name)
}

// StatefulSets returns the StatefulSets of namespace in the order added.
func (o *Objects) StatefulSets(_ context.Context, namespace string) ([]*appsv1.StatefulSet, error) {
	return list[*appsv1.StatefulSet](o, kinds.StatefulSet, namespace), nil
}

// StatefulSetsReferencingSecret returns the StatefulSets of namespace whose
// pod template references Secret secret, in the order added. It filters
// the namespace's StatefulSets on every call: Objects holds a manifest set
// or a test's objects, not a cluster's.
func (o *Objects) StatefulSetsReferencingSecret(_ context.Context, namespace, secret string) ([]*appsv1.StatefulSet, error) {
	return podrefs.StatefulSetsReferencing(list[*appsv1.StatefulSet](o, kinds.StatefulSet, namespace), secret), nil
}

// StorageClass returns the StorageClass name or a NotFound error.
func (o *Objects) StorageClass(_ context.Context, name string) (*storagev1.StorageClass, error) {
	return get[*storagev1.StorageClass](o, kinds.StorageClass, "", name)
}

// StorageClasses returns every StorageClass, in the order added.
func (o *Objects) StorageClasses(_ context.Context) ([]*storagev1.StorageClass, error) {
	return list[*storagev1.StorageClass](o, kinds.StorageClass, ""), nil
}

// Namespace returns the Namespace name or a NotFound error.
func (o *Objects) Namespace(_ context.Context, name string) (*corev1.Namespace, error) {
	return get[*corev1.Namespace](o, kinds.Namespace, "", name)
}

// PersistentVolumeClaims returns the PVCs of namespace in the order added.
func (o *Objects) PersistentVolumeClaims(_ context.Context, namespace string) ([]*corev1.PersistentVolumeClaim, error) {
	return list[*corev1.PersistentVolumeClaim](o, kinds.PersistentVolumeClaim, namespace), nil
}
