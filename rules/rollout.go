package rules

import (
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// CanaryAnnotation asks for a staged rollout: its value N is the number of
// pods (the N highest ordinals) that take a new pod template first.
const CanaryAnnotation = "stsguard.io/canary"

var (
	canaryPath    = field.NewPath("metadata", "annotations").Key(CanaryAnnotation)
	partitionPath = field.NewPath("spec", "updateStrategy", "rollingUpdate", "partition")
)

// templateChanged reports whether an UPDATE changes the pod template, the
// only change that rolls the pods (compared with equality.Semantic, as the
// StatefulSet controller's revision hash would differ).
func templateChanged(in *engine.Input[*appsv1.StatefulSet]) bool {
	return !equality.Semantic.DeepEqual(in.Object.Spec.Template, in.OldObject.Spec.Template)
}

// rollsInStages reports whether s is a rolling update, the one strategy
// with a rollingUpdate (a partition, maxUnavailable): type RollingUpdate, or
// no type, which the apiserver defaults to RollingUpdate. The apiserver
// refuses a rollingUpdate with any other type (OnDelete; Recreate, alpha in
// Kubernetes 1.37).
func rollsInStages(s appsv1.StatefulSetUpdateStrategy) bool {
	return s.Type == "" || s.Type == appsv1.RollingUpdateStatefulSetStrategyType
}

func partitionOf(s appsv1.StatefulSetUpdateStrategy) *int32 {
	if s.RollingUpdate == nil {
		return nil
	}
	return s.RollingUpdate.Partition
}
