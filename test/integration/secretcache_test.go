package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/internal/secretdata"
	"github.com/stsguard/stsguard/kinds"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
)

// TestInformerCacheHoldsNoSecretValue creates Secrets with known values (4
// KiB of random bytes, a password, a Helm release record, kubectl's
// last-applied copy of the values), starts an informer cache with the
// options stsguard serve runs with (server.CacheOptions) on every kind the
// rules read, and looks for each value, raw and base64, in the JSON of
// every cached object: none is there, and each Secret keeps its key names.
// The webhook, whose cache is built the same way, still judges a
// StatefulSet by the value of the Secret it reads (weak-password).
func TestInformerCacheHoldsNoSecretValue(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()

	random := func(n int) []byte {
		b := make([]byte, n)
		_, err := rand.Read(b)
		require.NoError(t, err)
		return b
	}
	var values [][]byte
	secrets := map[string][]string{} // name -> keys
	for i := range 3 {
		name := fmt.Sprintf("data-%d", i)
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
		for _, k := range []string{"blob", "db-password", "token"} {
			v := random(4096)
			if k != "blob" {
				v = []byte(hex.EncodeToString(random(16))) // printable, as a password is
			}
			s.Data[k] = v
			values = append(values, v)
		}
		applied, err := json.Marshal(s)
		require.NoError(t, err)
		s.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: string(applied)}
		require.NoError(t, c.Create(ctx, s))
		secrets[name] = []string{"blob", "db-password", "token"}
	}
	release := random(8192)
	values = append(values, release)
	require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sh.helm.release.v1.db.v1"},
		Type: "helm.sh/release.v1", Data: map[string][]byte{"release": release}}))
	// A weak value under a key not named like a password: stored, and weak
	// once a StatefulSet reads it as a password.
	weak := []byte("changeme")
	require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weak"}, Data: map[string][]byte{"value": weak}}))
	secrets["weak"] = []string{"value"}

	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	opts := server.CacheOptions()
	opts.Scheme = scheme
	ca, err := cache.New(cp.Config, opts)
	require.NoError(t, err)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, k := range kinds.All() {
		_, err := ca.GetInformer(cctx, k.New())
		require.NoError(t, err)
	}
	go func() { _ = ca.Start(cctx) }()
	require.True(t, ca.WaitForCacheSync(cctx))
	harness.Eventually(t, "the cache to hold every Secret created", func() bool {
		var l corev1.SecretList
		return ca.List(cctx, &l, client.InNamespace(ns)) == nil && len(l.Items) == len(secrets)+1
	})

	forms := func(v []byte) [][]byte {
		return [][]byte{v, []byte(base64.StdEncoding.EncodeToString(v))}
	}
	dumped := 0
	for _, k := range kinds.All() {
		list := k.NewList()
		require.NoError(t, ca.List(cctx, list.(client.ObjectList)))
		items, err := meta.ExtractList(list)
		require.NoError(t, err)
		for _, item := range items {
			dump, err := json.Marshal(item)
			require.NoError(t, err)
			dumped++
			for _, v := range values {
				for _, f := range forms(v) {
					require.False(t, bytes.Contains(dump, f), "cached %s %s holds a Secret value", k.Kind, item.(client.Object).GetName())
				}
			}
			for _, f := range forms(weak) {
				assert.False(t, bytes.Contains(dump, append(append([]byte(`"`), f...), '"')), "cached %s %s holds a Secret value", k.Kind, item.(client.Object).GetName())
			}
		}
	}
	assert.Greater(t, dumped, len(secrets), "the dump covers the Secrets created")
	for name, keys := range secrets {
		var s corev1.Secret
		require.NoError(t, ca.Get(cctx, client.ObjectKey{Namespace: ns, Name: name}, &s))
		assert.True(t, secretdata.Trimmed(&s), name)
		for _, k := range keys {
			assert.Contains(t, s.Data, k, "%s keeps its key names", name)
		}
		assert.NotContains(t, s.Annotations, corev1.LastAppliedConfigAnnotation)
	}

	// The webhook judges by the cached verdict: a MySQL StatefulSet reading
	// the weak value as its root password is denied, one reading a strong
	// value is admitted.
	sts := harness.StatefulSet(ns, "mysql", "", "mysql:8.4")
	ref := func(secret, key string) []corev1.EnvVar {
		return []corev1.EnvVar{{Name: "MYSQL_ROOT_PASSWORD", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}}}
	}
	sts.Spec.Template.Spec.Containers[0].Env = ref("weak", "value")
	var createErr error
	harness.Eventually(t, "stsguard to judge the StatefulSet by the Secret's cached verdict", func() bool {
		createErr = c.Create(ctx, sts.DeepCopy(), client.DryRunAll)
		return createErr != nil
	})
	denied(t, createErr, "StatefulSet", rules.WeakPassword, "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef")
	assert.NotContains(t, createErr.Error(), string(weak))

	sts.Spec.Template.Spec.Containers[0].Env = ref("data-0", "db-password")
	require.NoError(t, c.Create(ctx, sts.DeepCopy(), client.DryRunAll))
}
