package engine

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stsguard/stsguard/kinds"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func noFindings[T Object](context.Context, *Input[T], Lookup) field.ErrorList { return nil }

func noChanges[T Object](context.Context, *Input[T], Lookup, *Mutation) field.ErrorList { return nil }

// TestNewRefusesMalformedDeclarations: a registry is checked as a whole
// before an engine runs it.
func TestNewRefusesMalformedDeclarations(t *testing.T) {
	check := noFindings[*appsv1.StatefulSet]
	change := noChanges[*appsv1.StatefulSet]
	cases := []struct {
		name string
		rule Rule
		want string
	}{
		{"not kebab-case", Rule{ID: "Bad_ID", Action: Warn, Description: "d", StatefulSet: check}, "not kebab-case"},
		{"no description", Rule{ID: "a-rule", Action: Warn, StatefulSet: check}, "no description"},
		{"no check", Rule{ID: "a-rule", Action: Warn, Description: "d"}, "must declare checks"},
		{"a rule that changes", Rule{ID: "a-rule", Action: Warn, Description: "d", StatefulSet: check, MutateStatefulSet: change}, "must declare checks and no changes"},
		{"a mutator that checks", Rule{ID: "a-rule", Action: Mutate, FindingAction: Warn, Description: "d", StatefulSet: check, MutateStatefulSet: change}, "must declare changes and no checks"},
		{"bad action", Rule{ID: "a-rule", Action: "Block", Description: "d", StatefulSet: check}, "not one of Deny, Warn, Audit, Mutate"},
		{"mutator without FindingAction", Rule{ID: "a-rule", Action: Mutate, Description: "d", MutateStatefulSet: change}, "FindingAction"},
		{"mutator fields on a rule", Rule{ID: "a-rule", Action: Warn, Default: true, Description: "d", StatefulSet: check}, "are a mutator's"},
		{"ActionOnUpdate Off", Rule{ID: "a-rule", Action: Warn, ActionOnUpdate: Off, Description: "d", StatefulSet: check}, "ActionOnUpdate"},
		{"declared twice", Rule{ID: ExemptionInvalid, Action: Warn, Description: "d", StatefulSet: check}, "declared twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(DefaultConfig(), []Rule{tc.rule})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := New(DefaultConfig(), []Rule{{ID: "a-rule", Action: Warn, Description: "d", StatefulSet: check}})
	assert.NoError(t, err)
}

// TestAdmitRefusesMalformedRequests: a Request whose kind, objects and
// operation disagree is an error, never a decision.
func TestAdmitRefusesMalformedRequests(t *testing.T) {
	e, err := New(DefaultConfig(), nil)
	require.NoError(t, err)
	sts := &appsv1.StatefulSet{}
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"unknown kind", Request{Kind: "Deployment", Operation: admissionv1.Create, Object: sts}, `no kind "Deployment"`},
		{"object of another kind", Request{Kind: kinds.Service, Operation: admissionv1.Create, Object: sts}, "is a *v1.StatefulSet"},
		{"CREATE without object", Request{Kind: kinds.StatefulSet, Operation: admissionv1.Create}, "no object"},
		{"UPDATE without old object", Request{Kind: kinds.StatefulSet, Operation: admissionv1.Update, Object: sts}, "needs the object and the old object"},
		{"DELETE without old object", Request{Kind: kinds.Secret, Operation: admissionv1.Delete, Object: &corev1.Secret{}}, "no old object"},
		{"CONNECT", Request{Kind: kinds.StatefulSet, Operation: admissionv1.Connect, Object: sts}, "not CREATE, UPDATE or DELETE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Admit(context.Background(), &tc.req, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
