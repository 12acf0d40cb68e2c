package rules

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
)

// PartitionExceedsReplicas is the ID of rule partition-exceeds-replicas.
const PartitionExceedsReplicas = "partition-exceeds-replicas"

var partitionExceedsReplicas = engine.Rule{
	ID: PartitionExceedsReplicas, Area: engine.AreaRollout, Action: engine.Warn,

	Description: "spec.updateStrategy.rollingUpdate.partition is greater than spec.replicas: no pod takes a new pod template, so the rollout is frozen.",
	StatefulSet: checkPartitionExceedsReplicas,
}

func checkPartitionExceedsReplicas(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup) field.ErrorList {
	sts := in.Object
	if !rollsInStages(sts.Spec.UpdateStrategy) {
		return nil
	}
	p := partitionOf(sts.Spec.UpdateStrategy)
	replicas := ptr.Deref(sts.Spec.Replicas, 1)
	if p == nil || *p <= replicas {
		return nil
	}
	return field.ErrorList{field.Invalid(partitionPath, *p, fmt.Sprintf(
		"is greater than spec.replicas (%d): only pods with an ordinal >= partition take a new pod template and there are none, so the rollout is frozen; lower it to %d or less (0 rolls every pod)",
		replicas, max(replicas-1, 0)))}
}
