package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
)

func TestActions(t *testing.T) {
	sts := withContainer("mysql:5.7", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "password"})
	for _, a := range []engine.Action{engine.Deny, engine.Warn, engine.Audit} {
		t.Run(string(a), func(t *testing.T) {
			cfg := only(testConfig(), WeakPassword)
			cfg.Actions[WeakPassword] = a
			e, err := New(cfg)
			require.NoError(t, err)
			got := validate(e, create(sts), objects()).Findings
			require.Len(t, got, 1)
			assert.Equal(t, a, got[0].Action)
		})
	}
	t.Run("Off", func(t *testing.T) {
		assert.Empty(t, validate(newEngine(t), create(sts), objects()).Findings)
	})
	t.Run("mutation off", func(t *testing.T) {
		_, m, _ := mutate(newEngine(t), create(sts), objects())
		assert.True(t, m.Empty())
	})
}

func TestExemptions(t *testing.T) {
	weak := func(annotations map[string]string) *appsv1.StatefulSet {
		s := withContainer("mysql:5.7", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "password"})
		s.Annotations = annotations
		return s
	}
	nsLabelled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: map[string]string{"stsguard.io/tier": "sandbox"}}}
	cases := []struct {
		name       string
		sts        *appsv1.StatefulSet
		exemptions []engine.NamespaceExemption
		wantRules  []string // rules of the findings left
		wantUsed   []engine.Exemption
	}{
		{"no exemption", weak(nil), nil, []string{WeakPassword}, nil},
		{"annotation with a reason", weak(map[string]string{engine.ExemptAnnotation: "weak-password", engine.ExemptReasonAnnotation: "TICKET-12: throwaway test database"}),
			nil, nil, []engine.Exemption{{Rule: WeakPassword, By: "annotation", Reason: "TICKET-12: throwaway test database"}}},
		{"annotation without a reason is ignored", weak(map[string]string{engine.ExemptAnnotation: "weak-password"}),
			nil, []string{engine.ExemptionInvalid, WeakPassword}, nil},
		{"blank reason is no reason", weak(map[string]string{engine.ExemptAnnotation: "weak-password", engine.ExemptReasonAnnotation: "  "}),
			nil, []string{engine.ExemptionInvalid, WeakPassword}, nil},
		{"unknown rule ID is reported, the known one honoured", weak(map[string]string{engine.ExemptAnnotation: "weak-pasword, weak-password", engine.ExemptReasonAnnotation: "demo"}),
			nil, []string{engine.ExemptionInvalid}, []engine.Exemption{{Rule: WeakPassword, By: "annotation", Reason: "demo"}}},
		{"exemption of another rule", weak(map[string]string{engine.ExemptAnnotation: "readiness-probe-missing", engine.ExemptReasonAnnotation: "demo"}),
			nil, []string{WeakPassword}, nil},
		{"namespace by name, all rules", weak(nil), []engine.NamespaceExemption{{Namespaces: []string{"ns"}}},
			nil, []engine.Exemption{{Rule: WeakPassword, By: "namespace", Reason: "namespace ns"}}},
		{"namespace by name, other rule", weak(nil), []engine.NamespaceExemption{{Namespaces: []string{"ns"}, Rules: []string{SecretRefMissing}}},
			[]string{WeakPassword}, nil},
		{"namespace by label", weak(nil), []engine.NamespaceExemption{{NamespaceSelector: labels.SelectorFromSet(labels.Set{"stsguard.io/tier": "sandbox"}), Rules: []string{WeakPassword}}},
			nil, []engine.Exemption{{Rule: WeakPassword, By: "namespace", Reason: "namespaceSelector stsguard.io/tier=sandbox"}}},
		{"namespace label not matching", weak(nil), []engine.NamespaceExemption{{NamespaceSelector: labels.SelectorFromSet(labels.Set{"stsguard.io/tier": "prod"})}},
			[]string{WeakPassword}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := only(testConfig(), WeakPassword, engine.ExemptionInvalid)
			cfg.Exemptions = tc.exemptions
			e, err := New(cfg)
			require.NoError(t, err)
			res := validate(e, create(tc.sts), objects(nsLabelled))
			var ids []string
			for _, f := range res.Findings {
				ids = append(ids, f.Rule)
			}
			assert.Equal(t, tc.wantRules, ids)
			assert.Equal(t, tc.wantUsed, res.Exemptions)
		})
	}
}

func TestExemptionInvalidMessages(t *testing.T) {
	sts := withContainer("nginx")
	sts.Annotations = map[string]string{engine.ExemptAnnotation: "weak-password"}
	got := validate(newEngine(t, engine.ExemptionInvalid), create(sts), objects()).Findings
	field.ErrorMatcher{}.ByType().ByField().Test(t, field.ErrorList{field.Required(field.NewPath("metadata", "annotations").Key(engine.ExemptReasonAnnotation), "")}, got.Errors())
	assert.Contains(t, got[0].String(), "stsguard.io/exempt is ignored")
	assert.Contains(t, got[0].String(), "set stsguard.io/exempt-reason")
}

func TestExemptMutation(t *testing.T) {
	sts := withContainer("cassandra:4")
	sts.Annotations = map[string]string{engine.ExemptAnnotation: TerminationGracePeriod, engine.ExemptReasonAnnotation: "benchmark cluster"}
	e := newEngine(t, TerminationGracePeriod)
	out, m, res := mutate(e, create(sts), objects())
	assert.True(t, m.Empty())
	assert.Nil(t, out.Spec.Template.Spec.TerminationGracePeriodSeconds)
	assert.Equal(t, []engine.Exemption{{Rule: TerminationGracePeriod, By: "annotation", Reason: "benchmark cluster"}}, res.Exemptions)

	// An exemption that changes nothing is not "used".
	sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](400)
	_, _, res = mutate(e, create(sts), objects())
	assert.Empty(t, res.Exemptions)
}

func TestDeleteIsJudgedOnTheOldObject(t *testing.T) {
	s := secret("db", nil)
	s.Annotations = map[string]string{engine.ExemptAnnotation: SecretInUseDelete, engine.ExemptReasonAnnotation: "decommissioning"}
	user := dbWith("mysql", keyRef("MYSQL_ROOT_PASSWORD", "db", "root", false))
	res := validate(newEngine(t, SecretInUseDelete), &engine.Input[*corev1.Secret]{Operation: admissionv1.Delete, OldObject: s}, objects(user))
	assert.Empty(t, res.Findings)
	assert.Equal(t, []engine.Exemption{{Rule: SecretInUseDelete, By: "annotation", Reason: "decommissioning"}}, res.Exemptions)
}
