package webhook_test

import (
	"encoding/json"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/lookuptest"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
	"github.com/stsguard/stsguard/webhook"
)

var (
	serviceGVK = metav1.GroupVersionKind{Version: "v1", Kind: "Service"}
	secretGVK  = metav1.GroupVersionKind{Version: "v1", Kind: "Secret"}
)

// The fixtures the benchmarks use give the answers the benchmarks assume.
func TestHandlersOnSeedCassandra(t *testing.T) {
	sts, objs := cassandraFixture(t)
	h := handlers(t, objs...)

	r := serve(t, h[webhook.ValidateStatefulSetPath], reviewBody(t, sts))
	assert.True(t, r.Allowed)
	require.Len(t, r.Warnings, cassandraWarnings)
	assert.Contains(t, r.Warnings[0], "[rule: readiness-probe-missing]")
	assert.Empty(t, r.Patch)

	sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	r = serve(t, h[webhook.MutateStatefulSetPath], reviewBody(t, sts))
	assert.True(t, r.Allowed)
	var patch []map[string]any
	require.NoError(t, json.Unmarshal(r.Patch, &patch))
	assert.Equal(t, []map[string]any{{"op": "add", "path": "/spec/template/spec/terminationGracePeriodSeconds", "value": float64(300)}}, patch)
	require.Len(t, r.Warnings, 1, "the mutating webhook reports its changes, not the validating rules' warnings")
	assert.Contains(t, r.Warnings[0], "[rule: termination-grace-period]")
}

func TestValidatingDenialIsInvalidStatus(t *testing.T) {
	sts, objs := cassandraFixture(t)
	objs[0].(*corev1.Service).Spec.ClusterIP = "10.0.0.9"
	h := handlers(t, objs...)
	r := serve(t, h[webhook.ValidateStatefulSetPath], reviewBody(t, sts))
	assert.False(t, r.Allowed)
	require.NotNil(t, r.Result)
	assert.Equal(t, int32(422), r.Result.Code)
	assert.Equal(t, metav1.StatusReasonInvalid, r.Result.Reason)
	require.NotNil(t, r.Result.Details)
	assert.Equal(t, "apps", r.Result.Details.Group)
	require.Len(t, r.Result.Details.Causes, 1)
	assert.Equal(t, "spec.serviceName", r.Result.Details.Causes[0].Field)
	assert.Contains(t, r.Result.Message, `StatefulSet.apps "cassandra" is invalid: spec.serviceName: Invalid value: "cassandra"`)

	// The mutating webhook denies it too, with the same message, and builds no patch.
	sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	r = serve(t, h[webhook.MutateStatefulSetPath], reviewBody(t, sts))
	assert.False(t, r.Allowed)
	assert.Empty(t, r.Patch)
	assert.Contains(t, r.Result.Message, `spec.serviceName: Invalid value: "cassandra"`)
}

