package integration

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// A dryRun request (kubectl apply --dry-run=server) gets the decisions and
// the patch a real one gets, and leaves nothing behind: no Secret, no
// StatefulSet, no mutation counted.
func TestDryRunGetsTheSameAnswerAndLeavesNothing(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	objs := mysqlWithStrongPassword(t, ns)
	require.NoError(t, c.Create(ctx, objs[0])) // the headless Service
	waitForCachedService(t, c, ns, objs[0].GetName())
	mutations := func() float64 {
		return srv.Metric(t, "stsguard_mutations_total", map[string]string{"rule": rules.PasswordSecretRef}) +
			srv.Metric(t, "stsguard_mutations_total", map[string]string{"rule": rules.TerminationGracePeriod})
	}

	before := mutations()
	dry := objs[1].(*appsv1.StatefulSet).DeepCopy()
	w.Take()
	require.NoError(t, c.Create(ctx, dry, client.DryRunAll))
	dryWarnings := w.Take()
	assert.Equal(t, before, mutations(), "a dry run counts no mutation")
	assert.True(t, apierrors.IsNotFound(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mysql-credentials"}, &corev1.Secret{})))
	assert.True(t, apierrors.IsNotFound(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mysql"}, &appsv1.StatefulSet{})))

	real := objs[1].(*appsv1.StatefulSet).DeepCopy()
	require.NoError(t, c.Create(ctx, real))
	assert.Equal(t, dryWarnings, w.Take(), "the same warnings")
	assert.Equal(t, dry.Spec, real.Spec, "the same patch: the stored spec is the dry run's")
	assert.Equal(t, before+2, mutations(), "a real request counts its two mutations")
	require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mysql-credentials"}, &corev1.Secret{}))

	// A denial is the same, word for word.
	bad := real.DeepCopy()
	bad.ResourceVersion = ""
	bad.Name = "weak"
	bad.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MYSQL_ROOT_PASSWORD", Value: "password"}}
	dryErr := c.Create(ctx, bad.DeepCopy(), client.DryRunAll)
	realErr := c.Create(ctx, bad.DeepCopy())
	require.Error(t, dryErr)
	assert.Equal(t, realErr.Error(), dryErr.Error())
	assert.Contains(t, dryErr.Error(), "[rule: weak-password]")
}
