package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
)

// The partition mutator never makes an updateStrategy the apiserver refuses
// (pkg/apis/apps/validation of Kubernetes 1.37: a rollingUpdate only with
// type RollingUpdate; maxUnavailable with a partition is fine), and keeps
// every field of rollingUpdate besides the partition.
func TestRolloutPartitionByStrategyType(t *testing.T) {
	const (
		rolling  = appsv1.RollingUpdateStatefulSetStrategyType
		onDelete = appsv1.OnDeleteStatefulSetStrategyType
		recreate = appsv1.RecreateStatefulSetStrategyType
	)
	strategy := func(typ appsv1.StatefulSetUpdateStrategyType, partition *int32, maxUnavailable *intstr.IntOrString) appsv1.StatefulSetUpdateStrategy {
		s := appsv1.StatefulSetUpdateStrategy{Type: typ}
		if partition != nil || maxUnavailable != nil {
			s.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: partition, MaxUnavailable: maxUnavailable}
		}
		return s
	}
	two := ptr.To(intstr.FromInt32(2))
	half := ptr.To(intstr.FromString("50%"))
	cases := []struct {
		name     string
		canary   string // the annotation's value; "" for none
		strategy appsv1.StatefulSetUpdateStrategy
		want     appsv1.StatefulSetUpdateStrategy
		// wantWarn is true when the canary annotation is reported.
		wantWarn bool
	}{
		{"Recreate with a canary: no rollingUpdate, the canary warned about", "1",
			strategy(recreate, nil, nil), strategy(recreate, nil, nil), true},
		{"Recreate without a canary: unchanged", "",
			strategy(recreate, nil, nil), strategy(recreate, nil, nil), false},
		{"OnDelete with a canary: no rollingUpdate, the canary warned about", "1",
			strategy(onDelete, nil, nil), strategy(onDelete, nil, nil), true},
		{"a type this stsguard does not know: no rollingUpdate", "1",
			strategy("Blue-Green", nil, nil), strategy("Blue-Green", nil, nil), true},
		{"maxUnavailable kept with the canary's partition", "2",
			strategy(rolling, ptr.To[int32](0), two), strategy(rolling, ptr.To[int32](3), two), false},
		{"maxUnavailable as a percentage kept", "1",
			strategy(rolling, ptr.To[int32](0), half), strategy(rolling, ptr.To[int32](4), half), false},
		{"maxUnavailable without a partition gets the canary's", "1",
			strategy(rolling, nil, two), strategy(rolling, ptr.To[int32](4), two), false},
		{"maxUnavailable kept when the type is not yet defaulted (a manifest)", "1",
			strategy("", nil, two), strategy("", ptr.To[int32](4), two), false},
		{"no type, no rollingUpdate (a manifest): type RollingUpdate with the partition", "1",
			strategy("", nil, nil), strategy(rolling, ptr.To[int32](4), nil), false},
		{"maxUnavailable without a canary: unchanged", "",
			strategy(rolling, ptr.To[int32](0), two), strategy(rolling, ptr.To[int32](0), two), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := testStatefulSet("web")
			old.Spec.Replicas = ptr.To[int32](5)
			if tc.canary != "" {
				old.Annotations = map[string]string{CanaryAnnotation: tc.canary}
			}
			old.Spec.UpdateStrategy = tc.strategy
			changed := old.DeepCopy()
			changed.Spec.Template.Spec.Containers[0].Image = "nginx:2"
			in := &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: changed, OldObject: old}

			out, _, fs := mutateTwice(t, newEngine(t, RolloutPartition), in, objects())
			assert.Equal(t, tc.want, out.Spec.UpdateStrategy)
			if tc.want.Type != "" && tc.want.Type != rolling {
				assert.Nil(t, out.Spec.UpdateStrategy.RollingUpdate, "the apiserver refuses a rollingUpdate with type %s", tc.want.Type)
			}
			if !tc.wantWarn {
				assert.Empty(t, fs)
				return
			}
			field.ErrorMatcher{}.ByType().ByField().Test(t, field.ErrorList{field.Invalid(canaryPath, "", "")}, fs.Errors())
			require.Len(t, fs, 1)
			assert.Equal(t, engine.Warn, fs[0].Action)
			assert.Contains(t, fs[0].Error.Detail, string(tc.strategy.Type), "the warning names the type")
			assert.Contains(t, fs[0].Error.Detail, "use type RollingUpdate for a staged rollout or remove the annotation")
		})
	}
}

// partition-exceeds-replicas judges only rolling updates: no other type has
// a partition (the apiserver refuses a rollingUpdate with them).
func TestPartitionExceedsReplicasByStrategyType(t *testing.T) {
	cases := []struct {
		typ  appsv1.StatefulSetUpdateStrategyType
		want field.ErrorList
	}{
		{appsv1.RollingUpdateStatefulSetStrategyType, field.ErrorList{field.Invalid(partitionPath, "", "")}},
		{"", field.ErrorList{field.Invalid(partitionPath, "", "")}},
		{appsv1.OnDeleteStatefulSetStrategyType, nil},
		{appsv1.RecreateStatefulSetStrategyType, nil},
	}
	for _, tc := range cases {
		name := string(tc.typ)
		if name == "" {
			name = "no type (a manifest)"
		}
		t.Run(name, func(t *testing.T) {
			sts := testStatefulSet("web")
			sts.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: tc.typ,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](5)}}
			got := validate(newEngine(t, PartitionExceedsReplicas), create(sts), objects()).Findings
			field.ErrorMatcher{}.ByType().ByField().Test(t, tc.want, got.Errors())
		})
	}
}
