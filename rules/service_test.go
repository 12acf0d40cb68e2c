package rules

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

func deleting(sts *appsv1.StatefulSet) *appsv1.StatefulSet {
	sts = sts.DeepCopy()
	sts.DeletionTimestamp = &metav1.Time{}
	return sts
}

func TestServiceRules(t *testing.T) {
	web := testStatefulSet("web") // pod labels app=web, tier=db
	other := testStatefulSet("other")
	other.Name = "other"
	withType := func(s *corev1.Service, typ corev1.ServiceType) *corev1.Service {
		s = s.DeepCopy()
		s.Spec.Type = typ
		return s
	}
	sel := map[string]string{"app": "web"}
	cases := []struct {
		name   string
		op     admissionv1.Operation
		svc    *corev1.Service // Object (OldObject on DELETE)
		old    *corev1.Service // OldObject on UPDATE
		stss   []*appsv1.StatefulSet
		want   field.ErrorList
		rules  []string
		action []engine.Action
	}{
		{"headless, named", admissionv1.Create, svc(corev1.ClusterIPNone, sel), nil, []*appsv1.StatefulSet{web}, nil, nil, nil},
		{"ClusterIP, not named", admissionv1.Create, svc("10.0.0.1", sel), nil, []*appsv1.StatefulSet{other}, nil, nil, nil},
		{"ClusterIP, named", admissionv1.Create, svc("10.0.0.1", sel), nil, []*appsv1.StatefulSet{web},
			field.ErrorList{field.Invalid(clusterIPPath, "", "")}, []string{HeadlessServiceNotHeadless}, []engine.Action{engine.Deny}},
		{"no clusterIP, named (mutation off)", admissionv1.Create, svc("", sel), nil, []*appsv1.StatefulSet{web},
			field.ErrorList{field.Required(clusterIPPath, "")}, []string{HeadlessServiceNotHeadless}, []engine.Action{engine.Deny}},
		{"NodePort, named", admissionv1.Create, withType(svc("", sel), corev1.ServiceTypeNodePort), nil, []*appsv1.StatefulSet{web},
			field.ErrorList{field.Invalid(field.NewPath("spec", "type"), "", "")}, []string{HeadlessServiceNotHeadless}, []engine.Action{engine.Deny}},
		{"named only by a StatefulSet being deleted", admissionv1.Create, svc("10.0.0.1", sel), nil, []*appsv1.StatefulSet{deleting(web)}, nil, nil, nil},
		{"selector change that drops the pods", admissionv1.Update, svc(corev1.ClusterIPNone, map[string]string{"app": "frontend"}), svc(corev1.ClusterIPNone, sel),
			[]*appsv1.StatefulSet{web}, field.ErrorList{field.Invalid(serviceSelectorPath, "", "")}, []string{HeadlessServiceSelectorChange}, []engine.Action{engine.Deny}},
		{"selector emptied", admissionv1.Update, svc(corev1.ClusterIPNone, nil), svc(corev1.ClusterIPNone, sel),
			[]*appsv1.StatefulSet{web}, field.ErrorList{field.Invalid(serviceSelectorPath, "", "")}, []string{HeadlessServiceSelectorChange}, []engine.Action{engine.Deny}},
		{"selector narrowed, still selecting", admissionv1.Update, svc(corev1.ClusterIPNone, map[string]string{"app": "web", "tier": "db"}), svc(corev1.ClusterIPNone, sel),
			[]*appsv1.StatefulSet{web}, nil, nil, nil},
		{"selector that never selected", admissionv1.Update, svc(corev1.ClusterIPNone, map[string]string{"app": "x"}), svc(corev1.ClusterIPNone, map[string]string{"app": "y"}),
			[]*appsv1.StatefulSet{web}, nil, nil, nil},
		{"delete of a governing Service", admissionv1.Delete, svc(corev1.ClusterIPNone, sel), nil, []*appsv1.StatefulSet{web},
			field.ErrorList{field.Forbidden(metadataNamePath, "")}, []string{HeadlessServiceDelete}, []engine.Action{engine.Warn}},
		{"delete during uninstall", admissionv1.Delete, svc(corev1.ClusterIPNone, sel), nil, []*appsv1.StatefulSet{deleting(web)}, nil, nil, nil},
		{"delete of another Service", admissionv1.Delete, svc(corev1.ClusterIPNone, sel), nil, []*appsv1.StatefulSet{other}, nil, nil, nil},
	}
	e := newEngine(t, HeadlessServiceNotHeadless, HeadlessServiceSelectorChange, HeadlessServiceDelete)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lk := objects()
			for _, s := range tc.stss {
				require.NoError(t, lk.Add(s))
			}
			in := &engine.Input[*corev1.Service]{Operation: tc.op, Object: tc.svc, OldObject: tc.old}
			if tc.op == admissionv1.Delete {
				in.Object, in.OldObject = nil, tc.svc
			}
			got := validate(e, in, lk).Findings
			field.ErrorMatcher{}.ByType().ByField().Test(t, tc.want, got.Errors())
			var ids []string
			var actions []engine.Action
			for _, f := range got {
				ids = append(ids, f.Rule)
				actions = append(actions, f.Action)
				assert.Contains(t, f.Error.Detail, `StatefulSet "web"`, "the message names the StatefulSet")
			}
			assert.Equal(t, tc.rules, ids)
			assert.Equal(t, tc.action, actions)
		})
	}
}

