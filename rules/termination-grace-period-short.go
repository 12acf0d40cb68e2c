package rules

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
)

// TerminationGracePeriodShort is the ID of rule termination-grace-period-short.
const TerminationGracePeriodShort = "termination-grace-period-short"

var terminationGracePeriodShort = engine.Rule{
	ID: TerminationGracePeriodShort, Area: engine.AreaRollout, Action: engine.Warn,
	Description: "terminationGracePeriodSeconds is below the image profile's value and termination-grace-period did not raise it: the mutation is Off or exempted for the object, the StatefulSet is re-created by stsguard expand, the mutating webhook did not run (failurePolicy Ignore), or the value was set explicitly.",
	StatefulSet: checkGracePeriodShort,
}

// checkGracePeriodShort judges the object as it would be stored, after the
// mutators: when termination-grace-period raised the value, there is
// nothing to say; when it did not (the mutation is off, exempted for this
// object, or stepping aside for a re-created StatefulSet, or the value was
// set explicitly), the warning says so.
func checkGracePeriodShort(_ context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup) field.ErrorList {
	cfg := &in.Config.Credentials
	if !createOrTemplateChanged(in) {
		return nil
	}
	pod := &in.Object.Spec.Template.Spec
	want, profile := profileGracePeriod(cfg, pod)
	cur := ptr.Deref(pod.TerminationGracePeriodSeconds, DefaultTerminationGracePeriodSeconds)
	if want == 0 || cur >= want {
		return nil
	}
	return field.ErrorList{field.Invalid(podSpecPath.Child("terminationGracePeriodSeconds"), cur, fmt.Sprintf(
		"is below the %ds a %s pod needs to flush and leave its cluster cleanly: on every rolling update and node drain the kubelet kills it mid-shutdown, which risks a crash recovery or lost writes; set it to %d",
		want, profile, want))}
}
