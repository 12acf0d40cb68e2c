package engine

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultTerminationGracePeriodSeconds is the API default of
// spec.terminationGracePeriodSeconds (core/v1 SetDefaults_PodSpec).
const DefaultTerminationGracePeriodSeconds int64 = corev1.DefaultTerminationGracePeriodSeconds

func terminationGracePeriodMutator(cfg *Config) Mutator[*appsv1.StatefulSet] {
	return Mutator[*appsv1.StatefulSet]{
		ID:            TerminationGracePeriod,
		FindingAction: Warn,
		Default:       true,
		Mutate: func(in *Input[*appsv1.StatefulSet], _ Lookup, m *Mutation) field.ErrorList {
			mutateGracePeriod(cfg, in, m)
			return nil
		},
	}
}

// profileGracePeriod returns the largest grace period, in seconds, that the
// profiles of pod's containers ask for, and the profile that asks for it.
func profileGracePeriod(cfg *Config, pod *corev1.PodSpec) (int64, string) {
	var want int64
	var name string
	for i := range pod.Containers {
		if p := cfg.Profile(pod.Containers[i].Image); p != nil && p.TerminationGracePeriodSeconds > want {
			want, name = p.TerminationGracePeriodSeconds, p.Name
		}
	}
	return want, name
}

func mutateGracePeriod(cfg *Config, in *Input[*appsv1.StatefulSet], m *Mutation) {
	if in.Operation == "UPDATE" && !templateChanged(in) {
		return
	}
	pod := &in.Object.Spec.Template.Spec
	if pod.TerminationGracePeriodSeconds != nil && *pod.TerminationGracePeriodSeconds != DefaultTerminationGracePeriodSeconds {
		return // set on purpose: leave it
	}
	want, profile := profileGracePeriod(cfg, pod)
	if want <= DefaultTerminationGracePeriodSeconds {
		return
	}
	pod.TerminationGracePeriodSeconds = &want
	m.Set(TerminationGracePeriod, field.NewPath("spec", "template", "spec", "terminationGracePeriodSeconds"),
		Pointer("spec", "template", "spec", "terminationGracePeriodSeconds"), want,
		fmt.Sprintf("raised from the default %ds to %ds, the time a %s pod needs to flush and leave its cluster cleanly; set another value explicitly to keep it",
			DefaultTerminationGracePeriodSeconds, want, profile))
}
