package rules

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stsguard/stsguard/credentials"
	"github.com/stsguard/stsguard/engine"
)

// withLastApplied stores sts itself as kubectl apply does: the manifest as
// compact JSON and a newline, in LastAppliedAnnotation.
func withLastApplied(t *testing.T, sts *appsv1.StatefulSet) *appsv1.StatefulSet {
	t.Helper()
	sts = sts.DeepCopy()
	sts.APIVersion, sts.Kind = "apps/v1", "StatefulSet"
	raw, err := json.Marshal(sts)
	require.NoError(t, err)
	if sts.Annotations == nil {
		sts.Annotations = map[string]string{}
	}
	sts.Annotations[LastAppliedAnnotation] = string(raw) + "\n"
	return sts
}

// lastApplied decodes the annotation of sts.
func lastApplied(t *testing.T, sts *appsv1.StatefulSet) *appsv1.StatefulSet {
	t.Helper()
	out := &appsv1.StatefulSet{}
	require.NoError(t, json.Unmarshal([]byte(sts.Annotations[LastAppliedAnnotation]), out))
	return out
}

func TestPasswordSecretRefRewritesLastApplied(t *testing.T) {
	const secret = "n0t-a-default-9"
	lit := func(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }
	cases := []struct {
		name string
		sts  *appsv1.StatefulSet
		// wantRef: env name -> whether the annotation's entry is a secretKeyRef
		wantRef map[string]bool
	}{
		{"moved literal", withContainer("mysql:8.0", lit("MYSQL_ROOT_PASSWORD", secret), lit("MYSQL_DATABASE", "app")),
			map[string]bool{"MYSQL_ROOT_PASSWORD": true, "MYSQL_DATABASE": false}},
		{"an init container's literal", func() *appsv1.StatefulSet {
			sts := withContainer("nginx")
			sts.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "mysql:8.0", Env: []corev1.EnvVar{lit("MYSQL_PASSWORD", secret)}}}
			return sts
		}(), map[string]bool{"MYSQL_PASSWORD": true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, PasswordSecretRef)
			mutated, m, fs := mutateTwice(t, e, create(withLastApplied(t, tc.sts)), objects())
			require.Empty(t, fs.ByAction(engine.Deny))
			require.NotEmpty(t, m.Secrets())
			assert.NotContains(t, mutated.Annotations[LastAppliedAnnotation], secret, "no copy of the moved value")
			assert.Regexp(t, `\n$`, mutated.Annotations[LastAppliedAnnotation], "kept as kubectl writes it")
			got := lastApplied(t, mutated)
			for _, c := range append(got.Spec.Template.Spec.InitContainers, got.Spec.Template.Spec.Containers...) {
				for _, env := range c.Env {
					ref, ok := tc.wantRef[env.Name]
					require.True(t, ok, env.Name)
					if ref {
						assert.Empty(t, env.Value)
						require.NotNil(t, env.ValueFrom)
						stored := findEnv(mutated, env.Name)
						assert.Equal(t, stored.ValueFrom, env.ValueFrom, "the annotation says what the object says")
					} else {
						assert.NotEmpty(t, env.Value, "what was not moved stays")
					}
				}
			}
		})
	}
}

func TestPasswordSecretRefLeavesOtherLastAppliedAlone(t *testing.T) {
	e := newEngine(t, PasswordSecretRef)
	t.Run("no annotation", func(t *testing.T) {
		mutated, _, _ := mutateTwice(t, e, create(withContainer("mysql:8.0", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "n0t-a-default-9"})), objects())
		assert.NotContains(t, mutated.Annotations, LastAppliedAnnotation, "not created")
	})
	t.Run("numbers are written back exactly", func(t *testing.T) {
		sts := withContainer("mysql:8.0", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "n0t-a-default-9"})
		sts.Annotations = map[string]string{LastAppliedAnnotation: `{"spec":{"replicas":3,"template":{"spec":{"securityContext":{"runAsUser":9007199254740993},` +
			`"containers":[{"name":"db","env":[{"name":"MYSQL_ROOT_PASSWORD","value":"n0t-a-default-9"}]}]}}}}`}
		mutated, _, _ := mutateTwice(t, e, create(sts), objects())
		assert.Contains(t, mutated.Annotations[LastAppliedAnnotation], `"runAsUser":9007199254740993`)
		assert.Contains(t, mutated.Annotations[LastAppliedAnnotation], `"replicas":3`)
		assert.NotContains(t, mutated.Annotations[LastAppliedAnnotation], "n0t-a-default-9")
	})
	t.Run("nothing moved", func(t *testing.T) {
		sts := withLastApplied(t, withContainer("nginx", corev1.EnvVar{Name: "MODE", Value: "x"}))
		_, m, _ := mutateTwice(t, e, create(sts), objects())
		assert.Empty(t, m.Patch())
	})
	t.Run("not JSON: denied, since the literal may be in it", func(t *testing.T) {
		sts := withContainer("mysql:8.0", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "n0t-a-default-9"})
		sts.Annotations = map[string]string{LastAppliedAnnotation: "{not json"}
		_, m, res := mutate(e, create(sts), objects())
		deny := res.Findings.ByAction(engine.Deny)
		require.Len(t, deny, 1)
		assert.Equal(t, "metadata.annotations[kubectl.kubernetes.io/last-applied-configuration]", deny[0].Error.Field)
		assert.Empty(t, m.Patch())
		assert.NotContains(t, deny[0].Error.Error(), "n0t-a-default-9")
	})
}

