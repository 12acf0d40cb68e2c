package harness

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestRuleIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		msgs []string
		want []string
	}{
		{"none", nil, nil},
		{"no tag", []string{"admitted"}, nil},
		{"one", []string{`spec.serviceName: Not found: "web" [rule: headless-service-missing]`}, []string{"headless-service-missing"}},
		{"sorted, each once", []string{"a [rule: weak-password] b [rule: image-latest]", "c [rule: weak-password]"}, []string{"image-latest", "weak-password"}},
		{"not a tag", []string{"[rule: Upper]", "[rules: x]"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, RuleIDs(tc.msgs...))
		})
	}
}

// The shared fixture web is what its tests rely on: a headless Service
// that selects the pods of the StatefulSet it governs, in the namespace
// asked for.
func TestWeb(t *testing.T) {
	svc, sts := Web(t, "shop")
	assert.Equal(t, "shop", svc.Namespace)
	assert.Equal(t, "shop", sts.Namespace)
	assert.Equal(t, "web", svc.Name)
	assert.Equal(t, "web", sts.Name)
	assert.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP)
	assert.Equal(t, svc.Name, sts.Spec.ServiceName)
	assert.Equal(t, sts.Spec.Selector.MatchLabels, sts.Spec.Template.Labels)
	assert.Equal(t, svc.Spec.Selector, sts.Spec.Template.Labels)
	require.Len(t, sts.Spec.Template.Spec.Containers, 1)
	assert.NotNil(t, sts.Spec.Template.Spec.Containers[0].ReadinessProbe)
}
