package webhook_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// The fixtures the benchmarks use give the answers the benchmarks assume.
func TestHandlersOnSeedCassandra(t *testing.T) {
	sts, reader := cassandraFixture(t)
	h := handlers(reader)

	r := serve(t, &admission.Webhook{Handler: h.Validating()}, reviewBody(t, sts))
	assert.True(t, r.Allowed)
	assert.Empty(t, r.Warnings)
	assert.Empty(t, r.Patch)

	sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	r = serve(t, &admission.Webhook{Handler: h.Mutating()}, reviewBody(t, sts))
	assert.True(t, r.Allowed)
	var patch []map[string]any
	require.NoError(t, json.Unmarshal(r.Patch, &patch))
	assert.Equal(t, []map[string]any{{"op": "add", "path": "/spec/template/spec/terminationGracePeriodSeconds", "value": float64(300)}}, patch)
	require.Len(t, r.Warnings, 1)
	assert.Contains(t, r.Warnings[0], "[rule: termination-grace-period]")
}

func TestValidatingDenialIsInvalidStatus(t *testing.T) {
	sts, _ := cassandraFixture(t)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: "cassandra"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.9", Selector: map[string]string{"app": "cassandra"}}}
	h := handlers(indexReader{store: kindStore([]client.Object{svc})})
	r := serve(t, &admission.Webhook{Handler: h.Validating()}, reviewBody(t, sts))
	assert.False(t, r.Allowed)
	require.NotNil(t, r.Result)
	assert.Equal(t, int32(422), r.Result.Code)
	assert.Equal(t, metav1.StatusReasonInvalid, r.Result.Reason)
	require.NotNil(t, r.Result.Details)
	assert.Equal(t, "apps", r.Result.Details.Group)
	require.Len(t, r.Result.Details.Causes, 1)
	assert.Equal(t, "spec.serviceName", r.Result.Details.Causes[0].Field)
	assert.Contains(t, r.Result.Message, `StatefulSet.apps "cassandra" is invalid: spec.serviceName: Invalid value: "cassandra"`)

	// The mutating webhook leaves a request that will be denied untouched.
	sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	r = serve(t, &admission.Webhook{Handler: h.Mutating()}, reviewBody(t, sts))
	assert.True(t, r.Allowed)
	assert.Empty(t, r.Patch)
}
