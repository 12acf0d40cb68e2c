package integration

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
	"github.com/stsguard/stsguard/webhook"
)

// calls returns how many AdmissionReviews stsguard has served on path.
func calls(t *testing.T, path string) float64 {
	t.Helper()
	return srv.Metric(t, "controller_runtime_webhook_requests_total", map[string]string{"webhook": path})
}

// The matchCondition changes-what-stsguard-judges keeps away the UPDATEs
// that change nothing a rule reads (a label, an annotation of someone
// else's), so the apiserver does not call stsguard for them; every UPDATE
// that changes what a rule reads, and stsguard's own annotations, still
// reaches it, and so does every CREATE and Service DELETE (their webhooks
// have no matchConditions).
func TestUpdatesThatChangeNothingJudgedAreNotSent(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	svc := harness.Service(ns, "web", corev1.ClusterIPNone, map[string]string{"app": "web"})
	require.NoError(t, c.Create(ctx, svc))
	sts := harness.StatefulSet(ns, "web", "web", "nginx")
	require.NoError(t, c.Create(ctx, sts))
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, StringData: map[string]string{"password": "n0t-a-default-9"}}
	require.NoError(t, c.Create(ctx, sec))

	merge := func(obj client.Object, patch string) {
		t.Helper()
		require.NoError(t, c.Patch(ctx, obj, client.RawPatch("application/merge-patch+json", []byte(patch))))
	}
	cases := []struct {
		name  string
		paths []string
		do    func()
		sent  bool
	}{
		{"StatefulSet: a label", []string{webhook.MutateStatefulSetPath, webhook.ValidateStatefulSetPath},
			func() { merge(sts, `{"metadata":{"labels":{"team":"db"}}}`) }, false},
		{"StatefulSet: someone else's annotation", []string{webhook.MutateStatefulSetPath, webhook.ValidateStatefulSetPath},
			func() { merge(sts, `{"metadata":{"annotations":{"argocd.argoproj.io/tracking-id":"x"}}}`) }, false},
		{"StatefulSet: the spec", []string{webhook.MutateStatefulSetPath, webhook.ValidateStatefulSetPath},
			func() { merge(sts, `{"spec":{"replicas":2}}`) }, true},
		{"StatefulSet: stsguard's annotation", []string{webhook.MutateStatefulSetPath, webhook.ValidateStatefulSetPath},
			func() { merge(sts, `{"metadata":{"annotations":{"`+rules.CanaryAnnotation+`":"1"}}}`) }, true},
		{"StatefulSet: stsguard's annotation removed", []string{webhook.MutateStatefulSetPath, webhook.ValidateStatefulSetPath},
			func() { merge(sts, `{"metadata":{"annotations":{"`+rules.CanaryAnnotation+`":null}}}`) }, true},
		{"StatefulSet: the scale subresource", []string{webhook.ValidateStatefulSetPath}, func() {
			scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sts.Name}, Spec: autoscalingv1.ScaleSpec{Replicas: 4}}
			require.NoError(t, c.SubResource("scale").Update(ctx, &appsv1.StatefulSet{ObjectMeta: scale.ObjectMeta}, client.WithSubResourceBody(scale)))
		}, true},
		{"Service: a label", []string{webhook.ValidateServicePath},
			func() { merge(svc, `{"metadata":{"labels":{"team":"db"}}}`) }, false},
		{"Service: the spec", []string{webhook.ValidateServicePath},
			func() { merge(svc, `{"spec":{"ports":[{"name":"main","port":80},{"name":"x","port":81}]}}`) }, true},
		{"Secret: a label", []string{webhook.ValidateSecretPath},
			func() { merge(sec, `{"metadata":{"labels":{"team":"db"}}}`) }, false},
		{"Secret: its data", []string{webhook.ValidateSecretPath},
			func() { merge(sec, `{"stringData":{"user":"app"}}`) }, true},
		{"Secret: an exemption", []string{webhook.ValidateSecretPath},
			func() { merge(sec, `{"metadata":{"annotations":{"`+engine.ExemptAnnotation+`":"weak-password"}}}`) }, true},
		// CREATEs and Service DELETEs go to webhooks without matchConditions:
		// every one is judged.
		{"StatefulSet: CREATE", []string{webhook.MutateStatefulSetPath, webhook.ValidateStatefulSetPath},
			func() {
				second := harness.StatefulSet(ns, "web-2", "web", "nginx")
				second.Spec.Selector.MatchLabels, second.Spec.Template.Labels = sts.Spec.Selector.MatchLabels, sts.Spec.Template.Labels
				require.NoError(t, c.Create(ctx, second))
			}, true},
		{"Service: CREATE", []string{webhook.MutateServicePath, webhook.ValidateServicePath},
			func() {
				require.NoError(t, c.Create(ctx, harness.Service(ns, "other", corev1.ClusterIPNone, map[string]string{"app": "other"})))
			}, true},
		{"Service: DELETE", []string{webhook.ValidateServicePath},
			func() {
				require.NoError(t, c.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"}}))
			}, true},
		{"Secret: CREATE", []string{webhook.ValidateSecretPath},
			func() {
				require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"}, StringData: map[string]string{"k": "v"}}))
			}, true},
	}
	for _, tc := range cases {
		before := make([]float64, len(tc.paths))
		for i, p := range tc.paths {
			before[i] = calls(t, p)
		}
		tc.do()
		for i, p := range tc.paths {
			if tc.sent {
				harness.Eventually(t, tc.name+": sent to "+p, func() bool { return calls(t, p) > before[i] })
			} else {
				assert.Equal(t, before[i], calls(t, p), "%s: not sent to %s", tc.name, p)
			}
		}
	}
}
