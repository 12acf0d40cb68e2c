package lookup_test

import (
	"context"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/lookuptest"
	"github.com/stsguard/stsguard/lookup"
)

func pullingSts(ns, name string, secrets ...string) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{ObjectMeta: meta(ns, name)}
	for _, sec := range secrets {
		s.Spec.Template.Spec.ImagePullSecrets = append(s.Spec.Template.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: sec})
	}
	return s
}

func names(t *testing.T, lk engine.Lookup, ns, secret string) []string {
	t.Helper()
	stss, err := lk.StatefulSetsReferencingSecret(context.Background(), ns, secret)
	require.NoError(t, err)
	out := []string{}
	for _, s := range stss {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

// StatefulSetsReferencingSecret returns the same StatefulSets from Objects,
// from a Reader over a client with the index IndexSecrets registers, and
// from one without it (the fallback that lists the namespace).
func TestStatefulSetsReferencingSecret(t *testing.T) {
	objs := []client.Object{
		pullingSts("a", "one", "db"),
		pullingSts("a", "two", "db", "tls"),
		pullingSts("a", "none"),
		pullingSts("b", "other", "db"),
	}
	registered := fake.NewClientBuilder().WithObjects(objs...)
	require.NoError(t, lookup.IndexSecrets(context.Background(), fieldIndexer{registered}))
	o := lookuptest.MustObjects()
	for _, obj := range objs {
		require.NoError(t, o.Add(obj))
	}
	for name, lk := range map[string]engine.Lookup{
		"Objects":                       o,
		"Reader with IndexSecrets":      lookup.Reader{Cache: registered.Build()},
		"Reader without index (listed)": lookup.Reader{Cache: fake.NewClientBuilder().WithObjects(objs...).Build()},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, []string{"one", "two"}, names(t, lk, "a", "db"))
			assert.Equal(t, []string{"two"}, names(t, lk, "a", "tls"))
			assert.Equal(t, []string{}, names(t, lk, "a", "missing"))
			assert.Equal(t, []string{"other"}, names(t, lk, "b", "db"))
		})
	}
}

// fieldIndexer registers an index on a fake client builder.
type fieldIndexer struct{ b *fake.ClientBuilder }

func (f fieldIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	f.b.WithIndex(obj, field, fn)
	return nil
}
