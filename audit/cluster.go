package audit

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/kinds"
	"github.com/stsguard/stsguard/manifest"
)

// secretSelector keeps out the Secrets no rule reads: Helm release records
// and service account tokens, the bulk of most clusters' Secrets (the
// webhook's matchConditions leave out the same).
var secretSelector = fields.AndSelectors(
	fields.OneTermNotEqualSelector("type", "helm.sh/release.v1"),
	fields.OneTermNotEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)),
)

// LoadCluster lists, read-only, the objects of every kind the rules judge
// and read (kinds.All()) in a live cluster: StatefulSets, Services,
// Secrets (less Helm release records and service account tokens), PVCs,
// and the cluster-scoped StorageClasses and Namespaces. namespace "" means
// every namespace; it does not narrow the cluster-scoped kinds. It needs
// list on each of these resources, and returns the first List error.
func LoadCluster(ctx context.Context, c client.Reader, namespace string) ([]manifest.Object, error) {
	var out []manifest.Object
	for _, k := range kinds.All() {
		var opts []client.ListOption
		if k.Namespaced && namespace != "" {
			opts = append(opts, client.InNamespace(namespace))
		}
		if k.Kind == kinds.Secret {
			opts = append(opts, client.MatchingFieldsSelector{Selector: secretSelector})
		}
		list := k.NewList()
		if err := c.List(ctx, list.(client.ObjectList), opts...); err != nil {
			return nil, fmt.Errorf("listing %s: %w", plural(k.Kind), err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", plural(k.Kind), err)
		}
		for _, item := range items {
			obj := item.(client.Object)
			obj.SetManagedFields(nil)
			if k.Kind == kinds.Secret {
				// kubectl's last-applied configuration of a Secret is a copy of its values.
				delete(obj.GetAnnotations(), corev1.LastAppliedConfigAnnotation)
			}
			out = append(out, manifest.Object{Object: obj, GVK: k.GroupVersionKind, Namespace: obj.GetNamespace(), Name: obj.GetName()})
		}
	}
	return out, nil
}

// plural names the objects of kind k in an error: "StatefulSets",
// "StorageClasses".
func plural(k kinds.Kind) string {
	if strings.HasSuffix(string(k), "s") {
		return string(k) + "es"
	}
	return string(k) + "s"
}
