package audit

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/manifest"
)

// secretSelector keeps out the Secrets no rule reads: Helm release records
// and service account tokens, the bulk of most clusters' Secrets (the
// webhook's matchConditions leave out the same).
var secretSelector = fields.AndSelectors(
	fields.OneTermNotEqualSelector("type", "helm.sh/release.v1"),
	fields.OneTermNotEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)),
)

// LoadCluster lists, read-only, the objects the rules judge and read in a
// live cluster: StatefulSets, Services, Secrets (less Helm release records
// and service account tokens), PVCs, and the cluster-scoped StorageClasses
// and Namespaces. namespace "" means every namespace. It needs list on each
// of these resources.
func LoadCluster(ctx context.Context, c client.Reader, namespace string) ([]manifest.Object, error) {
	var out []manifest.Object
	add := func(gvk schema.GroupVersionKind, obj client.Object) {
		obj.SetManagedFields(nil)
		out = append(out, manifest.Object{Object: obj, GVK: gvk, Namespace: obj.GetNamespace(), Name: obj.GetName()})
	}
	in := []client.ListOption{}
	if namespace != "" {
		in = append(in, client.InNamespace(namespace))
	}
	stsList := &appsv1.StatefulSetList{}
	if err := c.List(ctx, stsList, in...); err != nil {
		return nil, fmt.Errorf("listing StatefulSets: %w", err)
	}
	for i := range stsList.Items {
		add(appsv1.SchemeGroupVersion.WithKind("StatefulSet"), &stsList.Items[i])
	}
	svcs := &corev1.ServiceList{}
	if err := c.List(ctx, svcs, in...); err != nil {
		return nil, fmt.Errorf("listing Services: %w", err)
	}
	for i := range svcs.Items {
		add(corev1.SchemeGroupVersion.WithKind("Service"), &svcs.Items[i])
	}
	secrets := &corev1.SecretList{}
	if err := c.List(ctx, secrets, append(in, client.MatchingFieldsSelector{Selector: secretSelector})...); err != nil {
		return nil, fmt.Errorf("listing Secrets: %w", err)
	}
	for i := range secrets.Items {
		s := &secrets.Items[i]
		delete(s.Annotations, "kubectl.kubernetes.io/last-applied-configuration") // a copy of the values
		add(corev1.SchemeGroupVersion.WithKind("Secret"), s)
	}
	pvcs := &corev1.PersistentVolumeClaimList{}
	if err := c.List(ctx, pvcs, in...); err != nil {
		return nil, fmt.Errorf("listing PersistentVolumeClaims: %w", err)
	}
	for i := range pvcs.Items {
		add(corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"), &pvcs.Items[i])
	}
	classes := &storagev1.StorageClassList{}
	if err := c.List(ctx, classes); err != nil {
		return nil, fmt.Errorf("listing StorageClasses: %w", err)
	}
	for i := range classes.Items {
		add(storagev1.SchemeGroupVersion.WithKind("StorageClass"), &classes.Items[i])
	}
	nss := &corev1.NamespaceList{}
	if err := c.List(ctx, nss); err != nil {
		return nil, fmt.Errorf("listing Namespaces: %w", err)
	}
	for i := range nss.Items {
		add(corev1.SchemeGroupVersion.WithKind("Namespace"), &nss.Items[i])
	}
	return out, nil
}
