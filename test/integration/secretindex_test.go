package integration

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/lookup"
	"github.com/stsguard/stsguard/test/harness"
)

// A Reader over a real informer cache with the server's index of
// StatefulSets by Secret returns only the StatefulSets that reference the
// Secret; a Reader over the live client (as the expand command uses), where
// the index is an unsupported field selector, returns the same by listing.
func TestReaderStatefulSetsReferencingSecret(t *testing.T) {
	c, _ := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := harness.Namespace(t, c)
	for _, name := range []string{"db", "tls"} {
		require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			StringData: map[string]string{"password": "a-long-random-password-0123456789"}}))
	}
	env := func(secret string) corev1.EnvVar {
		return corev1.EnvVar{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "password"}}}
	}
	stss := map[string]func(*corev1.PodSpec){
		"env-db": func(p *corev1.PodSpec) { p.Containers[0].Env = []corev1.EnvVar{env("db")} },
		"vol-db-tls": func(p *corev1.PodSpec) {
			p.Volumes = []corev1.Volume{
				{Name: "a", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}},
				{Name: "b", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}},
			}
		},
		"env-tls": func(p *corev1.PodSpec) { p.Containers[0].Env = []corev1.EnvVar{env("tls")} },
		"none":    func(*corev1.PodSpec) {},
	}
	for name, set := range stss {
		require.NoError(t, c.Create(ctx, harness.Service(ns, name, corev1.ClusterIPNone, map[string]string{"app": name})))
		sts := harness.StatefulSet(ns, name, name, "nginx")
		set(&sts.Spec.Template.Spec)
		require.NoError(t, c.Create(ctx, sts))
	}

	informers, err := cache.New(cp.Config, cache.Options{Scheme: c.Scheme(), ReaderFailOnMissingInformer: true})
	require.NoError(t, err)
	require.NoError(t, lookup.IndexSecrets(ctx, informers))
	_, err = informers.GetInformer(ctx, &appsv1.StatefulSet{})
	require.NoError(t, err)
	go func() { _ = informers.Start(ctx) }()
	require.True(t, informers.WaitForCacheSync(ctx))
	// The cache serves the index itself (the Reader does not fall back).
	require.NoError(t, informers.List(ctx, &appsv1.StatefulSetList{}, client.InNamespace(ns), client.MatchingFields{lookup.SecretIndex: "db"}))

	want := map[string][]string{"db": {"env-db", "vol-db-tls"}, "tls": {"env-tls", "vol-db-tls"}, "other": {}}
	for what, r := range map[string]client.Reader{"informer cache": informers, "live client": c} {
		t.Run(what, func(t *testing.T) {
			lk := lookup.Reader{Cache: r}
			for secret, names := range want {
				harness.Eventually(t, "the StatefulSets referencing "+secret, func() bool {
					got, err := lk.StatefulSetsReferencingSecret(ctx, ns, secret)
					require.NoError(t, err)
					have := []string{}
					for _, s := range got {
						have = append(have, s.Name)
					}
					sort.Strings(have)
					return assert.ObjectsAreEqual(names, have)
				}, 10*time.Second)
			}
		})
	}
}
