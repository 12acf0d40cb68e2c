package engine

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func workloadRules(cfg *Config) []Rule[*appsv1.StatefulSet] {
	return []Rule[*appsv1.StatefulSet]{
		{ID: PartitionExceedsReplicas, Check: checkPartitionExceedsReplicas},
		{ID: ReadinessProbeMissing, Check: checkReadinessProbeMissing},
		{ID: TerminationGracePeriodShort, Check: func(in *Input[*appsv1.StatefulSet], _ Lookup) field.ErrorList {
			return checkGracePeriodShort(cfg, in)
		}},
	}
}

func checkPartitionExceedsReplicas(in *Input[*appsv1.StatefulSet], _ Lookup) field.ErrorList {
	sts := in.Object
	if sts.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
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

func checkReadinessProbeMissing(in *Input[*appsv1.StatefulSet], _ Lookup) field.ErrorList {
	sts := in.Object
	if sts.Spec.PodManagementPolicy == appsv1.ParallelPodManagement || !createOrTemplateChanged(in) {
		return nil
	}
	var errs field.ErrorList
	for i, c := range sts.Spec.Template.Spec.Containers {
		if c.ReadinessProbe != nil {
			continue
		}
		errs = append(errs, field.Required(podSpecPath.Child("containers").Index(i).Child("readinessProbe"), fmt.Sprintf(
			"container %q has no readinessProbe while podManagementPolicy is OrderedReady: each next ordinal starts as soon as this container runs, not when it can serve, and a rolling update moves on before the member has rejoined; add a readinessProbe (a tcpSocket or exec check of the service port)",
			c.Name)))
	}
	return errs
}

func checkGracePeriodShort(cfg *Config, in *Input[*appsv1.StatefulSet]) field.ErrorList {
	if !createOrTemplateChanged(in) {
		return nil
	}
	pod := &in.Object.Spec.Template.Spec
	want, profile := profileGracePeriod(cfg, pod)
	cur := ptr.Deref(pod.TerminationGracePeriodSeconds, DefaultTerminationGracePeriodSeconds)
	if want == 0 || cur >= want {
		return nil
	}
	if cfg.mutationOn(TerminationGracePeriod) && cur == DefaultTerminationGracePeriodSeconds {
		return nil // termination-grace-period raises it
	}
	return field.ErrorList{field.Invalid(podSpecPath.Child("terminationGracePeriodSeconds"), cur, fmt.Sprintf(
		"is below the %ds a %s pod needs to flush and leave its cluster cleanly: on every rolling update and node drain the kubelet kills it mid-shutdown, which risks a crash recovery or lost writes; set it to %d",
		want, profile, want))}
}