func findEnv(sts *appsv1.StatefulSet, name string) corev1.EnvVar {
	for _, c := range append(sts.Spec.Template.Spec.InitContainers, sts.Spec.Template.Spec.Containers...) {
		for _, e := range c.Env {
			if e.Name == name {
				return e
			}
		}
	}
	return corev1.EnvVar{}
}

// `kubectl apply --server-side` of the same manifest again sets the literal
// value next to the secretKeyRef admission left: moved again, it gives back
// the stored reference; a valueFrom of the user's own is left for the
// apiserver to refuse.
func TestPasswordSecretRefMovesALiteralReappliedOverItsReference(t *testing.T) {
	ref := func(secret string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "mysql-root-password"}}
	}
	stored := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-credentials",
		Labels: map[string]string{credentials.ManagedByLabel: credentials.ManagedByValue}, Annotations: map[string]string{credentials.StatefulSetAnnotation: "web"}},
		Data: map[string][]byte{"mysql-root-password": []byte("n0t-a-default-9")}}
	cases := []struct {
		name     string
		from     *corev1.EnvVarSource
		wantMove bool
	}{
		{"stsguard's own reference", ref("web-credentials"), true},
		{"a reference of the user's", ref("theirs"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sts := withContainer("mysql:8.0", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "n0t-a-default-9", ValueFrom: tc.from})
			in := &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: sts, OldObject: withContainer("mysql:8.0",
				corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", ValueFrom: ref("web-credentials")})}
			mutated, m, res := mutate(newEngine(t, PasswordSecretRef), in, objects(stored))
			require.Empty(t, res.Findings.ByAction(engine.Deny))
			env := mutated.Spec.Template.Spec.Containers[0].Env[0]
			if !tc.wantMove {
				assert.Empty(t, m.Patch())
				return
			}
			assert.Empty(t, env.Value)
			assert.Equal(t, ref("web-credentials"), env.ValueFrom)
			assert.Empty(t, m.Secrets(), "the stored Secret holds the value already")
		})
	}
}

// A StatefulSet whose password an older stsguard moved out of the pod
// template but left in kubectl's annotation: the next request of any kind
// (a label-only UPDATE here) takes it out of the annotation, and changes
// nothing else.
func TestPasswordSecretRefScrubsALiteralLeftInLastApplied(t *testing.T) {
	stored := withContainer("mysql:8.0", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "web-credentials"}, Key: "mysql-root-password"}}})
	stored.Annotations = map[string]string{LastAppliedAnnotation: `{"spec":{"template":{"spec":{"containers":[{"name":"db","env":[{"name":"MYSQL_ROOT_PASSWORD","value":"n0t-a-default-9"}]}]}}}}` + "\n"}
	labelled := stored.DeepCopy()
	labelled.Labels = map[string]string{"team": "db"}
	in := &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: labelled, OldObject: stored}
	mutated, m, res := mutate(newEngine(t, PasswordSecretRef), in, objects())
	require.Empty(t, res.Findings)
	require.Len(t, m.Changes(), 1)
	assert.Equal(t, "metadata.annotations[kubectl.kubernetes.io/last-applied-configuration]", m.Changes()[0].Field)
	assert.NotContains(t, mutated.Annotations[LastAppliedAnnotation], "n0t-a-default-9")
	assert.Contains(t, mutated.Annotations[LastAppliedAnnotation], `"valueFrom":{"secretKeyRef":{"key":"mysql-root-password","name":"web-credentials"}}`)
	assert.Equal(t, stored.Spec, mutated.Spec, "no pod template change, no rollout")
	assert.Empty(t, m.Secrets())
}
