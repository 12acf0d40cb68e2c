package lookup

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Reader is a Lookup over controller-runtime readers for one admission
// request.
//
// Cache serves every read: the manager's informer cache, configured with
// ReaderFailOnMissingInformer so that a read never starts an informer or
// calls the API. When Cache says a Service or Secret does not exist and Live
// is set, Live (an uncached client) is asked once more: an object created a
// moment ago (the Secret the mutating webhook just wrote, the Service that
// kubectl apply sent just before the StatefulSet) may not have reached the
// cache yet. A missing object is rare, so this costs an API call only where
// a wrong answer would otherwise warn or deny.
type Reader struct {
	Ctx   context.Context
	Cache client.Reader
	Live  client.Reader
}

// Service returns the Service namespace/name, or a NotFound error.
func (r Reader) Service(namespace, name string) (*corev1.Service, error) {
	svc := &corev1.Service{}
	if err := r.get(namespace, name, svc); err != nil {
		return nil, err
	}
	return svc, nil
}

// Secret returns the Secret namespace/name, or a NotFound error.
func (r Reader) Secret(namespace, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := r.get(namespace, name, s); err != nil {
		return nil, err
	}
	return s, nil
}

func (r Reader) get(namespace, name string, obj client.Object) error {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	err := r.Cache.Get(r.Ctx, key, obj)
	if apierrors.IsNotFound(err) && r.Live != nil {
		return r.Live.Get(r.Ctx, key, obj)
	}
	return err
}

// StatefulSets returns the StatefulSets of namespace from Cache.
func (r Reader) StatefulSets(namespace string) ([]*appsv1.StatefulSet, error) {
	list := &appsv1.StatefulSetList{}
	if err := r.Cache.List(r.Ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	out := make([]*appsv1.StatefulSet, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// StorageClass returns the StorageClass name from Cache, or a NotFound error.
func (r Reader) StorageClass(name string) (*storagev1.StorageClass, error) {
	sc := &storagev1.StorageClass{}
	if err := r.Cache.Get(r.Ctx, types.NamespacedName{Name: name}, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// StorageClasses returns every StorageClass from Cache.
func (r Reader) StorageClasses() ([]*storagev1.StorageClass, error) {
	list := &storagev1.StorageClassList{}
	if err := r.Cache.List(r.Ctx, list); err != nil {
		return nil, err
	}
	out := make([]*storagev1.StorageClass, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// Namespace returns the Namespace name from Cache, or a NotFound error.
func (r Reader) Namespace(name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	if err := r.Cache.Get(r.Ctx, types.NamespacedName{Name: name}, ns); err != nil {
		return nil, err
	}
	return ns, nil
}

// PersistentVolumeClaims returns the PVCs of namespace from Cache.
func (r Reader) PersistentVolumeClaims(namespace string) ([]*corev1.PersistentVolumeClaim, error) {
	list := &corev1.PersistentVolumeClaimList{}
	if err := r.Cache.List(r.Ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	out := make([]*corev1.PersistentVolumeClaim, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}
