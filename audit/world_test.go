package audit

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stsguard/stsguard/internal/podrefs"
	"github.com/stsguard/stsguard/internal/secretdata"
)

// stsReading is a StatefulSet whose pod template reads the given Secrets:
// the first by an env var, the others by envFrom, a volume and an image
// pull Secret in turn.
func stsReading(name string, secrets ...string) *appsv1.StatefulSet {
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name}}
	pod := &sts.Spec.Template.Spec
	c := corev1.Container{Name: "c"}
	for i, s := range secrets {
		switch i % 4 {
		case 0:
			c.Env = append(c.Env, corev1.EnvVar{Name: "E", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: s}, Key: "k"}}})
		case 1:
			c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: s}}})
		case 2:
			pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: s}}})
		case 3:
			pod.ImagePullSecrets = append(pod.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
	}
	pod.Containers = []corev1.Container{c}
	return sts
}

// TestStoreIndexesStatefulSetsBySecret: the index of StatefulSets by the
// Secrets they reference answers as podrefs.StatefulSetsReferencing over
// the stored StatefulSets, in their order, after creates and replacements.
func TestStoreIndexesStatefulSetsBySecret(t *testing.T) {
	for _, tc := range []struct {
		name string
		puts []*appsv1.StatefulSet
		want map[string][]string // Secret -> StatefulSet names
	}{
		{"none", nil, map[string][]string{"a": nil}},
		{"created in order", []*appsv1.StatefulSet{stsReading("x", "a"), stsReading("y", "b", "a"), stsReading("z")},
			map[string][]string{"a": {"x", "y"}, "b": {"y"}, "c": nil}},
		{"each kind of reference, and one Secret read twice", []*appsv1.StatefulSet{stsReading("x", "a", "b", "c", "d", "a")},
			map[string][]string{"a": {"x"}, "b": {"x"}, "c": {"x"}, "d": {"x"}}},
		{"a replacement keeps its place and changes its Secrets", []*appsv1.StatefulSet{
			stsReading("x", "a"), stsReading("y", "a"), stsReading("z", "a"), stsReading("y", "b"), stsReading("x", "b", "a"),
		}, map[string][]string{"a": {"x", "z"}, "b": {"x", "y"}}},
		{"a replacement that reads nothing", []*appsv1.StatefulSet{stsReading("x", "a"), stsReading("x")}, map[string][]string{"a": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newWorld().ns("n")
			for _, sts := range tc.puts {
				s.put(sts, nil)
			}
			names := func(list []*appsv1.StatefulSet) []string {
				var out []string
				for _, sts := range list {
					out = append(out, sts.Name)
				}
				return out
			}
			for secret, want := range tc.want {
				assert.Equal(t, want, names(s.referencing(secret)), secret)
				assert.Equal(t, podrefs.StatefulSetsReferencing(s.stsList, secret), s.referencing(secret), secret)
			}
		})
	}
}

// TestViewReadsSecretsAsTheCacheHoldsThem: the rules read a stored Secret
// as the webhook's informer cache holds it (key names and digests, no
// values); the replay keeps the values for its own bookkeeping.
func TestViewReadsSecretsAsTheCacheHoldsThem(t *testing.T) {
	w := newWorld()
	s := w.ns("n")
	stored := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "db"}, Data: map[string][]byte{"password": []byte("s3cr3t-value")}}
	s.put(stored, nil)
	v := &view{w: w, s: s, namespace: "n"}

	got, err := v.Secret(context.Background(), "n", "db")
	require.NoError(t, err)
	assert.True(t, secretdata.Trimmed(got))
	assert.Contains(t, got.Data, "password")
	assert.NotContains(t, string(got.Data["password"]), "s3cr3t-value")
	assert.True(t, secretdata.Equal(got, "password", []byte("s3cr3t-value")))

	full, err := withValues{v}.Secret(context.Background(), "n", "db")
	require.NoError(t, err)
	assert.Equal(t, []byte("s3cr3t-value"), full.Data["password"])
}
