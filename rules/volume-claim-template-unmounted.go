package rules

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// VolumeClaimTemplateUnmounted is the ID of rule volume-claim-template-unmounted.
const VolumeClaimTemplateUnmounted = "volume-claim-template-unmounted"

var volumeClaimTemplateUnmounted = engine.Rule{
	ID: VolumeClaimTemplateUnmounted, Area: engine.AreaStorage, Action: engine.Warn,

	Description: "A volumeClaimTemplate that no container mounts: every pod gets a PVC it never uses, and the data goes to the container's ephemeral filesystem instead.",
	StatefulSet: checkVolumeClaimTemplateUnmounted,
}

func checkVolumeClaimTemplateUnmounted(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup) field.ErrorList {
	if !createOrTemplateChanged(in) {
		return nil
	}
	pod := &in.Object.Spec.Template.Spec
	used := map[string]bool{}
	for _, cs := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for _, c := range cs {
			for _, m := range c.VolumeMounts {
				used[m.Name] = true
			}
			for _, d := range c.VolumeDevices {
				used[d.Name] = true
			}
		}
	}
	var errs field.ErrorList
	for i, t := range in.Object.Spec.VolumeClaimTemplates {
		if used[t.Name] {
			continue
		}
		errs = append(errs, field.Invalid(vctPath.Index(i).Child("metadata", "name"), t.Name, fmt.Sprintf(
			"no container mounts it (no volumeMounts entry named %q), so every pod gets a PVC it never uses and writes its data to the container's filesystem, which is lost with the pod; add a volumeMounts entry named %q at the database's data directory",
			t.Name, t.Name)))
	}
	return errs
}