func TestServiceAndSecretReviews(t *testing.T) {
	sts := seedStatefulSet(t, "mysql-secret-ref")
	ref := sts.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef
	svc := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: sts.Spec.ServiceName},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "mysql"}}}
	sec := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: ref.Name},
		Data:       map[string][]byte{ref.Key: []byte("n0t-a-default-9")}}
	h := handlers(t, sts)

	r := serve(t, h[webhook.MutateServicePath], review(t, admissionv1.Create, serviceGVK, svc, nil))
	require.True(t, r.Allowed)
	assert.JSONEq(t, `[{"op":"add","path":"/spec/clusterIP","value":"None"}]`, string(r.Patch))
	assert.Contains(t, r.Warnings[0], "[rule: headless-service-default]")

	svc.Spec.ClusterIP = "10.0.0.3"
	r = serve(t, h[webhook.ValidateServicePath], review(t, admissionv1.Create, serviceGVK, svc, nil))
	assert.False(t, r.Allowed)
	assert.Contains(t, r.Result.Message, `Service "mysql" is invalid: spec.clusterIP: Invalid value: "10.0.0.3"`)

	r = serve(t, h[webhook.ValidateServicePath], review(t, admissionv1.Delete, serviceGVK, nil, svc))
	assert.True(t, r.Allowed)
	require.Len(t, r.Warnings, 1)
	assert.Contains(t, r.Warnings[0], "[rule: headless-service-delete]")

	r = serve(t, h[webhook.ValidateSecretPath], review(t, admissionv1.Delete, secretGVK, nil, sec))
	assert.True(t, r.Allowed)
	require.Len(t, r.Warnings, 1)
	assert.Contains(t, r.Warnings[0], "[rule: secret-in-use-delete]")

	emptied := sec.DeepCopy()
	emptied.Data = map[string][]byte{"other": []byte("x")}
	r = serve(t, h[webhook.ValidateSecretPath], review(t, admissionv1.Update, secretGVK, emptied, sec))
	assert.False(t, r.Allowed)
	assert.Contains(t, r.Result.Message, `Secret "`+ref.Name+`" is invalid: data[`+ref.Key+`]: Forbidden`)

	// A kind registered on the wrong path is a 400, never a panic.
	r = serve(t, h[webhook.ValidateSecretPath], review(t, admissionv1.Create, serviceGVK, svc, nil))
	assert.False(t, r.Allowed)
	assert.Equal(t, int32(400), r.Result.Code)
}

func TestAuditActionAndMetrics(t *testing.T) {
	cfg := engine.DefaultConfig()
	cfg.Actions = map[string]engine.Action{rules.WeakPassword: engine.Audit}
	e, err := rules.New(cfg)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	m, err := webhook.NewMetrics(reg)
	require.NoError(t, err)
	lk := lookuptest.MustObjects()
	h := (&webhook.Handlers{Engine: func() *engine.Engine { return e }, Lookup: func() engine.Lookup { return lk }, Metrics: m}).Webhooks()

	sec := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Data: map[string][]byte{"password": []byte("changeme")}}
	r := serve(t, h[webhook.ValidateSecretPath], review(t, admissionv1.Create, secretGVK, sec, nil))
	assert.True(t, r.Allowed, "Audit findings never block")
	assert.Empty(t, r.Warnings, "Audit findings never reach the user")
	require.Contains(t, r.AuditAnnotations, "weak-password")
	assert.Contains(t, r.AuditAnnotations["weak-password"], "data[password]")
	assert.NotContains(t, r.AuditAnnotations["weak-password"], "changeme")
	assert.Equal(t, 1.0, counter(t, reg, "stsguard_findings_total", map[string]string{"rule": "weak-password", "action": "Audit", "kind": "Secret", "operation": "CREATE"}))
	n, err := testutil.GatherAndCount(reg, "stsguard_evaluation_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	// A dry-run mutation is not counted as a change.
	sts := seedStatefulSet(t, "cassandra")
	sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	body := review(t, admissionv1.Create, metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, sts, nil)
	var rev admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(body, &rev))
	rev.Request.DryRun = ptr.To(true)
	body, _ = json.Marshal(rev)
	r = serve(t, h[webhook.MutateStatefulSetPath], body)
	require.True(t, r.Allowed)
	assert.NotEmpty(t, r.Patch, "a dry run gets the same patch")
	assert.Zero(t, counter(t, reg, "stsguard_mutations_total", map[string]string{"rule": "termination-grace-period"}))
	r = serve(t, h[webhook.MutateStatefulSetPath], review(t, admissionv1.Create, metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, sts, nil))
	require.True(t, r.Allowed)
	assert.Equal(t, 1.0, counter(t, reg, "stsguard_mutations_total", map[string]string{"rule": "termination-grace-period"}))
}

// counter returns the value of counter name with exactly labels in reg (0
// when it has not been counted).
// counter is the value of metric name summed over the series whose labels include labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return harness.Value(t, reg, name, labels)
}
