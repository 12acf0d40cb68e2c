package lookup

import (
	"context"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/podrefs"
)

// Reader is a Lookup over controller-runtime readers for one admission
// request.
//
// Cache serves every read: the manager's informer cache, configured with
// ReaderFailOnMissingInformer so that a read never starts an informer or
// calls the API. When Cache says a Service or Secret does not exist and Live
// is set, Live may read it from the API (see Live for when, and its
// bounds): an object created a moment ago may not have reached the cache
// yet. Without Live, or when Live makes no read, the cache's NotFound
// stands. Every other kind is read from Cache alone.
//
// A Reader is a value; copies share Live, so the request's one live read is
// shared too.
type Reader struct {
	Cache client.Reader
	// Live is this request's share of live reads, from Live.ForRequest; nil
	// reads the cache alone.
	Live *LiveRequest
}

// Service returns the Service namespace/name, or a NotFound error.
func (r Reader) Service(ctx context.Context, namespace, name string) (*corev1.Service, error) {
	obj, err := r.get(ctx, "Service", namespace, name, func() client.Object { return &corev1.Service{} })
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Service), nil
}

// Secret returns the Secret namespace/name, or a NotFound error.
func (r Reader) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	obj, err := r.get(ctx, "Secret", namespace, name, func() client.Object { return &corev1.Secret{} })
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Secret), nil
}

// get reads kind namespace/name from Cache and, on NotFound, from Live.
func (r Reader) get(ctx context.Context, kind, namespace, name string, newObj func() client.Object) (client.Object, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	obj := newObj()
	err := r.Cache.Get(ctx, key, obj)
	if err == nil {
		return obj, nil
	}
	if apierrors.IsNotFound(err) && r.Live != nil {
		if live := r.Live.get(ctx, kind, key, newObj); live != nil {
			return live, nil
		}
	}
	return nil, err
}

// StatefulSets returns the StatefulSets of namespace from Cache.
func (r Reader) StatefulSets(ctx context.Context, namespace string) ([]*appsv1.StatefulSet, error) {
	list := &appsv1.StatefulSetList{}
	if err := r.Cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	out := make([]*appsv1.StatefulSet, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// SecretIndex is the name of the field index of StatefulSets by the Secrets
// their pod template references (podrefs.SecretNames), which
// StatefulSetsReferencingSecret reads. IndexSecrets registers it.
const SecretIndex = "stsguard.podTemplateSecrets"

// IndexSecrets registers SecretIndex on StatefulSets with indexer, the
// manager's field indexer; it must be called before the cache starts.
func IndexSecrets(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, &appsv1.StatefulSet{}, SecretIndex, statefulSetSecrets)
}

// statefulSetSecrets is the client.IndexerFunc of SecretIndex.
func statefulSetSecrets(obj client.Object) []string {
	sts, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return nil
	}
	return podrefs.SecretNames(&sts.Spec.Template.Spec)
}

// StatefulSetsReferencingSecret returns the StatefulSets of namespace whose
// pod template references Secret secret, from Cache's SecretIndex (see
// IndexSecrets), so that its cost is that of the StatefulSets it returns,
// not of those in the namespace.
//
// When Cache has no such index (a cache without IndexSecrets, or a live
// client, as the expand command passes, for which the index is an
// unsupported field selector), it falls back to listing the namespace's
// StatefulSets and keeping those that reference the Secret.
func (r Reader) StatefulSetsReferencingSecret(ctx context.Context, namespace, secret string) ([]*appsv1.StatefulSet, error) {
	list := &appsv1.StatefulSetList{}
	err := r.Cache.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{SecretIndex: secret})
	if err != nil && noIndex(err) {
		all, err := r.StatefulSets(ctx, namespace)
		if err != nil {
			return nil, err
		}
		return podrefs.StatefulSetsReferencing(all, secret), nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]*appsv1.StatefulSet, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// noIndex reports whether err is a List's failure for want of SecretIndex:
// the apiserver's 400 for an unsupported field selector, or the "index with
// name ... does not exist" (informer cache) or "no index with name ... has
// been registered" (fake client) of controller-runtime.
func noIndex(err error) bool {
	return apierrors.IsBadRequest(err) || strings.Contains(strings.ToLower(err.Error()), "index with name")
}

// StorageClass returns the StorageClass name from Cache, or a NotFound error.
func (r Reader) StorageClass(ctx context.Context, name string) (*storagev1.StorageClass, error) {
	sc := &storagev1.StorageClass{}
	if err := r.Cache.Get(ctx, types.NamespacedName{Name: name}, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// StorageClasses returns every StorageClass from Cache.
func (r Reader) StorageClasses(ctx context.Context) ([]*storagev1.StorageClass, error) {
	list := &storagev1.StorageClassList{}
	if err := r.Cache.List(ctx, list); err != nil {
		return nil, err
	}
	out := make([]*storagev1.StorageClass, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// Namespace returns the Namespace name from Cache, or a NotFound error.
func (r Reader) Namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	if err := r.Cache.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
		return nil, err
	}
	return ns, nil
}

// PersistentVolumeClaims returns the PVCs of namespace from Cache.
func (r Reader) PersistentVolumeClaims(ctx context.Context, namespace string) ([]*corev1.PersistentVolumeClaim, error) {
	list := &corev1.PersistentVolumeClaimList{}
	if err := r.Cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	out := make([]*corev1.PersistentVolumeClaim, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// Reader is an engine.Lookup.
var _ engine.Lookup = Reader{}
