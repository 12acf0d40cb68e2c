package engine

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
)

func TestActions(t *testing.T) {
	sts := withContainer("mysql:5.7", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "password"})
	for _, a := range []Action{Deny, Warn, Audit} {
		t.Run(string(a), func(t *testing.T) {
			cfg := only(testConfig(), WeakPassword)
			cfg.Actions[WeakPassword] = a
			e, err := New(cfg)
			require.NoError(t, err)
			got := e.ValidateStatefulSet(create(sts), objects()).Findings
			require.Len(t, got, 1)
			assert.Equal(t, a, got[0].Action)
		})
	}
	t.Run("Off", func(t *testing.T) {
		assert.Empty(t, engine(t).ValidateStatefulSet(create(sts), objects()).Findings)
	})
	t.Run("mutation off", func(t *testing.T) {
		_, m, _ := engine(t).MutateStatefulSet(create(sts), objects())
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
		exemptions []NamespaceExemption
		wantRules  []string // rules of the findings left
		wantUsed   []Exemption
	}{
		{"no exemption", weak(nil), nil, []string{WeakPassword}, nil},
		{"annotation with a reason", weak(map[string]string{ExemptAnnotation: "weak-password", ExemptReasonAnnotation: "TICKET-12: throwaway test database"}),
			nil, nil, []Exemption{{Rule: WeakPassword, By: "annotation", Reason: "TICKET-12: throwaway test database"}}},
		{"annotation without a reason is ignored", weak(map[string]string{ExemptAnnotation: "weak-password"}),
			nil, []string{ExemptionInvalid, WeakPassword}, nil},
		{"blank reason is no reason", weak(map[string]string{ExemptAnnotation: "weak-password", ExemptReasonAnnotation: "  "}),
			nil, []string{ExemptionInvalid, WeakPassword}, nil},
		{"unknown rule ID is reported, the known one honoured", weak(map[string]string{ExemptAnnotation: "weak-pasword, weak-password", ExemptReasonAnnotation: "demo"}),
			nil, []string{ExemptionInvalid}, []Exemption{{Rule: WeakPassword, By: "annotation", Reason: "demo"}}},
		{"exemption of another rule", weak(map[string]string{ExemptAnnotation: "readiness-probe-missing", ExemptReasonAnnotation: "demo"}),
			nil, []string{WeakPassword}, nil},
		{"namespace by name, all rules", weak(nil), []NamespaceExemption{{Namespaces: []string{"ns"}}},
			nil, []Exemption{{Rule: WeakPassword, By: "namespace", Reason: "namespace ns"}}},
		{"namespace by name, other rule", weak(nil), []NamespaceExemption{{Namespaces: []string{"ns"}, Rules: []string{SecretRefMissing}}},
			[]string{WeakPassword}, nil},
		{"namespace by label", weak(nil), []NamespaceExemption{{NamespaceSelector: labels.SelectorFromSet(labels.Set{"stsguard.io/tier": "sandbox"}), Rules: []string{WeakPassword}}},
			nil, []Exemption{{Rule: WeakPassword, By: "namespace", Reason: "namespaceSelector stsguard.io/tier=sandbox"}}},
		{"namespace label not matching", weak(nil), []NamespaceExemption{{NamespaceSelector: labels.SelectorFromSet(labels.Set{"stsguard.io/tier": "prod"})}},
			[]string{WeakPassword}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := only(testConfig(), WeakPassword, ExemptionInvalid)
			cfg.Exemptions = tc.exemptions
			e, err := New(cfg)
			require.NoError(t, err)
			res := e.ValidateStatefulSet(create(tc.sts), objects(nsLabelled))
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
	sts.Annotations = map[string]string{ExemptAnnotation: "weak-password"}
	got := engine(t, ExemptionInvalid).ValidateStatefulSet(create(sts), objects()).Findings
	field.ErrorMatcher{}.ByType().ByField().Test(t, field.ErrorList{field.Required(exemptReasonPath, "")}, got.Errors())
	assert.Contains(t, got[0].String(), "stsguard.io/exempt is ignored")
	assert.Contains(t, got[0].String(), "set stsguard.io/exempt-reason")
}

func TestExemptMutation(t *testing.T) {
	sts := withContainer("cassandra:4")
	sts.Annotations = map[string]string{ExemptAnnotation: TerminationGracePeriod, ExemptReasonAnnotation: "benchmark cluster"}
	e := engine(t, TerminationGracePeriod)
	out, m, res := e.MutateStatefulSet(create(sts), objects())
	assert.True(t, m.Empty())
	assert.Nil(t, out.Spec.Template.Spec.TerminationGracePeriodSeconds)
	assert.Equal(t, []Exemption{{Rule: TerminationGracePeriod, By: "annotation", Reason: "benchmark cluster"}}, res.Exemptions)

	// An exemption that changes nothing is not "used".
	sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](400)
	_, _, res = e.MutateStatefulSet(create(sts), objects())
	assert.Empty(t, res.Exemptions)
}

func TestDeleteIsJudgedOnTheOldObject(t *testing.T) {
	s := secret("db", nil)
	s.Annotations = map[string]string{ExemptAnnotation: SecretInUseDelete, ExemptReasonAnnotation: "decommissioning"}
	user := dbWith("mysql", keyRef("MYSQL_ROOT_PASSWORD", "db", "root", false))
	res := engine(t, SecretInUseDelete).ValidateSecret(&Input[*corev1.Secret]{Operation: admissionv1.Delete, OldObject: s}, objects(user))
	assert.Empty(t, res.Findings)
	assert.Equal(t, []Exemption{{Rule: SecretInUseDelete, By: "annotation", Reason: "decommissioning"}}, res.Exemptions)
}
