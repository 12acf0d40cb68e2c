package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
)

func TestRecreateStepsAsideOnlyForDefaults(t *testing.T) {
	canary := func(sts *appsv1.StatefulSet) *appsv1.StatefulSet {
		sts.Annotations = map[string]string{CanaryAnnotation: "1"}
		sts.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}
		return sts
	}
	cases := []struct {
		name     string
		sts      *appsv1.StatefulSet
		recreate bool
		want     []string // rules of the changes
	}{
		{"a new Cassandra gets its grace period", withContainer("cassandra:4.1"), false, []string{TerminationGracePeriod}},
		{"a re-created Cassandra keeps the stored one", withContainer("cassandra:4.1"), true, nil},
		{"a new canary StatefulSet gets its partition", canary(withContainer("nginx")), false, []string{RolloutPartition}},
		{"a re-created one keeps the stored strategy", canary(withContainer("nginx")), true, nil},
		{"a literal password is still moved", withContainer("mysql:8.0", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "n0t-a-default-9"}), true,
			[]string{PasswordSecretRef}},
		{"a new postgres without a password gets one", withContainer("postgres:16"), false, []string{PasswordSecretRef, TerminationGracePeriod}},
		{"a re-created one does not: its data has a password already", withContainer("postgres:16"), true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sts := tc.sts
			sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To(DefaultTerminationGracePeriodSeconds) // as the API defaults it
			if tc.recreate {
				if sts.Annotations == nil {
					sts.Annotations = map[string]string{}
				}
				sts.Annotations[engine.RecreateAnnotation] = "8c4d1a6e-uid-of-the-old-one"
			}
			_, m, res := mutate(newEngine(t, PasswordSecretRef, TerminationGracePeriod, RolloutPartition), create(sts), objects())
			require.Empty(t, res.Findings.ByAction(engine.Deny))
			var got []string
			for _, c := range m.Changes() {
				got = append(got, c.Rule)
			}
			assert.Equal(t, tc.want, got)
			for _, x := range res.Exemptions {
				assert.Equal(t, "recreate", x.By, "a default that steps aside is recorded as an exemption")
				assert.Equal(t, engine.RecreateAnnotation+"=8c4d1a6e-uid-of-the-old-one", x.Reason)
			}
			assert.Equal(t, tc.recreate, len(res.Exemptions) > 0, "a default that stepped aside leaves a trace")
		})
	}
	t.Run("validation is not skipped", func(t *testing.T) {
		sts := withContainer("mysql:8.0", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "password"})
		sts.Annotations = map[string]string{engine.RecreateAnnotation: "x"}
		res := validate(newEngine(t, WeakPassword), create(sts), objects())
		require.Len(t, res.Findings.ByAction(engine.Deny), 1)
		assert.Equal(t, WeakPassword, res.Findings[0].Rule)
	})
}
