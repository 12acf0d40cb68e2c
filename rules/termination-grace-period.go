package rules

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/credentials"
	"github.com/stsguard/stsguard/engine"
)

// TerminationGracePeriod is the ID of rule termination-grace-period.
const TerminationGracePeriod = "termination-grace-period"

var terminationGracePeriod = engine.Rule{
	ID: TerminationGracePeriod, Area: engine.AreaRollout, Action: engine.Mutate,
	FindingAction:     engine.Warn,
	Default:           true,
	Description:       "Raises spec.template.spec.terminationGracePeriodSeconds from the API default (30) to the image profile's value (cassandra 300; mysql, mariadb, postgres, mongo, elasticsearch 120; kafka, zookeeper, rabbitmq, redis 60).",
	MutateStatefulSet: mutateGracePeriod,
}

// DefaultTerminationGracePeriodSeconds is the API default of
// spec.terminationGracePeriodSeconds (core/v1 SetDefaults_PodSpec).
const DefaultTerminationGracePeriodSeconds int64 = corev1.DefaultTerminationGracePeriodSeconds

// profileGracePeriod returns the largest grace period, in seconds, that the
// profiles of pod's containers ask for, and the profile that asks for it.
func profileGracePeriod(cfg *credentials.Config, pod *corev1.PodSpec) (int64, string) {
	var want int64
	var name string
	for i := range pod.Containers {
		if p := cfg.Profile(pod.Containers[i].Image); p != nil && p.TerminationGracePeriodSeconds > want {
			want, name = p.TerminationGracePeriodSeconds, p.Name
		}
	}
	return want, name
}

func mutateGracePeriod(_ context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup, m *engine.Mutation) field.ErrorList {
	cfg := &in.Config.Credentials
	if in.Operation == admissionv1.Update && !templateChanged(in) {
		return nil
	}
	pod := &in.Object.Spec.Template.Spec
	if pod.TerminationGracePeriodSeconds != nil && *pod.TerminationGracePeriodSeconds != DefaultTerminationGracePeriodSeconds {
		return nil // set on purpose: leave it
	}
	want, profile := profileGracePeriod(cfg, pod)
	if want <= DefaultTerminationGracePeriodSeconds {
		return nil
	}
	pod.TerminationGracePeriodSeconds = &want
	m.Set(TerminationGracePeriod, field.NewPath("spec", "template", "spec", "terminationGracePeriodSeconds"),
		engine.Pointer("spec", "template", "spec", "terminationGracePeriodSeconds"), want,
		fmt.Sprintf("raised from the default %ds to %ds, the time a %s pod needs to flush and leave its cluster cleanly; set another value explicitly to keep it",
			DefaultTerminationGracePeriodSeconds, want, profile))
	return nil
}
