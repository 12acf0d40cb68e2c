package audit

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/pager"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/internal/secretdata"
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

// ListPageSize is how many objects each List request of LoadCluster asks
// for (limit), the rest following with the continue token: 500, client-go's
// pager default. The apiserver then serves and holds one page per request
// instead of the whole kind, and stsguard decodes one page at a time.
const ListPageSize = 500

// LoadCluster lists, read-only, the objects of every kind the rules judge
// and read (kinds.All()) in a live cluster: StatefulSets, Services,
// Secrets (less Helm release records and service account tokens), PVCs,
// and the cluster-scoped StorageClasses and Namespaces. namespace "" means
// every namespace; it does not narrow the cluster-scoped kinds. Each kind
// is listed in pages of ListPageSize (client-go's tools/pager, one page
// fetched while the previous one is read); when a continue token expires
// (the listing took longer than the apiserver keeps a snapshot, 5 minutes
// by default) the pager falls back to one full list of the kind. It needs
// list on each of these resources, and returns the first List error.
// Secrets come back as secretdata.Trim leaves them: key names and keyed
// digests of their values, never the values.
func LoadCluster(ctx context.Context, c client.Reader, namespace string) ([]manifest.Object, error) {
	return LoadClusterPaged(ctx, c, namespace, ListPageSize)
}

// LoadClusterPaged is LoadCluster with pages of pageSize objects (> 0).
func LoadClusterPaged(ctx context.Context, c client.Reader, namespace string, pageSize int64) ([]manifest.Object, error) {
	if pageSize <= 0 {
		return nil, fmt.Errorf("list page size %d: must be positive", pageSize)
	}
	var out []manifest.Object
	for _, k := range kinds.All() {
		var opts []client.ListOption
		if k.Namespaced && namespace != "" {
			opts = append(opts, client.InNamespace(namespace))
		}
		if k.Kind == kinds.Secret {
			opts = append(opts, client.MatchingFieldsSelector{Selector: secretSelector})
		}
		p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			list := k.NewList().(client.ObjectList)
			err := c.List(ctx, list, append(opts, client.Limit(o.Limit), client.Continue(o.Continue))...)
			return list, err
		})
		p.PageSize = pageSize
		p.PageBufferSize = 0 // one page ahead at most: memory, not throughput, is what paging is for
		err := p.EachListItem(ctx, metav1.ListOptions{}, func(item runtime.Object) error {
			obj := item.(client.Object)
			obj.SetManagedFields(nil)
			if s, ok := obj.(*corev1.Secret); ok {
				// What the webhook's informer cache keeps: key names and
				// digests, no values (and no kubectl last-applied copy of
				// them), so that the values of one page at most are in
				// memory. The rules judge a trimmed Secret as one with its
				// values.
				secretdata.Trim(s)
			}
			out = append(out, manifest.Object{Object: obj, GVK: k.GroupVersionKind, Namespace: obj.GetNamespace(), Name: obj.GetName()})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", plural(k.Kind), err)
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