func TestServiceRatchetAndFailOpen(t *testing.T) {
	e := newEngine(t, HeadlessServiceNotHeadless)
	old := svc("10.0.0.1", map[string]string{"app": "web"})
	labelled := old.DeepCopy()
	labelled.Labels = map[string]string{"team": "db"}
	got := validate(e, &engine.Input[*corev1.Service]{Operation: admissionv1.Update, Object: labelled, OldObject: old}, objects(testStatefulSet("web"))).Findings
	require.Len(t, got, 1)
	assert.Equal(t, engine.Warn, got[0].Action, "an existing ClusterIP Service can still be labelled")

	got = validate(e, &engine.Input[*corev1.Service]{Operation: admissionv1.Create, Object: old}, errLookup{errors.New("boom")}).Findings
	require.Len(t, got, 1)
	assert.Equal(t, engine.Warn, got[0].Action)
	assert.Len(t, internalFindings(got), 1)
}

func TestHeadlessServiceDefault(t *testing.T) {
	web := testStatefulSet("web")
	cases := []struct {
		name string
		op   admissionv1.Operation
		svc  *corev1.Service
		stss []*appsv1.StatefulSet
		want string // clusterIP after the mutation
	}{
		{"unset and named", admissionv1.Create, svc("", nil), []*appsv1.StatefulSet{web}, "None"},
		{"unset, not named", admissionv1.Create, svc("", nil), nil, ""},
		{"set explicitly", admissionv1.Create, svc("10.0.0.7", nil), []*appsv1.StatefulSet{web}, "10.0.0.7"},
		{"NodePort", admissionv1.Create, func() *corev1.Service { s := svc("", nil); s.Spec.Type = corev1.ServiceTypeNodePort; return s }(), []*appsv1.StatefulSet{web}, ""},
		{"update", admissionv1.Update, svc("", nil), []*appsv1.StatefulSet{web}, ""},
	}
	e := newEngine(t, HeadlessServiceDefault)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lk := objects()
			for _, s := range tc.stss {
				require.NoError(t, lk.Add(s))
			}
			in := &engine.Input[*corev1.Service]{Operation: tc.op, Object: tc.svc, OldObject: tc.svc}
			out, m, res := mutate(e, in, lk)
			assert.Empty(t, res.Findings)
			assert.Equal(t, tc.want, out.Spec.ClusterIP)
			assert.Equal(t, tc.want == "None", len(m.Patch()) == 1)
			if tc.want == "None" {
				assert.Equal(t, "/spec/clusterIP", m.Patch()[0].Path)
				assert.Contains(t, m.Changes()[0].Message, `StatefulSet "web"`)
				assert.Empty(t, tc.svc.Spec.ClusterIP, "the input is not modified")
			}
		})
	}
}
