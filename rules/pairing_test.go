package rules

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/lookuptest"
)

func testStatefulSet(serviceName string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: serviceName,
			Replicas:    ptr.To[int32](3),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "db"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
}

func svc(clusterIP string, selector map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: corev1.ServiceSpec{ClusterIP: clusterIP, Type: corev1.ServiceTypeClusterIP, Selector: selector}}
}

func services(s *corev1.Service) *lookuptest.Objects { return objects(s) }

var pairing = []string{ServiceNameEmpty, HeadlessServiceMissing, HeadlessServiceNotHeadless, HeadlessServiceSelectorMismatch}

func TestPairingRules(t *testing.T) {
	headless := svc(corev1.ClusterIPNone, map[string]string{"app": "web"})
	cases := []struct {
		name   string
		sts    *appsv1.StatefulSet
		lookup engine.Lookup
		want   field.ErrorList // compared by type and field
		rules  []string        // rule of each finding, in order
	}{
		{"headless and selecting", testStatefulSet("web"), services(headless), nil, nil},
		{"selector is a subset of the labels", testStatefulSet("web"), services(svc(corev1.ClusterIPNone, map[string]string{"tier": "db"})), nil, nil},
		{"empty serviceName", testStatefulSet(""), objects(),
			field.ErrorList{field.Required(serviceNamePath, "")}, []string{ServiceNameEmpty}},
		{"Service missing", testStatefulSet("web"), objects(),
			field.ErrorList{field.NotFound(serviceNamePath, "web")}, []string{HeadlessServiceMissing}},
		{"ClusterIP Service", testStatefulSet("web"), services(svc("10.0.0.1", map[string]string{"app": "web"})),
			field.ErrorList{field.Invalid(serviceNamePath, "web", "")}, []string{HeadlessServiceNotHeadless}},
		{"ExternalName Service", testStatefulSet("web"), services(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}}),
			field.ErrorList{field.Invalid(serviceNamePath, "web", ""), field.Invalid(serviceNamePath, "web", "")},
			[]string{HeadlessServiceNotHeadless, HeadlessServiceSelectorMismatch}},
		{"empty selector", testStatefulSet("web"), services(svc(corev1.ClusterIPNone, nil)),
			field.ErrorList{field.Invalid(serviceNamePath, "web", "")}, []string{HeadlessServiceSelectorMismatch}},
		{"other labels", testStatefulSet("web"), services(svc(corev1.ClusterIPNone, map[string]string{"app": "frontend"})),
			field.ErrorList{field.Invalid(serviceNamePath, "web", "")}, []string{HeadlessServiceSelectorMismatch}},
		{"selector wider than the labels", testStatefulSet("web"), services(svc(corev1.ClusterIPNone, map[string]string{"app": "web", "zone": "a"})),
			field.ErrorList{field.Invalid(serviceNamePath, "web", "")}, []string{HeadlessServiceSelectorMismatch}},
	}
	e := newEngine(t, pairing...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := validate(e, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: tc.sts}, tc.lookup).Findings
			field.ErrorMatcher{}.ByType().ByField().Test(t, tc.want, got.Errors())
			var ids []string
			for _, f := range got {
				ids = append(ids, f.Rule)
				assert.Contains(t, f.Error.Detail, "[rule: "+f.Rule+"]", "every finding names its rule")
			}
			assert.Equal(t, tc.rules, ids)
		})
	}
}

func TestPairingActions(t *testing.T) {
	e := newEngine(t, pairing...)
	in := &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: testStatefulSet("web")}
	got := validate(e, in, objects()).Findings
	assert.Equal(t, engine.Warn, got[0].Action, "a missing Service only warns: kubectl apply may create it next")
	got = validate(e, in, services(svc("10.0.0.1", map[string]string{"app": "web"}))).Findings
	assert.Equal(t, engine.Deny, got[0].Action)
	assert.Contains(t, got[0].String(), `spec.serviceName: Invalid value: "web": Service "web" is not headless (spec.clusterIP is "10.0.0.1")`)
	assert.Contains(t, got[0].String(), "delete the Service and re-create it with spec.clusterIP: None")
}

func TestRatchetingOnUpdate(t *testing.T) {
	e := newEngine(t, pairing...)
	lk := services(svc("10.0.0.1", map[string]string{"app": "web"}))
	old := testStatefulSet("web")
	scaled := old.DeepCopy()
	scaled.Spec.Replicas = ptr.To[int32](1)
	got := validate(e, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: scaled, OldObject: old}, lk).Findings
	if assert.Len(t, got, 1) {
		assert.Equal(t, engine.Warn, got[0].Action, "a problem the stored object has must not block an update")
		assert.Contains(t, got[0].Error.Detail, "has this problem already")
	}

	// Moving to a non-headless Service is a new problem: denied.
	moved := old.DeepCopy()
	moved.Spec.ServiceName = "web"
	oldOther := old.DeepCopy()
	oldOther.Spec.ServiceName = "other"
	require.NoError(t, lk.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "other"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "web"}}}))
	got = validate(e, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: moved, OldObject: oldOther}, lk).Findings
	if assert.Len(t, got, 1) {
		assert.Equal(t, engine.Deny, got[0].Action)
	}
}

func TestLookupFailureFailsOpen(t *testing.T) {
	e := newEngine(t, pairing...)
	got := validate(e, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: testStatefulSet("web")},
		errLookup{errors.New("cache not synced")}).Findings
	assert.NotEmpty(t, got)
	assert.Empty(t, got.ByAction(engine.Deny), "stsguard's own failure must not deny")
	assert.Len(t, internalFindings(got), len(got))
	assert.Contains(t, got[0].Error.Detail, "cache not synced")
}

func TestDeletingObjectIsNotValidated(t *testing.T) {
	sts := testStatefulSet("")
	sts.DeletionTimestamp = &metav1.Time{}
	got := validate(newEngine(t, pairing...), &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: sts, OldObject: sts}, objects()).Findings
	assert.Empty(t, got)
}

func TestPanickingRuleIsContained(t *testing.T) {
	panics := engine.Rule{ID: "panics", Action: engine.Deny, Description: "a test rule",
		StatefulSet: func(context.Context, *engine.Input[*appsv1.StatefulSet], engine.Lookup) field.ErrorList {
			panic("nil map")
		}}
	e, err := engine.New(testConfig(), []engine.Rule{panics})
	require.NoError(t, err)
	got := validate(e, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: testStatefulSet("web")}, objects()).Findings
	if assert.Len(t, got, 1) {
		assert.Equal(t, engine.Warn, got[0].Action)
		assert.Contains(t, got[0].Error.Detail, "rule panics panicked: nil map")
	}
}
