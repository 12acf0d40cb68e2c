// Package lookup implements engine.Lookup, the read-only view of the objects
// that rules reference: over an in-memory set of objects (manifests, tests)
// and over controller-runtime readers (the informer cache of the webhook
// server, with a bounded live read, Live, when the cache may not have
// caught up).
package lookup

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stsguard/stsguard/internal/podrefs"
)

// Objects is a Lookup over an in-memory set of objects. Build it with
// NewObjects; it is not safe for concurrent Add.
type Objects struct {
	services       map[string]*corev1.Service
	secrets        map[string]*corev1.Secret
	statefulSets   map[string][]*appsv1.StatefulSet // by namespace
	storageClasses map[string]*storagev1.StorageClass
	namespaces     map[string]*corev1.Namespace
	claims         map[string][]*corev1.PersistentVolumeClaim // by namespace
}

// NewObjects returns a Lookup over objs (see Add).
func NewObjects(objs ...runtime.Object) (*Objects, error) {
	o := &Objects{
		services:       map[string]*corev1.Service{},
		secrets:        map[string]*corev1.Secret{},
		statefulSets:   map[string][]*appsv1.StatefulSet{},
		storageClasses: map[string]*storagev1.StorageClass{},
		namespaces:     map[string]*corev1.Namespace{},
		claims:         map[string][]*corev1.PersistentVolumeClaim{},
	}
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

// Add adds a typed *corev1.Service, *corev1.Secret, *appsv1.StatefulSet,
// *storagev1.StorageClass, *corev1.Namespace or
// *corev1.PersistentVolumeClaim; an object with the same
// namespace and name replaces the earlier one. Any other type is an error.
// The objects are kept, not copied.
func (o *Objects) Add(obj runtime.Object) error {
	switch v := obj.(type) {
	case *corev1.Service:
		o.services[v.Namespace+"/"+v.Name] = v
	case *corev1.Secret:
		o.secrets[v.Namespace+"/"+v.Name] = v
	case *appsv1.StatefulSet:
		list := o.statefulSets[v.Namespace]
		for i, have := range list {
			if have.Name == v.Name {
				list[i] = v
				return nil
			}
		}
		o.statefulSets[v.Namespace] = append(list, v)
	case *storagev1.StorageClass:
		o.storageClasses[v.Name] = v
	case *corev1.Namespace:
		o.namespaces[v.Name] = v
	case *corev1.PersistentVolumeClaim:
		list := o.claims[v.Namespace]
		for i, have := range list {
			if have.Name == v.Name {
				list[i] = v
				return nil
			}
		}
		o.claims[v.Namespace] = append(list, v)
	default:
		return fmt.Errorf("lookup: %T is not a kind the rules read", obj)
	}
	return nil
}

// Service returns the Service namespace/name or a NotFound error.
func (o *Objects) Service(_ context.Context, namespace, name string) (*corev1.Service, error) {
	if s, ok := o.services[namespace+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("services"), name)
}

// Secret returns the Secret namespace/name or a NotFound error.
func (o *Objects) Secret(_ context.Context, namespace, name string) (*corev1.Secret, error) {
	if s, ok := o.secrets[namespace+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
}

// StatefulSets returns the StatefulSets of namespace in the order added.
func (o *Objects) StatefulSets(_ context.Context, namespace string) ([]*appsv1.StatefulSet, error) {
	return o.statefulSets[namespace], nil
}

// StatefulSetsReferencingSecret returns the StatefulSets of namespace whose
// pod template references Secret secret, in the order added. It filters
// the namespace's StatefulSets on every call: Objects holds a manifest set
// or a test's objects, not a cluster's.
func (o *Objects) StatefulSetsReferencingSecret(_ context.Context, namespace, secret string) ([]*appsv1.StatefulSet, error) {
	return podrefs.StatefulSetsReferencing(o.statefulSets[namespace], secret), nil
}

// StorageClass returns the StorageClass name or a NotFound error.
func (o *Objects) StorageClass(_ context.Context, name string) (*storagev1.StorageClass, error) {
	if s, ok := o.storageClasses[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(storagev1.Resource("storageclasses"), name)
}

// StorageClasses returns every StorageClass, in no particular order.
func (o *Objects) StorageClasses(_ context.Context) ([]*storagev1.StorageClass, error) {
	out := make([]*storagev1.StorageClass, 0, len(o.storageClasses))
	for _, s := range o.storageClasses {
		out = append(out, s)
	}
	return out, nil
}

// Namespace returns the Namespace name or a NotFound error.
func (o *Objects) Namespace(_ context.Context, name string) (*corev1.Namespace, error) {
	if n, ok := o.namespaces[name]; ok {
		return n, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), name)
}

// PersistentVolumeClaims returns the PVCs of namespace in the order added.
func (o *Objects) PersistentVolumeClaims(_ context.Context, namespace string) ([]*corev1.PersistentVolumeClaim, error) {
	return o.claims[namespace], nil
}
