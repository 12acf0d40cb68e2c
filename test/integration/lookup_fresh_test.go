package integration

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// What the live read after a cache miss is for: an object created a moment
// before the request that names it is judged, although stsguard's informer
// cache may not have it yet. Each case is
// repeated, back to back, so that some rounds meet a cache that has not
// caught up; every round must get the same answer.
func TestLookupObjectCreatedJustBeforeIsJudged(t *testing.T) {
	const rounds = 10
	c, w := newClient(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		round func(t *testing.T, ns string, i int)
	}{{
		// kubectl apply sends the Service just before the StatefulSet.
		name: "a ClusterIP Service created just before its StatefulSet denies it",
		round: func(t *testing.T, ns string, i int) {
			name := fmt.Sprintf("web-%d", i)
			require.NoError(t, c.Create(ctx, harness.Service(ns, name, "", map[string]string{"app": name})))
			err := c.Create(ctx, harness.StatefulSet(ns, name, name, "nginx"))
			assert.Equal(t, []string{"spec.serviceName"}, harness.InvalidCauses(t, err, rules.HeadlessServiceNotHeadless), "round %d", i)
		},
	}, {
		// The validating webhook reads the Secret the mutating webhook wrote
		// a moment before, in the same request.
		name: "the Secret stsguard just wrote is found by the validating webhook",
		round: func(t *testing.T, ns string, i int) {
			name := fmt.Sprintf("db-%d", i)
			require.NoError(t, c.Create(ctx, harness.Service(ns, name, corev1.ClusterIPNone, map[string]string{"app": name})))
			w.Take()
			sts := harness.StatefulSet(ns, name, name, "mysql:8.4")
			sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MYSQL_ROOT_PASSWORD", Value: rand.String(24)}}
			require.NoError(t, c.Create(ctx, sts))
			got := joined(w.Take())
			assert.Contains(t, got, "[rule: "+rules.PasswordSecretRef+"]", "round %d", i)
			assert.NotContains(t, got, rules.SecretRefMissing, "round %d", i)
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := harness.Namespace(t, c)
			for i := range rounds {
				tc.round(t, ns, i)
			}
		})
	}
}
