package rules

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// ReadinessProbeMissing is the ID of rule readiness-probe-missing.
const ReadinessProbeMissing = "readiness-probe-missing"

var readinessProbeMissing = engine.Rule{
	ID: ReadinessProbeMissing, Area: engine.AreaRollout, Action: engine.Warn,

	Description: "A container of a StatefulSet with podManagementPolicy OrderedReady has no readinessProbe: each next ordinal starts as soon as the previous one runs, not when it can serve.",
	StatefulSet: checkReadinessProbeMissing,
}

func checkReadinessProbeMissing(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup) field.ErrorList {
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
