package rules

import (
	"context"
	"fmt"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
)

// RolloutPartition is the ID of rule rollout-partition.
const RolloutPartition = "rollout-partition"

var rolloutPartition = engine.Rule{
	ID: RolloutPartition, Area: engine.AreaRollout, Action: engine.Mutate,
	FindingAction:     engine.Warn,
	Default:           true,
	Description:       `On an UPDATE that changes the pod template of a StatefulSet annotated stsguard.io/canary: "N", sets spec.updateStrategy.rollingUpdate.partition to replicas-N so that only the N highest ordinals roll first; makes an implicit partition of a RollingUpdate explicit (0).`,
	MutateStatefulSet: mutatePartition,
}

func mutatePartition(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup, m *engine.Mutation) field.ErrorList {
	sts := in.Object
	strategy := &sts.Spec.UpdateStrategy
	if !rollsInStages(*strategy) {
		// The apiserver refuses a rollingUpdate with any other type, so
		// none is added.
		if _, ok := sts.Annotations[CanaryAnnotation]; ok && in.Operation == admissionv1.Update && templateChanged(in) {
			return field.ErrorList{field.Invalid(canaryPath, sts.Annotations[CanaryAnnotation], canaryWithoutStages(strategy.Type))}
		}
		return nil
	}

	want, errs := canaryPartition(in)
	fromCanary := want != nil
	if want == nil {
		if strategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && strategy.RollingUpdate == nil {
			want = ptr.To[int32](0)
		} else {
			return errs
		}
	}
	if cur := partitionOf(*strategy); cur != nil && *cur == *want {
		return errs
	}

	msg := fmt.Sprintf("set to %d so that only pods with ordinal >= %d take the new pod template (canary of %s); lower it step by step to finish the rollout",
		*want, *want, sts.Annotations[CanaryAnnotation])
	if !fromCanary {
		msg = "set to 0 explicitly (all pods take a new pod template); raise it to stage a rollout"
	}
	switch {
	case strategy.RollingUpdate == nil && strategy.Type == "":
		strategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		strategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: want}
		m.Set(RolloutPartition, partitionPath, engine.Pointer("spec", "updateStrategy"), strategy, msg)
	case strategy.RollingUpdate == nil:
		strategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: want}
		m.Set(RolloutPartition, partitionPath, engine.Pointer("spec", "updateStrategy", "rollingUpdate"), strategy.RollingUpdate, msg)
	default:
		// Only the partition: maxUnavailable, and any other field of
		// rollingUpdate, stays as it is.
		strategy.RollingUpdate.Partition = want
		m.Set(RolloutPartition, partitionPath, engine.Pointer("spec", "updateStrategy", "rollingUpdate", "partition"), *want, msg)
	}
	return errs
}

// canaryWithoutStages says why the canary annotation does nothing with
// updateStrategy type t, which has no partition.
func canaryWithoutStages(t appsv1.StatefulSetUpdateStrategyType) string {
	const fix = "use type RollingUpdate for a staged rollout or remove the annotation"
	switch t {
	case appsv1.OnDeleteStatefulSetStrategyType:
		return "has no effect with updateStrategy.type OnDelete, where pods take the new template only when you delete them; " + fix
	case appsv1.RecreateStatefulSetStrategyType:
		return "has no effect with updateStrategy.type Recreate, where every pod is deleted before any pod takes the new template; " + fix
	default:
		return fmt.Sprintf("has no effect with updateStrategy.type %q: only type RollingUpdate has a partition to stage a rollout with; %s", t, fix)
	}
}

// canaryPartition returns the partition the canary annotation asks for on
// this request (nil for none) and the problems with the annotation.
func canaryPartition(in *engine.Input[*appsv1.StatefulSet]) (*int32, field.ErrorList) {
	sts := in.Object
	raw, ok := sts.Annotations[CanaryAnnotation]
	if !ok || in.Operation != admissionv1.Update || !templateChanged(in) {
		return nil, nil
	}
	n, err := strconv.ParseInt(raw, 10, 32)
	if err != nil || n < 1 {
		return nil, field.ErrorList{field.Invalid(canaryPath, raw,
			"must be a positive whole number of pods to update first (for example \"1\"); the rollout was not staged")}
	}
	if !equality.Semantic.DeepEqual(partitionOf(sts.Spec.UpdateStrategy), partitionOf(in.OldObject.Spec.UpdateStrategy)) {
		return nil, nil // this update sets the partition itself
	}
	replicas := ptr.Deref(sts.Spec.Replicas, 1)
	return ptr.To(max(replicas-int32(n), 0)), nil
}
